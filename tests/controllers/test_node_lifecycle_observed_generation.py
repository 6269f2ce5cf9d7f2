"""The pod conditions the node lifecycle and taint eviction controllers write carry the pod's generation.

KEP-5067: ``Ready=False`` (upstream's MarkPodsNotReady) and ``DisruptionTarget``
(reason ``DeletionByTaintManager``) name the ``metadata.generation`` of the
pod the controller acted on, a spec change before that included. Against a
real API server with the controller running; the nodes have no kubelet, so
they fall silent after the (shortened) grace period.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.controllers.conftest import eventually

from kajitori.client import rest
from kajitori.controllers import manager, node_lifecycle

Object = dict[str, Any]
NS = "default"
# A toleration whose addition is a spec change (the next generation) and changes nothing else.
EXTRA_TOLERATION = {"key": "example.com/extra", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
async def admin(admin: rest.Client) -> AsyncIterator[rest.Client]:
    """The admin client, with the node lifecycle controller running fast."""
    options = {"nodelifecycle": {"node_monitor_period": 0.2, "node_monitor_grace_period": 1.0}}
    controllers = manager.ControllerManager(admin, controllers=["nodelifecycle"], options=options)
    controllers.start()
    try:
        yield admin
    finally:
        await controllers.stop()


async def _node(admin: rest.Client, name: str) -> None:
    """A Ready node that will never post status again."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now}
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    await admin.create(rest.NODES, {**body, "status": {"conditions": [ready]}})


async def _pod(admin: rest.Client, name: str, node: str, seconds: int | None) -> Object:
    """A pod bound to ``node`` tolerating its unreachable taint for ``seconds`` (None: forever)."""
    toleration: Object = {
        "key": node_lifecycle.UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
    }
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [toleration],
            "containers": [{"name": "c", "image": "nginx"}],
        },
    }
    return await admin.create(rest.PODS, body, namespace=NS)


async def _bump(admin: rest.Client, name: str) -> int:
    """Add a toleration (a JSON patch: additions only); the pod's new generation."""
    add = [{"op": "add", "path": "/spec/tolerations/-", "value": EXTRA_TOLERATION}]
    patched = await admin.patch(rest.PODS, name, add, namespace=NS, patch_type="json")
    generation: int = patched["metadata"]["generation"]
    return generation


def _condition(pod: Object, kind: str) -> Object | None:
    return next((c for c in pod["status"].get("conditions") or () if c["type"] == kind), None)


async def _deleting(admin: rest.Client, name: str) -> Object | None:
    pod = await admin.get(rest.PODS, name, namespace=NS)
    return pod if pod["metadata"].get("deletionTimestamp") else None


async def test_taint_eviction_marks_each_pod_at_the_generation_it_had(admin: rest.Client) -> None:
    """DisruptionTarget names generation 1 on an untouched pod, 2 on one whose spec changed."""
    await _pod(admin, "untouched", "silent-a", 0)
    await _pod(admin, "changed", "silent-a", 0)
    assert await _bump(admin, "changed") == 2
    await _node(admin, "silent-a")

    for name, generation in (("untouched", 1), ("changed", 2)):
        pod = await eventually(lambda name=name: _deleting(admin, name))
        marked = _condition(pod, "DisruptionTarget")
        assert marked is not None
        assert (marked["reason"], marked["observedGeneration"]) == (
            "DeletionByTaintManager",
            generation,
        )
        # The graceful delete that followed moved the pod past the generation it was marked at.
        assert pod["metadata"]["generation"] == generation + 1


async def test_pods_on_a_silent_node_become_unready_at_their_current_generation(
    admin: rest.Client,
) -> None:
    """MarkPodsNotReady replaces the kubelet's Ready=True (generation 1) at generation 2."""
    await _pod(admin, "served", "silent-b", None)
    ready = {"type": "Ready", "status": "True", "observedGeneration": 1}
    await admin.patch(
        rest.PODS,
        "served",
        {"status": {"phase": "Running", "conditions": [ready]}},
        namespace=NS,
        subresource="status",
    )
    assert await _bump(admin, "served") == 2
    await _node(admin, "silent-b")

    async def unready() -> Object | None:
        pod = await admin.get(rest.PODS, "served", namespace=NS)
        condition = _condition(pod, "Ready")
        return condition if condition and condition["status"] == "False" else None

    condition = await eventually(unready)
    assert condition["observedGeneration"] == 2
