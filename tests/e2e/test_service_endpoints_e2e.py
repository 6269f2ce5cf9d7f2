"""Services get Endpoints and EndpointSlices, seen through the real kubectl.

``kajitori up --nodes 2 --runtime simulated``: the simulated kubelets give
pods IPs from their node's podCIDR and report them Ready, so a Deployment
exposed as a Service shows its pods' addresses in ``kubectl get endpoints``
and ``kubectl get endpointslices``; the ``kubernetes`` Service shows the API
server's own address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_until

Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """A cluster with two simulated nodes."""
    data_dir: Path = tmp_path_factory.mktemp("endpoints")
    with KajitoriCluster(data_dir, extra_args=("--nodes=2", "--runtime=simulated")) as running:
        running.wait_for_namespace_defaults("default")
        yield running


def _json(cluster: KajitoriCluster, *args: str) -> Object:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)  # type: ignore[no-any-return]


def _ready_ips(cluster: KajitoriCluster, app: str) -> set[str]:
    pods = _json(cluster, "pods", "-l", f"app={app}")["items"]
    return {
        p["status"]["podIP"]
        for p in pods
        if p["status"].get("podIP")
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    }


def _endpoint_ips(cluster: KajitoriCluster, name: str) -> set[str]:
    found = cluster.kubectl("get", "endpoints", name, "-o", "json", check=False)
    if found.returncode != 0:
        return set()
    subsets = json.loads(found.stdout).get("subsets") or []
    return {a["ip"] for s in subsets for a in s.get("addresses") or ()}


def test_kubectl_get_endpoints_kubernetes_shows_the_api_server(cluster: KajitoriCluster) -> None:
    """The API server publishes itself (https, its serving port) in default/kubernetes."""
    port = cluster.kubectl(
        "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
    )
    served_port = int(port.stdout.rsplit(":", 1)[1])
    endpoints = _json(cluster, "endpoints", "kubernetes")
    (subset,) = endpoints["subsets"]
    assert subset["ports"] == [{"name": "https", "port": served_port, "protocol": "TCP"}]
    address = subset["addresses"][0]["ip"]
    assert not address.startswith("127.")
    table = cluster.kubectl("get", "endpoints", "kubernetes").stdout
    assert f"{address}:{served_port}" in table
    slice_ = _json(cluster, "endpointslice", "kubernetes")
    assert slice_["endpoints"][0]["addresses"] == [address]


def test_an_exposed_deployment_lists_its_ready_pods_in_endpoints_and_slices(
    cluster: KajitoriCluster,
) -> None:
    """kubectl expose: Endpoints and one EndpointSlice follow the pods as the Deployment scales."""
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    cluster.kubectl("expose", "deployment", "web", "--port=8080", "--target-port=80")
    wait_until(lambda: len(_ready_ips(cluster, "web")) == 2, timeout=40, what="2 ready pods")
    wait_until(
        lambda: _endpoint_ips(cluster, "web") == _ready_ips(cluster, "web"),
        timeout=20,
        what="endpoints listing the pods",
    )
    endpoints = _json(cluster, "endpoints", "web")
    (subset,) = endpoints["subsets"]
    assert subset["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert {a["targetRef"]["kind"] for a in subset["addresses"]} == {"Pod"}
    assert all(a["nodeName"].startswith("kajitori-worker") for a in subset["addresses"])

    cluster.kubectl("scale", "deployment", "web", "--replicas=3")
    wait_until(lambda: len(_ready_ips(cluster, "web")) == 3, timeout=40, what="3 ready pods")
    wait_until(
        lambda: _endpoint_ips(cluster, "web") == _ready_ips(cluster, "web"),
        timeout=20,
        what="endpoints following the scale-up",
    )
    slices = _json(cluster, "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]
    (slice_,) = slices
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
        "endpointslice-controller.k8s.io"
    )
    assert slice_["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert {e["addresses"][0] for e in slice_["endpoints"]} == _ready_ips(cluster, "web")
    assert all(e["conditions"]["ready"] for e in slice_["endpoints"])
    table = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web")
    assert "IPv4" in table.stdout and "80" in table.stdout


def test_deleting_the_service_removes_its_endpoints_and_slices(cluster: KajitoriCluster) -> None:
    """Endpoints are deleted by the controller, slices by the garbage collector (owner ref)."""
    cluster.kubectl("create", "service", "clusterip", "gone", "--tcp=80:80")
    cluster.kubectl("patch", "service", "gone", "-p", '{"spec":{"selector":{"app":"web"}}}')
    wait_until(lambda: bool(_endpoint_ips(cluster, "gone")), timeout=20, what="endpoints")
    cluster.kubectl("delete", "service", "gone")

    def cleaned() -> bool:
        missing = cluster.kubectl("get", "endpoints", "gone", check=False).returncode != 0
        slices = _json(cluster, "endpointslices", "-l", "kubernetes.io/service-name=gone")
        return missing and not slices["items"]

    wait_until(cleaned, timeout=30, what="endpoints and slices removed")
