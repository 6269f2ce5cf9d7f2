"""The disruption controller against a real in-process API server, with the eviction API."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import disruption, manager

Object = dict[str, Any]
NS = "default"


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """Only the disruption controller (no workload controllers: owners are made by hand)."""
    return await start_controllers("disruption")


async def _pod(
    client: rest.Client, name: str, *, ready: bool = True, owner: Object | None = None
) -> Object:
    meta: Object = {"name": name, "labels": {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
    }
    await client.create(rest.PODS, pod, namespace=NS)
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return await client.patch(
        rest.PODS, name, {"status": status}, namespace=NS, subresource="status"
    )


def _template() -> Object:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
    }


async def _replicaset(client: rest.Client, replicas: int, owner: Object | None = None) -> Object:
    meta: Object = {"name": "web-rs"}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": _template(),
        },
    }
    created = await client.create(rest.REPLICASETS, body, namespace=NS)
    return {**created, "apiVersion": "apps/v1", "kind": "ReplicaSet"}


async def _pdb(client: rest.Client, **spec: Any) -> Object:
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    return await client.create(rest.PODDISRUPTIONBUDGETS, body, namespace=NS)


def _status_with(client: rest.Client, **wanted: Any) -> Callable[[], Awaitable[Object | None]]:
    """A check for ``_eventually``: the PDB's status once it has every ``wanted`` value."""

    async def check() -> Object | None:
        pdb = await client.get(rest.PODDISRUPTIONBUDGETS, "web", namespace=NS)
        status = pdb.get("status") or {}
        return status if all(status.get(k) == v for k, v in wanted.items()) else None

    return check


async def test_an_integer_min_available_counts_the_pods_present(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """minAvailable 2 over 3 ready pods: expected 3, desired 2, 1 disruption allowed."""
    for i in range(3):
        await _pod(admin, f"web-{i}")
    created = await _pdb(admin, minAvailable=2)
    status = await eventually(_status_with(admin, currentHealthy=3, disruptionsAllowed=1))
    assert (status["desiredHealthy"], status["expectedPods"]) == (2, 3)
    assert status["observedGeneration"] == created["metadata"]["generation"]
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "True",
        "SufficientPods",
    )
    await _pod(admin, "web-unready", ready=False)
    await admin.delete(rest.PODS, "web-0", namespace=NS)
    status = await eventually(_status_with(admin, currentHealthy=2, disruptionsAllowed=0))
    assert status["conditions"][0]["reason"] == "InsufficientPods"


async def test_a_percentage_scales_by_the_replicaset_and_then_its_deployment(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """maxUnavailable 50% of the ReplicaSet's 4 → desired 2; owned by a 6-replica Deployment → 3."""
    rs = await _replicaset(admin, 4)
    for i in range(4):
        await _pod(admin, f"web-{i}", owner=rs)
    await _pdb(admin, maxUnavailable="50%")
    status = await eventually(_status_with(admin, expectedPods=4, desiredHealthy=2))
    assert status["disruptionsAllowed"] == 2


async def test_a_replicaset_owned_by_a_deployment_counts_the_deployments_replicas(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """minAvailable 50% of a 6-replica Deployment (through its ReplicaSet) → desired 3."""
    deployment = await admin.create(
        rest.DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 6,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _template(),
            },
        },
        namespace=NS,
    )
    rs = await _replicaset(admin, 4, owner=deployment)
    for i in range(4):
        await _pod(admin, f"web-{i}", owner=rs)
    await _pdb(admin, minAvailable="50%")
    status = await eventually(_status_with(admin, expectedPods=6, desiredHealthy=3))
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (4, 1)


async def test_a_missing_controller_fails_safe(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A pod whose owner is gone: no disruptions, DisruptionAllowed=False/SyncFailed."""
    ghost = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"},
    }
    await _pod(admin, "web-0", owner=ghost)
    await _pdb(admin, maxUnavailable=1)

    async def failed() -> Object | None:
        pdb = await admin.get(rest.PODDISRUPTIONBUDGETS, "web", namespace=NS)
        for condition in (pdb.get("status") or {}).get("conditions") or ():
            if condition["reason"] == "SyncFailed":
                return condition
        return None

    condition = await eventually(failed)
    assert condition["status"] == "False"
    assert condition["message"] == 'found no controllers for pod "web-0"'


async def test_evictions_spend_the_budget_until_the_controller_recounts(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Evict one of 3 (minAvailable 2): allowed drops to 0; the next eviction is a 429."""
    for i in range(3):
        await _pod(admin, f"web-{i}")
    await _pdb(admin, minAvailable=2)
    await eventually(_status_with(admin, disruptionsAllowed=1))
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-0"}}
    await admin.create(rest.PODS, eviction, namespace=NS, subresource="eviction")
    # Once the pod is gone the controller drops its disruptedPods entry.
    await eventually(
        _status_with(admin, currentHealthy=2, disruptionsAllowed=0, disruptedPods=None)
    )
    second = {**eviction, "metadata": {"name": "web-1"}}
    with pytest.raises(rest.ApiError) as caught:
        await admin.create(rest.PODS, second, namespace=NS, subresource="eviction")
    assert caught.value.code == 429


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        pytest.param(3, 10, True, 3, id="int"),
        pytest.param("25%", 10, True, 3, id="percent-up"),
        pytest.param("25%", 10, False, 2, id="percent-down"),
        pytest.param("100%", 0, True, 0, id="nothing-expected"),
    ],
)
def test_scaled_values_follow_intstr(value: Any, total: int, round_up: bool, expected: int) -> None:
    """GetScaledValueFromIntOrPercent: ints as is, percentages of the total rounded."""
    assert disruption.scaled_value(value, total, round_up=round_up) == expected


def test_disrupted_pods_expire_after_two_minutes_or_once_deleting() -> None:
    """Entries stay while the pod exists, is not deleting and is under 2 min old."""
    now = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
    pods = [
        {"metadata": {"name": "fresh"}},
        {"metadata": {"name": "old"}},
        {"metadata": {"name": "deleting", "deletionTimestamp": "2026-01-01T11:59:59Z"}},
    ]
    pdb = {
        "status": {
            "disruptedPods": {
                "fresh": "2026-01-01T11:59:30Z",
                "old": "2026-01-01T11:57:00Z",
                "deleting": "2026-01-01T11:59:30Z",
                "gone": "2026-01-01T11:59:30Z",
            }
        }
    }
    kept, recheck = disruption.build_disrupted_pods(pdb, pods, now)
    assert kept == {"fresh": "2026-01-01T11:59:30Z"}
    assert recheck == datetime.datetime(2026, 1, 1, 12, 1, 30, tzinfo=datetime.UTC)
    assert (
        disruption.count_healthy(
            [
                {
                    "metadata": {"name": "fresh"},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }
            ],
            kept,
        )
        == 0
    )
