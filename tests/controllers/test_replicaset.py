"""The ReplicaSet controller against a real in-process API server, acting as its ServiceAccount."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, event_messages, eventually

from kajitori.client import events, informer, rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager, replicaset
from kajitori.controllers.common import pod_control
from kajitori.machinery import times

Object = dict[str, Any]
NS = "default"


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """The replicaset controller (as replicaset-controller) and the garbage collector."""
    return await start_controllers("replicaset", "garbagecollector")


def _rs(name: str, replicas: int, *, min_ready: int = 0) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }


async def _pods(client: rest.Client, app: str) -> list[Object]:
    listed = await client.list(rest.PODS, namespace=NS, label_selector=f"app={app}")
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def _rs_status(client: rest.Client, name: str) -> Object:
    return (await client.get(rest.REPLICASETS, name, namespace=NS)).get("status") or {}


async def _make_ready(client: rest.Client, pod: Object) -> None:
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": None}],
    }
    status["conditions"][0]["lastTransitionTime"] = pod["metadata"]["creationTimestamp"]
    await client.patch(
        rest.PODS,
        pod["metadata"]["name"],
        {"status": status},
        namespace=NS,
        subresource="status",
    )


async def test_a_replicaset_creates_its_pods_owned_and_labelled_from_the_template(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """3 replicas → 3 pods named ``<rs>-…`` with the template's labels and a controller ref."""
    created = await admin.create(rest.REPLICASETS, _rs("web", 3))
    pods = await eventually(lambda: _n_pods(admin, "web", 3))
    for pod in pods:
        meta = pod["metadata"]
        assert meta["generateName"] == "web-"
        assert meta["labels"] == {"app": "web", "tier": "web"}
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": created["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    status = await eventually(lambda: _status_with(admin, "web", replicas=3))
    assert status["fullyLabeledReplicas"] == 3
    assert status["observedGeneration"] == 1
    assert "readyReplicas" not in status
    reasons = await eventually(
        lambda: event_messages(admin, "web", "SuccessfulCreate", at_least=3, namespace=NS)
    )
    assert sorted(reasons) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)


async def _n_pods(client: rest.Client, app: str, n: int) -> list[Object] | None:
    pods = await _pods(client, app)
    return pods if len(pods) == n else None


async def _status_with(client: rest.Client, name: str, **expected: int) -> Object | None:
    status = await _rs_status(client, name)
    return status if all(status.get(k, 0) == v for k, v in expected.items()) else None


async def test_scaling_down_deletes_pods_that_are_not_ready_first(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Of 3 pods with one Ready, scaling to 1 keeps the Ready one and reports the deletes."""
    await admin.create(rest.REPLICASETS, _rs("down", 3))
    pods = await eventually(lambda: _n_pods(admin, "down", 3))
    await _make_ready(admin, pods[1])
    await eventually(lambda: _status_with(admin, "down", readyReplicas=1, availableReplicas=1))
    await admin.patch(rest.REPLICASETS, "down", {"spec": {"replicas": 1}}, namespace=NS)
    left = await eventually(lambda: _n_pods(admin, "down", 1))
    assert left[0]["metadata"]["name"] == pods[1]["metadata"]["name"]
    status = await eventually(lambda: _status_with(admin, "down", replicas=1, observedGeneration=2))
    assert status["readyReplicas"] == 1
    deleted = await eventually(
        lambda: event_messages(admin, "down", "SuccessfulDelete", at_least=2, namespace=NS)
    )
    assert sorted(deleted) == sorted(
        f"Deleted pod: {p['metadata']['name']}" for p in (pods[0], pods[2])
    )


async def test_an_orphan_is_adopted_and_a_pod_that_stops_matching_is_released_and_replaced(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A matching orphan counts as a replica; relabelling one releases it and a new pod appears."""
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stray", "namespace": NS, "labels": {"app": "adopt"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
    }
    await admin.create(rest.PODS, orphan)
    rs = await admin.create(rest.REPLICASETS, _rs("adopt", 2))
    pods = await eventually(lambda: _n_pods(admin, "adopt", 2))
    stray = next(p for p in pods if p["metadata"]["name"] == "stray")
    assert stray["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    await admin.patch(
        rest.PODS, "stray", {"metadata": {"labels": {"app": "elsewhere"}}}, namespace=NS
    )
    await eventually(lambda: _n_pods(admin, "adopt", 2))

    async def released() -> bool:
        pod = await admin.get(rest.PODS, "stray", namespace=NS)
        return not pod["metadata"].get("ownerReferences")

    await eventually(released)


async def test_available_replicas_wait_for_min_ready_seconds(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """With minReadySeconds 1, a pod ready just now is ready but becomes available only later."""
    await admin.create(rest.REPLICASETS, _rs("slow", 1, min_ready=1))
    (pod,) = await eventually(lambda: _n_pods(admin, "slow", 1))
    now = times.now_rfc3339()
    await admin.patch(
        rest.PODS,
        pod["metadata"]["name"],
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            }
        },
        namespace=NS,
        subresource="status",
    )
    status = await eventually(lambda: _status_with(admin, "slow", readyReplicas=1))
    assert status.get("availableReplicas", 0) == 0
    await eventually(lambda: _status_with(admin, "slow", availableReplicas=1), timeout=5)


async def test_failing_creations_set_the_replica_failure_condition_until_they_succeed(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """A create error → ReplicaFailure/FailedCreate with its message; success removes it."""
    fake = pod_control.FakePodControl(
        create_error=rest.ApiError({"code": 403, "reason": "Forbidden", "message": "quota says no"})
    )
    factory = informer.InformerFactory(admin)
    recorder = events.EventRecorder(admin, component="test")
    controller = replicaset.ReplicaSetController(
        client=admin, informers=factory, recorder=recorder, pod_control=fake
    )
    factory.start()
    try:
        await admin.create(rest.REPLICASETS, _rs("fail", 2))
        await factory.wait_for_sync()
        await eventually(lambda: _cached(factory, "default/fail"))
        with pytest.raises(RuntimeError, match="quota says no"):
            await controller.sync("default/fail")
        (condition,) = (await _rs_status(admin, "fail"))["conditions"]
        assert (condition["type"], condition["status"], condition["reason"]) == (
            "ReplicaFailure",
            "True",
            "FailedCreate",
        )
        assert condition["message"] == "quota says no"
        assert fake.actions == []
        fake.create_error = None
        await eventually(lambda: _cached_status(factory, "default/fail"))
        await controller.sync("default/fail")
        assert [a[0] for a in fake.actions] == ["create", "create"]
        assert "conditions" not in await _rs_status(admin, "fail")
    finally:
        controller.shut_down()
        await factory.stop()


async def _cached(factory: informer.InformerFactory, key: str) -> bool:
    return factory.informer(rest.REPLICASETS).indexer.get(key) is not None


async def _cached_status(factory: informer.InformerFactory, key: str) -> bool:
    cached = factory.informer(rest.REPLICASETS).indexer.get(key) or {}
    return bool((cached.get("status") or {}).get("conditions"))


async def test_deleting_a_replicaset_deletes_its_pods(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """The pods' owner references let the garbage collector remove them with the ReplicaSet."""
    await admin.create(rest.REPLICASETS, copy.deepcopy(_rs("gone", 2)))
    await eventually(lambda: _n_pods(admin, "gone", 2))
    await admin.delete(rest.REPLICASETS, "gone", namespace=NS)

    async def none_left() -> bool:
        return not await _pods(admin, "gone")

    await eventually(none_left)
