"""Node lifecycle: silent nodes become Unknown and tainted, NoExecute taints evict pods.

Also covers the two pieces it relies on: the DefaultTolerationSeconds
admission plugin and node IPAM's CIDR arithmetic.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.controllers.conftest import eventually

from kajitori.client import events, informer, rest
from kajitori.controllers import manager, node_lifecycle, nodeipam

Object = dict[str, Any]
UNREACHABLE_NO_EXECUTE = {"key": node_lifecycle.UNREACHABLE, "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        pytest.param(
            {"key": node_lifecycle.UNREACHABLE, "operator": "Exists"}, True, id="key-exists"
        ),
        pytest.param({"operator": "Exists"}, True, id="empty-key-exists-tolerates-all"),
        pytest.param(
            {"key": node_lifecycle.UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"},
            False,
            id="other-effect",
        ),
        pytest.param(
            {"key": node_lifecycle.NOT_READY, "operator": "Exists"}, False, id="other-key"
        ),
        pytest.param(
            {"key": node_lifecycle.UNREACHABLE, "value": "x"}, False, id="equal-other-value"
        ),
        pytest.param({"key": node_lifecycle.UNREACHABLE}, True, id="equal-empty-value"),
    ],
)
def test_toleration_matching_follows_upstream(toleration: Object, expected: bool) -> None:
    """Effect, key, operator and value decide whether a toleration covers a taint."""
    assert node_lifecycle.tolerates(toleration, UNREACHABLE_NO_EXECUTE) is expected


@pytest.mark.parametrize(
    ("tolerations", "delay"),
    [
        pytest.param([], 0.0, id="untolerated-now"),
        pytest.param([{"operator": "Exists"}], None, id="no-seconds-forever"),
        pytest.param(
            [{"operator": "Exists", "tolerationSeconds": 30}, {"operator": "Exists"}],
            30.0,
            id="first-match-counts",
        ),
        pytest.param([{"operator": "Exists", "tolerationSeconds": -5}], 0.0, id="negative-now"),
    ],
)
def test_the_eviction_delay_is_the_smallest_toleration_used(
    tolerations: list[Object], delay: float | None
) -> None:
    """Upstream's getMinTolerationTime over the tolerations matching the NoExecute taints."""
    pod = {"spec": {"tolerations": tolerations}}
    assert node_lifecycle.eviction_delay(pod, [UNREACHABLE_NO_EXECUTE]) == delay


@pytest.mark.parametrize(
    ("ready", "keys"),
    [
        pytest.param("True", set(), id="ready-untainted"),
        pytest.param(
            "False",
            {(node_lifecycle.NOT_READY, "NoSchedule"), (node_lifecycle.NOT_READY, "NoExecute")},
            id="not-ready",
        ),
        pytest.param(
            "Unknown",
            {(node_lifecycle.UNREACHABLE, "NoSchedule"), (node_lifecycle.UNREACHABLE, "NoExecute")},
            id="unknown-unreachable",
        ),
    ],
)
def test_taints_follow_the_ready_condition_and_keep_foreign_ones(
    ready: str, keys: set[tuple[str, str]]
) -> None:
    """Managed taints match the Ready condition; a user's taint is left alone."""
    foreign = {"key": "example.com/x", "effect": "NoSchedule"}
    stale = {"key": node_lifecycle.UNREACHABLE, "effect": "NoExecute", "timeAdded": "t0"}
    node = {
        "spec": {"taints": [foreign, stale]},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }
    taints = node_lifecycle.reconcile_taints(node, "t1")
    result = taints if taints is not None else node["spec"]["taints"]
    assert foreign in result
    assert {(t["key"], t["effect"]) for t in result if t is not foreign} == keys


def test_node_ipam_hands_out_distinct_blocks_and_reuses_released_ones() -> None:
    """/24 blocks in order, skipping ones already on nodes; a released block comes back."""
    cidrs = nodeipam.CIDRSet("10.244.0.0/22")
    cidrs.occupy("10.244.1.0/24")
    assert [cidrs.allocate_next() for _ in range(3)] == [
        "10.244.0.0/24",
        "10.244.2.0/24",
        "10.244.3.0/24",
    ]
    assert cidrs.allocate_next() is None
    cidrs.release("10.244.2.0/24")
    assert cidrs.allocate_next() == "10.244.2.0/24"


@pytest.mark.parametrize(
    ("nodes", "cidr"),
    [
        pytest.param(3, "10.244.0.0/16", id="kind-default"),
        pytest.param(1000, "10.244.0.0/14", id="thousand-nodes"),
        pytest.param(3000, "10.240.0.0/12", id="more"),
    ],
)
def test_the_cluster_cidr_grows_with_the_node_count(nodes: int, cidr: str) -> None:
    """kind's 10.244.0.0/16 until 256 nodes, then larger blocks that avoid the Service range."""
    assert nodeipam.cluster_cidr_for(nodes) == cidr


# ----- against a real API server ----------------------------------------------


@pytest.fixture
async def admin(admin: rest.Client) -> AsyncIterator[rest.Client]:
    """The admin client of conftest, with the node lifecycle controller running as admin."""
    options = {"nodelifecycle": {"node_monitor_period": 0.2, "node_monitor_grace_period": 1.0}}
    controllers = manager.ControllerManager(admin, controllers=["nodelifecycle"], options=options)
    controllers.start()
    try:
        yield admin
    finally:
        await controllers.stop()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def make_node(admin: rest.Client, name: str) -> None:
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "lastHeartbeatTime": _now(),
    }
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [ready]},
    }
    await admin.create(rest.NODES, node)


def bound_pod(name: str, node: str, tolerations: list[Object]) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "tolerations": tolerations,
            "containers": [{"name": "c", "image": "nginx"}],
        },
    }


def unreachable(seconds: int | None) -> list[Object]:
    toleration: Object = {
        "key": node_lifecycle.UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
    }
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return [toleration]


async def test_a_silent_node_becomes_unknown_and_tainted_unreachable(admin: rest.Client) -> None:
    """Past the grace period: four conditions Unknown with upstream's reason, then taints."""
    await make_node(admin, "n1")

    async def tainted() -> Object | None:
        node = await admin.get(rest.NODES, "n1")
        return node if node["spec"].get("taints") else None

    node = await eventually(tainted)
    conditions = {c["type"]: c for c in node["status"]["conditions"]}
    assert set(conditions) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    for condition in conditions.values():
        assert (condition["status"], condition["reason"], condition["message"]) == (
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        )
    taints = {(t["key"], t["effect"]): t for t in node["spec"]["taints"]}
    assert set(taints) == {
        (node_lifecycle.UNREACHABLE, "NoSchedule"),
        (node_lifecycle.UNREACHABLE, "NoExecute"),
    }
    assert "timeAdded" in taints[(node_lifecycle.UNREACHABLE, "NoExecute")]
    # Reported as upstream's node lifecycle controller reports it.
    event = await eventually(lambda: event_about(admin, "n1", "NodeNotReady"))
    assert event["source"] == {"component": "node-controller"}
    assert event["involvedObject"]["kind"] == "Node"


async def test_noexecute_taints_evict_pods_after_their_toleration_seconds(
    admin: rest.Client,
) -> None:
    """tolerationSeconds 0: at once; 2: after about 2 s; none: never (untolerated pods get 300 s)."""
    await make_node(admin, "n2")
    await admin.create(rest.PODS, bound_pod("now", "n2", unreachable(0)))
    await admin.create(rest.PODS, bound_pod("later", "n2", unreachable(2)))
    await admin.create(rest.PODS, bound_pod("never", "n2", unreachable(None)))
    started = asyncio.get_running_loop().time()

    async def deleting(name: str) -> Object | None:
        found = await admin.get(rest.PODS, name, namespace="default")
        return found if found["metadata"].get("deletionTimestamp") else None

    now = await eventually(lambda: deleting("now"))
    tainted_at = asyncio.get_running_loop().time()
    later = await eventually(lambda: deleting("later"))
    assert asyncio.get_running_loop().time() - tainted_at >= 1.5
    assert asyncio.get_running_loop().time() - started >= 2.5  # grace period + toleration
    for pod in (now, later):
        disruption = {c["type"]: c for c in pod["status"]["conditions"]}["DisruptionTarget"]
        assert disruption["reason"] == "DeletionByTaintManager"
    never = await admin.get(rest.PODS, "never", namespace="default")
    assert not never["metadata"].get("deletionTimestamp")
    # Upstream's taint eviction is a controller of its own, and its Events say so.
    event = await eventually(lambda: event_about(admin, "now", "TaintManagerEviction"))
    assert event["source"] == {"component": "taint-eviction-controller"}
    assert event["message"] == "Marking for deletion Pod default/now"


async def event_about(admin: rest.Client, name: str, reason: str) -> Object | None:
    listed = await admin.list(rest.EVENTS, namespace="default")
    return next(
        (
            e
            for e in listed["items"]
            if e["involvedObject"].get("name") == name and e["reason"] == reason
        ),
        None,
    )


async def test_the_default_toleration_seconds_plugin_adds_five_minute_tolerations(
    admin: rest.Client,
) -> None:
    """Pods get not-ready and unreachable NoExecute tolerations of 300 s unless they have their own."""
    plain = await admin.create(rest.PODS, bound_pod("plain", "", []))
    assert sorted((t["key"], t["tolerationSeconds"]) for t in plain["spec"]["tolerations"]) == [
        (node_lifecycle.NOT_READY, 300),
        (node_lifecycle.UNREACHABLE, 300),
    ]
    own = await admin.create(rest.PODS, bound_pod("own", "", unreachable(7)))
    assert sorted((t["key"], t["tolerationSeconds"]) for t in own["spec"]["tolerations"]) == [
        (node_lifecycle.NOT_READY, 300),
        (node_lifecycle.UNREACHABLE, 7),
    ]


async def test_built_on_a_synced_node_informer_it_looks_at_the_pods_of_each_known_node(
    admin: rest.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A shared node informer that already holds nodes calls the new controller's node handler
    while it is being built; that handler reads the pod index, which must exist by then."""
    await make_node(admin, "known")
    await admin.create(rest.PODS, bound_pod("p", "known", []), namespace="default")
    factory = informer.InformerFactory(admin, share=False)
    for resource in (rest.NODES, rest.PODS):
        source = factory.informer(resource)
        source.start()
        await source.wait_for_sync()
    recorder = events.EventRecorder(admin, component="test")
    try:
        with caplog.at_level(logging.ERROR, logger="kajitori.client.informer"):
            controller = node_lifecycle.NodeLifecycleController(
                client=admin, informers=factory, recorder=recorder
            )
        assert not [r for r in caplog.records if "handler failed" in r.getMessage()]
        queued = len(controller.eviction_queue)
        assert queued >= 1  # the pod on the known node, enqueued for a taint check
    finally:
        for resource in (rest.NODES, rest.PODS):
            await factory.informer(resource).stop()
