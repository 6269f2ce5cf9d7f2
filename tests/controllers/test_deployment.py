"""The Deployment controller with the ReplicaSet controller, against a real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import events, rest
from kajitori.controllers import manager
from kajitori.controllers.common import deployment_util, pod_util
from kajitori.machinery import times

Object = dict[str, Any]
NS = "default"


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """The deployment and replicaset controllers as their ServiceAccounts, plus the GC."""
    return await start_controllers("deployment", "replicaset", "garbagecollector")


@pytest.fixture
async def kubelet(admin: rest.Client) -> AsyncIterator[None]:
    """Stands in for a kubelet: marks every pod Running and Ready shortly after it appears."""

    async def loop() -> None:
        while True:
            for pod in (await admin.list(rest.PODS, namespace=NS))["items"]:
                if not pod_util.is_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(rest.ApiError):
                        await _make_ready(admin, pod)
            await asyncio.sleep(0.1)

    task = asyncio.ensure_future(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _make_ready(client: rest.Client, pod: Object) -> None:
    condition = {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": times.now_rfc3339(),
    }
    await client.patch(
        rest.PODS,
        pod["metadata"]["name"],
        {"status": {"phase": "Running", "conditions": [condition]}},
        namespace=NS,
        subresource="status",
    )


def _deployment(name: str, replicas: int, *, image: str = "nginx:1", **spec: Any) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
            **spec,
        },
    }


_eventually = functools.partial(eventually, timeout=15.0)  # rollouts: allow longer


async def _rses(client: rest.Client, app: str) -> list[Object]:
    listed = await client.list(rest.REPLICASETS, namespace=NS, label_selector=f"app={app}")
    return sorted(listed["items"], key=deployment_util.revision)


async def _get(client: rest.Client, name: str) -> Object:
    return await client.get(rest.DEPLOYMENTS, name, namespace=NS)


def _conditions(d: Object) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"])
        for c in (d.get("status") or {}).get("conditions") or ()
    }


async def _complete(client: rest.Client, name: str) -> Object | None:
    d = await _get(client, name)
    progressing = _conditions(d).get("Progressing", ("", "", ""))
    done = deployment_util.deployment_complete(d, d.get("status") or {})
    return d if done and progressing[1] == "NewReplicaSetAvailable" else None


async def _events(client: rest.Client, name: str, reason: str) -> list[str]:
    listed = await client.list(rest.EVENTS, namespace=NS)
    return [
        e["message"]
        for e in listed["items"]
        if e["involvedObject"].get("name") == name and e["reason"] == reason
    ]


async def test_a_new_deployment_creates_a_hashed_replica_set_and_reports_progress(
    admin: rest.Client, controllers: manager.ControllerManager, kubelet: None
) -> None:
    """One RS ``web-<hash>`` (revision 1, desired 3, max 4) and, once ready, upstream's conditions."""
    created = await admin.create(rest.DEPLOYMENTS, _deployment("web", 3))
    d = await _eventually(lambda: _complete(admin, "web"))
    (rs,) = await _rses(admin, "web")
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert set(hash_) <= set(deployment_util.SAFE_ALPHABET)
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == hash_
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    annotations = rs["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "1"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "3"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "4"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (3, 3, 3)
    assert status["availableReplicas"] == 3
    assert "unavailableReplicas" not in status
    assert status["observedGeneration"] == 1
    assert _conditions(d) == {
        "Available": ("True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        "Progressing": (
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "web-{hash_}" has successfully progressed.',
        ),
    }
    scaled = await _events(admin, "web", "ScalingReplicaSet")
    assert scaled == [f"Scaled up replica set web-{hash_} from 0 to 3"]


async def test_a_template_change_rolls_out_a_new_replica_set_and_scales_the_old_one_to_zero(
    admin: rest.Client, controllers: manager.ControllerManager, kubelet: None
) -> None:
    """Changing the image creates revision 2; when complete the old RS has 0 replicas."""
    await admin.create(rest.DEPLOYMENTS, _deployment("roll", 4))
    await _eventually(lambda: _complete(admin, "roll"))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}
    }
    await admin.patch(rest.DEPLOYMENTS, "roll", patch, namespace=NS, patch_type="strategic")

    async def rolled() -> Object | None:
        d = await _complete(admin, "roll")
        return d if d is not None and d["status"]["observedGeneration"] == 2 else None

    d = await _eventually(rolled)
    old, new = await _rses(admin, "roll")
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    # How many steps the old RS takes depends on how fast pods become ready;
    # events are recorded asynchronously. From the tenth similar event on, upstream's
    # correlator records the message with its "combined" prefix.
    combined = re.escape(events.AGGREGATE_PREFIX)
    last_step = re.compile(
        rf"(?:{combined})?Scaled down replica set {old['metadata']['name']} from [1-4] to 0"
    )

    async def scaled_to_zero() -> bool:
        scaled = await _events(admin, "roll", "ScalingReplicaSet")
        return any(last_step.fullmatch(message) for message in scaled)

    assert await _eventually(scaled_to_zero)


async def test_recreate_scales_old_pods_away_before_creating_new_ones(
    admin: rest.Client, controllers: manager.ControllerManager, kubelet: None
) -> None:
    """With Recreate, the old RS goes to 0 in one step and the new one then gets all replicas."""
    body = _deployment("recreate", 2, strategy={"type": "Recreate"})
    await admin.create(rest.DEPLOYMENTS, body)
    await _eventually(lambda: _complete(admin, "recreate"))
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "recreate", "v": "2"}}}}}
    await admin.patch(rest.DEPLOYMENTS, "recreate", patch, namespace=NS)

    async def rolled() -> list[Object] | None:
        rses = await _rses(admin, "recreate")
        d = await _complete(admin, "recreate")
        return rses if d is not None and len(rses) == 2 else None

    old, new = await _eventually(rolled)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 2)
    scaled = await _events(admin, "recreate", "ScalingReplicaSet")
    assert scaled[-2:] == [
        f"Scaled down replica set {old['metadata']['name']} from 2 to 0",
        f"Scaled up replica set {new['metadata']['name']} from 0 to 2",
    ]


async def test_a_paused_deployment_says_so_and_does_not_roll_out_until_resumed(
    admin: rest.Client, controllers: manager.ControllerManager, kubelet: None
) -> None:
    """Paused: Progressing Unknown/DeploymentPaused, no new RS; resumed: DeploymentResumed, then it rolls."""
    await admin.create(rest.DEPLOYMENTS, _deployment("paused", 1))
    await _eventually(lambda: _complete(admin, "paused"))
    await admin.patch(rest.DEPLOYMENTS, "paused", {"spec": {"paused": True}}, namespace=NS)

    async def paused() -> Object | None:
        d = await _get(admin, "paused")
        return d if _conditions(d)["Progressing"][1] == "DeploymentPaused" else None

    d = await _eventually(paused)
    assert _conditions(d)["Progressing"] == ("Unknown", "DeploymentPaused", "Deployment is paused")
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "paused", "v": "2"}}}}}
    await admin.patch(rest.DEPLOYMENTS, "paused", patch, namespace=NS)
    await _eventually(lambda: _observed(admin, "paused", 3))
    assert len(await _rses(admin, "paused")) == 1
    await admin.patch(rest.DEPLOYMENTS, "paused", {"spec": {"paused": False}}, namespace=NS)
    await _eventually(lambda: _n_rses(admin, "paused", 2))
    await _eventually(lambda: _complete(admin, "paused"))


async def _observed(client: rest.Client, name: str, generation: int) -> bool:
    d = await _get(client, name)
    return bool(d["status"].get("observedGeneration") == generation)


async def _n_rses(client: rest.Client, app: str, n: int) -> bool:
    return len(await _rses(client, app)) == n


async def test_scaling_mid_rollout_spreads_replicas_over_both_replica_sets(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Nothing ready: the rollout stalls at 3 old + 2 new; scaling 4 → 8 doubles both."""
    await admin.create(rest.DEPLOYMENTS, _deployment("grow", 4))
    await _eventually(lambda: _n_rses(admin, "grow", 1))
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "grow", "v": "2"}}}}}
    await admin.patch(rest.DEPLOYMENTS, "grow", patch, namespace=NS)

    async def stalled() -> list[Object] | None:
        rses = await _rses(admin, "grow")
        sizes = [rs["spec"]["replicas"] for rs in rses]
        return rses if sizes == [3, 2] else None

    await _eventually(stalled)
    await admin.patch(rest.DEPLOYMENTS, "grow", {"spec": {"replicas": 8}}, namespace=NS)

    async def spread() -> list[int] | None:
        sizes = [rs["spec"]["replicas"] for rs in await _rses(admin, "grow")]
        return sizes if sum(sizes) == 10 else None

    assert await _eventually(spread) == [6, 4]
    for rs in await _rses(admin, "grow"):
        annotations = rs["metadata"]["annotations"]
        assert annotations["deployment.kubernetes.io/desired-replicas"] == "8"
        assert annotations["deployment.kubernetes.io/max-replicas"] == "10"


async def test_old_replica_sets_beyond_the_revision_history_limit_are_deleted(
    admin: rest.Client, controllers: manager.ControllerManager, kubelet: None
) -> None:
    """revisionHistoryLimit 1: after three templates only the newest old RS is kept."""
    await admin.create(rest.DEPLOYMENTS, _deployment("hist", 1, revisionHistoryLimit=1))
    await _eventually(lambda: _complete(admin, "hist"))
    for version in ("2", "3"):
        patch = {"spec": {"template": {"metadata": {"labels": {"app": "hist", "v": version}}}}}
        await admin.patch(rest.DEPLOYMENTS, "hist", patch, namespace=NS)
        await _eventually(lambda v=version: _observed(admin, "hist", int(v)))
        await _eventually(lambda: _complete(admin, "hist"))
    await _eventually(lambda: _n_rses(admin, "hist", 2))
    revisions = [deployment_util.revision(rs) for rs in await _rses(admin, "hist")]
    assert revisions == [2, 3]


async def test_a_scaled_up_deployment_past_its_progress_deadline_is_not_synced_in_a_loop(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Complete, then scaled up with pods that never become ready, past progressDeadlineSeconds.

    Upstream never times such a rollout out (its Progressing reason stays
    NewReplicaSetAvailable); the controller once re-queued it at once on every
    sync, a spin that starved everything else in the process.
    """
    await admin.create(rest.DEPLOYMENTS, _deployment("stuck", 1, progressDeadlineSeconds=1))
    pod = await _eventually(lambda: _one_pod(admin, "stuck"))
    await _make_ready(admin, pod)
    await _eventually(lambda: _complete(admin, "stuck"))
    await admin.patch(rest.DEPLOYMENTS, "stuck", {"spec": {"replicas": 3}}, namespace=NS)
    await _eventually(lambda: _has_pods(admin, "stuck", 3))
    await asyncio.sleep(1.5)  # past the deadline measured from the last progress
    controller = controllers.controllers["deployment"]
    syncs = 0
    real_sync = controller.sync

    async def counting_sync(key: str) -> None:
        nonlocal syncs
        syncs += 1
        await real_sync(key)

    controller.sync = counting_sync  # type: ignore[method-assign]
    await asyncio.sleep(1.0)
    d = await _get(admin, "stuck")
    assert _conditions(d)["Progressing"][1] == "NewReplicaSetAvailable"
    assert syncs < 5, f"{syncs} syncs in a second with nothing changing"


async def _one_pod(client: rest.Client, app: str) -> Object | None:
    items = (await client.list(rest.PODS, namespace=NS, label_selector=f"app={app}"))["items"]
    return items[0] if len(items) == 1 else None


async def _has_pods(client: rest.Client, app: str, count: int) -> bool:
    items = (await client.list(rest.PODS, namespace=NS, label_selector=f"app={app}"))["items"]
    return len(items) == count
