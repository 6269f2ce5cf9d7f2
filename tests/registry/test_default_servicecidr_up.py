"""After ``kajitori up`` the ``kubernetes`` ServiceCIDR exists, is Ready and is guarded.

One real ``kajitori up`` (child process), read with the real kubectl: the API
server created the default ServiceCIDR from the service range
(10.96.0.0/12) and marked it Ready; the service-cidrs controller then adds
its finalizer and restates Ready in its own words, as upstream's two
controllers do; the ``kubernetes`` Service's ClusterIP is listed as an
IPAddress.
"""

from __future__ import annotations

from typing import Any

from kajitori.testing.cluster import KajitoriCluster, wait_for

FINALIZER = "networking.k8s.io/service-cidr-finalizer"
READY = "Kubernetes Service CIDR is ready"


def _guarded(cluster: KajitoriCluster) -> dict[str, Any] | None:
    """The ServiceCIDR once the controller-manager's controller has handled it."""
    obj: dict[str, Any] = cluster.get_json("servicecidr", "kubernetes")
    messages = [c["message"] for c in obj["status"]["conditions"]]
    if FINALIZER in (obj["metadata"].get("finalizers") or []) and messages == [READY]:
        return obj
    return None


def test_the_default_service_cidr_is_ready_after_up(cluster: KajitoriCluster) -> None:
    table = cluster.kubectl("get", "servicecidrs", "--no-headers").stdout.split()
    assert table[:2] == ["kubernetes", "10.96.0.0/12"]
    guarded = wait_for(lambda: _guarded(cluster), what="the ServiceCIDR finalizer")
    assert guarded["spec"]["cidrs"] == ["10.96.0.0/12"]
    [ready] = guarded["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "")
    ip = cluster.get_json("ipaddress", "10.96.0.1")
    assert ip["spec"]["parentRef"] == {
        "resource": "services",
        "namespace": "default",
        "name": "kubernetes",
    }
