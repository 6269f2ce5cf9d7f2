"""ComponentStatuses of an API server whose scheduler and controller manager run elsewhere.

A ``kajitori apiserver`` alone (the ``apiserver`` fixture: no component in its
process) reports them from their leader-election Leases in kube-system
(decision 0081): healthy while a holder renews the Lease within its duration;
unhealthy, with an error naming the Lease, when it is missing, released or
stale. ``etcd-0`` is the storage backend answering a read.
"""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.client import rest

COMPONENTSTATUSES = rest.Resource("", "v1", "componentstatuses", False, "ComponentStatus")


def lease(name: str, *, holder: str, renewed_ago: float, duration: int = 15) -> dict[str, Any]:
    renewed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=renewed_ago)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def condition(status: dict[str, Any]) -> tuple[str, str, str]:
    (only,) = status["conditions"]
    assert only["type"] == "Healthy"
    return only["status"], only.get("message", ""), only.get("error", "")


async def test_components_elsewhere_are_read_from_their_leases(admin: rest.Client) -> None:
    """Missing: Unknown; renewed: True/ok; stale or released: False, each error naming why."""
    listed = await admin.list(COMPONENTSTATUSES)
    by_name = {item["metadata"]["name"]: condition(item) for item in listed["items"]}
    assert by_name["etcd-0"] == ("True", "ok", "")
    assert by_name["scheduler"] == (
        "Unknown",
        "",
        "no leader-election Lease kube-system/kube-scheduler: not running, "
        "or running with --leader-elect=false",
    )
    await admin.create(rest.LEASES, lease("kube-scheduler", holder="host_1", renewed_ago=1))
    scheduler = await admin.get(COMPONENTSTATUSES, "scheduler")
    assert condition(scheduler) == ("True", "ok", "")

    stale = lease("kube-controller-manager", holder="host_2", renewed_ago=60)
    await admin.create(rest.LEASES, stale)
    status, message, error = condition(await admin.get(COMPONENTSTATUSES, "controller-manager"))
    assert (status, message) == ("False", "")
    assert error.startswith(
        "leader-election Lease kube-system/kube-controller-manager held by host_2 "
        "was last renewed at "
    )
    assert error.endswith(", more than 15s ago")

    released = await admin.get(rest.LEASES, "kube-scheduler", namespace="kube-system")
    released["spec"]["holderIdentity"] = ""
    await admin.update(rest.LEASES, released)
    assert condition(await admin.get(COMPONENTSTATUSES, "scheduler")) == (
        "False",
        "",
        "leader-election Lease kube-system/kube-scheduler has no holder",
    )
