"""The DaemonSet controller: pure placement and planning, then against an in-process API server."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, event_messages, eventually

from kajitori.client import rest
from kajitori.cmd import scheduler as scheduler_cmd
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager
from kajitori.controllers.daemonset import controller, placement, planning, revisions
from kajitori.scheduler import framework, scheduler
from kajitori.scheduler.plugins import node_affinity

Object = dict[str, Any]
NS = "default"
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
EARLIER = "2026-01-01T11:00:00Z"


# ----- builders -------------------------------------------------------------------------


def _node(
    name: str, *, labels: dict[str, str] | None = None, taints: list[Object] | None = None
) -> Object:
    node: Object = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
    }
    node["spec"] = {"taints": taints} if taints else {}
    return node


def _ds(
    name: str = "ds",
    *,
    node_selector: dict[str, str] | None = None,
    pod_spec: Object | None = None,
    strategy: Object | None = None,
    min_ready: int = 0,
) -> Object:
    spec: Object = {"containers": [{"name": "main", "image": "busybox:1"}], **(pod_spec or {})}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "minReadySeconds": min_ready,
            "updateStrategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def _pod(
    name: str,
    node: str,
    *,
    hash_: str = "new",
    bound: bool = True,
    ready: bool = True,
    phase: str = "Running",
    created: str = EARLIER,
) -> Object:
    spec: Object = {"nodeName": node} if bound else {}
    pinned = placement.pin_to_node({"spec": spec}, node)
    status: Object = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": EARLIER}]
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "labels": {"app": "ds", placement.HASH_LABEL: hash_},
        },
        "spec": pinned["spec"],
        "status": status,
    }


def _fits(ds: Object, nodes: list[Object]) -> dict[str, placement.Fit]:
    return {n["metadata"]["name"]: placement.should_run(n, ds) for n in nodes}


# ----- placement ------------------------------------------------------------------------------


def test_daemon_pods_tolerate_node_problems_as_upstream() -> None:
    """not-ready/unreachable NoExecute forever; pressure and unschedulable NoSchedule; network only for hostNetwork."""
    spec: Object = {
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ]
    }
    placement.add_daemon_tolerations(spec)
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]
    host: Object = {"hostNetwork": True}
    placement.add_daemon_tolerations(host)
    assert host["tolerations"][-1] == {
        "key": "node.kubernetes.io/network-unavailable",
        "operator": "Exists",
        "effect": "NoSchedule",
    }


TAINT_A = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
EVICT_A = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
TOLERATE_A = {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}
REQUIRED_ZONE = {
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
}


@pytest.mark.parametrize(
    ("node", "ds", "expected"),
    [
        pytest.param(_node("n"), _ds(), (True, True), id="plain-node"),
        pytest.param(
            _node("n", labels={"disk": "ssd"}),
            _ds(node_selector={"disk": "ssd"}),
            (True, True),
            id="selector-matches",
        ),
        pytest.param(
            _node("n"), _ds(node_selector={"disk": "ssd"}), (False, False), id="selector-misses"
        ),
        pytest.param(
            _node("n", labels={"zone": "a"}),
            _ds(pod_spec=REQUIRED_ZONE),
            (True, True),
            id="affinity-matches",
        ),
        pytest.param(
            _node("n", labels={"zone": "b"}),
            _ds(pod_spec=REQUIRED_ZONE),
            (False, False),
            id="affinity-misses",
        ),
        pytest.param(
            _node("n", taints=[TAINT_A]), _ds(), (False, True), id="noschedule-keeps-running-pods"
        ),
        pytest.param(_node("n", taints=[EVICT_A]), _ds(), (False, False), id="noexecute-evicts"),
        pytest.param(
            _node("n", taints=[EVICT_A]), _ds(pod_spec=TOLERATE_A), (True, True), id="tolerated"
        ),
        pytest.param(
            _node(
                "n", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
            ),
            _ds(),
            (True, True),
            id="cordoned-node-still-runs-daemons",
        ),
        pytest.param(
            _node("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
            _ds(),
            (True, True),
            id="not-ready-node-keeps-daemons",
        ),
        pytest.param(
            _node(
                "n",
                taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}],
            ),
            _ds(),
            (False, True),
            id="network-unavailable-needs-host-network",
        ),
        pytest.param(
            _node(
                "n",
                taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}],
            ),
            _ds(pod_spec={"hostNetwork": True}),
            (True, True),
            id="host-network-tolerates-network-unavailable",
        ),
        pytest.param(
            _node("n"),
            _ds(pod_spec={"nodeName": "other"}),
            (False, False),
            id="template-pinned-elsewhere",
        ),
    ],
)
def test_should_run_answers_whether_to_start_and_whether_to_keep(
    node: Object, ds: Object, expected: tuple[bool, bool]
) -> None:
    """upstream's NodeShouldRunDaemonPod over selector, required affinity and taints."""
    fit = placement.should_run(node, ds)
    assert (fit.should_run, fit.should_continue_running) == expected


def test_a_pod_is_pinned_by_match_fields_and_the_scheduler_honours_it() -> None:
    """Required terms are replaced by metadata.name In [node]; preferred ones stay; target_node reads it back."""
    template = {"spec": {**REQUIRED_ZONE}}
    template["spec"]["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ] = [{"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]
    pinned = placement.pin_to_node(template, "node-2")
    node_aff = pinned["spec"]["affinity"]["nodeAffinity"]
    assert node_aff["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}
    ]
    assert len(node_aff["preferredDuringSchedulingIgnoredDuringExecution"]) == 1
    assert template["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"], "the template itself is not modified"
    assert placement.target_node(pinned) == "node-2"
    assert node_affinity.required_matches(pinned, framework.NodeInfo(_node("node-2")))
    assert not node_affinity.required_matches(pinned, framework.NodeInfo(_node("node-3")))


def test_pod_template_carries_hash_and_template_generation_labels() -> None:
    """controller-revision-hash from the revision, pod-template-generation from the annotation."""
    ds = _ds()
    ds["metadata"]["annotations"] = {placement.TEMPLATE_GENERATION_ANNOTATION: "3"}
    template = placement.pod_template(ds, "abc")
    assert template["metadata"]["labels"] == {
        "app": "ds",
        "controller-revision-hash": "abc",
        "pod-template-generation": "3",
    }
    assert "tolerations" not in ds["spec"]["template"]["spec"]


# ----- manage -----------------------------------------------------------------------------


def test_manage_creates_where_missing_and_deletes_where_unwanted() -> None:
    """Labelled nodes without a pod get one; a pod on an unlabelled node goes; an unbound pod for a vanished node goes."""
    ds = _ds(node_selector={"disk": "ssd"})
    nodes = [_node("a", labels={"disk": "ssd"}), _node("b", labels={"disk": "ssd"}), _node("c")]
    pods = [
        _pod("on-b", "b"),
        _pod("on-c", "c"),
        _pod("ghost", "gone", bound=False),
        _pod("bound-ghost", "gone2"),
    ]
    node_pods = planning.group_by_node(pods, include_deleted_terminal=False)
    plan = planning.plan_manage(ds, nodes, _fits(ds, nodes), node_pods, hash_="new", now=NOW)
    assert plan.create == ["a"]
    assert sorted(plan.delete) == ["ghost", "on-c"]


def test_manage_keeps_the_oldest_pod_and_clears_finished_ones() -> None:
    """Without surge, duplicates beyond the oldest (bound first) go; Succeeded goes; Failed is reported."""
    ds = _ds()
    nodes = [_node("a"), _node("b")]
    pods = [
        _pod("young", "a", created="2026-01-01T11:30:00Z"),
        _pod("old-unbound", "a", bound=False, created="2026-01-01T10:00:00Z"),
        _pod("oldest-bound", "a", created="2026-01-01T10:30:00Z"),
        _pod("done", "b", phase="Succeeded"),
        _pod("crashed", "b", phase="Failed"),
    ]
    node_pods = planning.group_by_node(pods, include_deleted_terminal=False)
    plan = planning.plan_manage(ds, nodes, _fits(ds, nodes), node_pods, hash_="new", now=NOW)
    assert sorted(plan.delete) == ["done", "old-unbound", "young"]
    assert [p["metadata"]["name"] for _, p in plan.failed] == ["crashed"]
    assert plan.create == []


# ----- rolling update ---------------------------------------------------------------------


ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}


def test_rolling_update_deletes_at_most_max_unavailable_old_pods() -> None:
    """3 available old pods, maxUnavailable 1 → one deleted; a second sync with an unavailable new pod deletes none."""
    ds = _ds(strategy=ROLLING)
    nodes = [_node("a"), _node("b"), _node("c")]
    pods = [_pod(f"old-{n}", n, hash_="old") for n in "abc"]
    node_pods = planning.group_by_node(pods, include_deleted_terminal=False)
    plan = planning.plan_rolling_update(
        ds, nodes, _fits(ds, nodes), node_pods, hash_="new", now=NOW
    )
    assert plan == planning.RollingPlan(delete=["old-a"], create=[])
    pods[0] = _pod("new-a", "a", ready=False)
    node_pods = planning.group_by_node(pods, include_deleted_terminal=False)
    plan = planning.plan_rolling_update(
        ds, nodes, _fits(ds, nodes), node_pods, hash_="new", now=NOW
    )
    assert plan.delete == []


def test_rolling_update_replaces_unavailable_old_pods_without_counting_them() -> None:
    """An old pod that is not ready goes at once, besides the maxUnavailable budget (percent, rounded up)."""
    ds = _ds(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}})
    nodes = [_node(n) for n in "abc"]
    pods = [
        _pod("sick", "a", hash_="old", ready=False),
        _pod("ok-b", "b", hash_="old"),
        _pod("ok-c", "c", hash_="old"),
    ]
    node_pods = planning.group_by_node(pods, include_deleted_terminal=False)
    plan = planning.plan_rolling_update(
        ds, nodes, _fits(ds, nodes), node_pods, hash_="new", now=NOW
    )
    assert plan.delete == ["sick", "ok-b"]


def test_surge_starts_new_pods_beside_old_ones_then_removes_the_old() -> None:
    """maxSurge 1: a new pod on one node; once it is available the old one goes and the next node surges."""
    ds = _ds(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    )
    nodes = [_node(n) for n in "ab"]
    pods = [_pod("old-a", "a", hash_="old"), _pod("old-b", "b", hash_="old")]
    fits = _fits(ds, nodes)
    plan = planning.plan_rolling_update(
        ds,
        nodes,
        fits,
        planning.group_by_node(pods, include_deleted_terminal=False),
        hash_="new",
        now=NOW,
    )
    assert plan == planning.RollingPlan(delete=[], create=["a"])
    pods.append(_pod("new-a", "a", ready=False))
    plan = planning.plan_rolling_update(
        ds,
        nodes,
        fits,
        planning.group_by_node(pods, include_deleted_terminal=False),
        hash_="new",
        now=NOW,
    )
    assert plan == planning.RollingPlan(delete=[], create=[])
    pods[-1] = _pod("new-a", "a")
    plan = planning.plan_rolling_update(
        ds,
        nodes,
        fits,
        planning.group_by_node(pods, include_deleted_terminal=False),
        hash_="new",
        now=NOW,
    )
    assert plan == planning.RollingPlan(delete=["old-a"], create=["b"])
    # manage, meanwhile, keeps both pods on a surging node until the new one is available.
    manage = planning.plan_manage(
        ds,
        nodes,
        fits,
        planning.group_by_node(pods, include_deleted_terminal=False),
        hash_="new",
        now=NOW,
    )
    assert manage.delete == ["old-a"]


def test_status_counts_each_node_by_its_oldest_pod() -> None:
    """desired/current/misscheduled/ready/updated/available/unavailable as upstream counts them."""
    ds = _ds(node_selector={"role": "x"})
    nodes = [
        _node("a", labels={"role": "x"}),
        _node("b", labels={"role": "x"}),
        _node("c", labels={"role": "x"}),
        _node("d"),
    ]
    pods = [_pod("pa", "a"), _pod("pb", "b", hash_="old", ready=False), _pod("pd", "d")]
    node_pods = planning.group_by_node(pods, include_deleted_terminal=True)
    counts = planning.calculate_status(ds, nodes, _fits(ds, nodes), node_pods, hash_="new", now=NOW)
    assert counts == {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "numberReady": 1,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
        "numberUnavailable": 2,
    }


def test_history_cleanup_spares_revisions_pods_still_run() -> None:
    """Beyond the limit, oldest revisions go first unless a live pod carries their hash."""
    old = [
        {"metadata": {"name": f"r{i}", "labels": {placement.HASH_LABEL: f"h{i}"}}, "revision": i}
        for i in (3, 1, 2)
    ]
    doomed = revisions.revisions_to_delete(old, 1, {"h1"})
    assert [r["metadata"]["name"] for r in doomed] == ["r2", "r3"]
    assert revisions.revisions_to_delete(old, 3, set()) == []


# ----- against the API server ---------------------------------------------------------------


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """The daemonset controller, acting as daemon-set-controller."""
    return await start_controllers("daemonset")


@pytest.fixture
async def default_scheduler(apiserver: APIServerProcess) -> AsyncIterator[scheduler.Scheduler]:
    assert apiserver.http is not None and apiserver.pki is not None
    running = scheduler_cmd.start_in_process(apiserver.http.app, apiserver.pki.ca)
    try:
        yield running
    finally:
        await scheduler_cmd.stop(running)


async def _add_node(client: rest.Client, name: str, **kwargs: Any) -> None:
    await client.create(rest.NODES, _node(name, **kwargs))
    status = {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    await client.patch(rest.NODES, name, {"status": status}, subresource="status")


async def _pods(client: rest.Client, app: str) -> list[Object]:
    listed = await client.list(rest.PODS, namespace=NS, label_selector=f"app={app}")
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def _pods_on(client: rest.Client, app: str, nodes: set[str]) -> list[Object] | None:
    pods = await _pods(client, app)
    return (
        pods
        if {placement.target_node(p) for p in pods} == nodes and len(pods) == len(nodes)
        else None
    )


async def _status(client: rest.Client, name: str, **expected: int) -> Object | None:
    status = (await client.get(rest.DAEMONSETS, name, namespace=NS)).get("status") or {}
    return status if all(status.get(k, 0) == v for k, v in expected.items()) else None


async def _make_ready(client: rest.Client, pod: Object) -> None:
    status = {
        "phase": "Running",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": pod["metadata"]["creationTimestamp"],
            }
        ],
    }
    await client.patch(
        rest.PODS, pod["metadata"]["name"], {"status": status}, namespace=NS, subresource="status"
    )


async def test_pods_follow_node_labels_and_the_scheduler_binds_them(
    admin: rest.Client,
    controllers: manager.ControllerManager,
    default_scheduler: scheduler.Scheduler,
) -> None:
    """nodeSelector disk=ssd: none until a node is labelled, then one bound there; unlabelling removes it."""
    for name in ("n1", "n2", "n3"):
        await _add_node(admin, name)
    created = await admin.create(rest.DAEMONSETS, _ds("ssd", node_selector={"disk": "ssd"}))
    await eventually(lambda: _status(admin, "ssd", observedGeneration=1, desiredNumberScheduled=0))
    assert await _pods(admin, "ssd") == []
    await admin.patch(rest.NODES, "n2", {"metadata": {"labels": {"disk": "ssd"}}})
    [pod] = await eventually(lambda: _pods_on(admin, "ssd", {"n2"}))
    meta = pod["metadata"]
    assert meta["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert meta["labels"]["pod-template-generation"] == "1"
    assert meta["labels"]["controller-revision-hash"]
    assert {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
    } in pod["spec"]["tolerations"]

    async def bound() -> Object | None:
        fresh = await admin.get(rest.PODS, meta["name"], namespace=NS)
        return fresh if fresh["spec"].get("nodeName") == "n2" else None

    await eventually(bound)
    revisions_list = (await admin.list(rest.CONTROLLERREVISIONS, namespace=NS))["items"]
    assert [
        (r["revision"], r["metadata"]["labels"]["controller-revision-hash"]) for r in revisions_list
    ] == [(1, meta["labels"]["controller-revision-hash"])]
    await eventually(
        lambda: _status(
            admin, "ssd", desiredNumberScheduled=1, currentNumberScheduled=1, numberUnavailable=1
        )
    )
    await admin.patch(rest.NODES, "n3", {"metadata": {"labels": {"disk": "ssd"}}})
    await eventually(lambda: _pods_on(admin, "ssd", {"n2", "n3"}))
    await admin.patch(rest.NODES, "n2", {"metadata": {"labels": {"disk": None}}})
    await eventually(lambda: _pods_on(admin, "ssd", {"n3"}))
    # The n2 pod is bound, so it terminates gracefully; with no kubelet here it
    # stays terminating and counts as misscheduled, as upstream counts it.
    await eventually(
        lambda: _status(
            admin, "ssd", desiredNumberScheduled=1, currentNumberScheduled=1, numberMisscheduled=1
        )
    )


async def test_new_and_removed_nodes_gain_and_lose_unbound_pods_and_taints_keep_pods_off(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Without a scheduler: a new node gets a pod; deleting it deletes that unbound pod; an untolerated taint gets none."""
    await _add_node(admin, "a")
    await _add_node(
        admin, "tainted", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    )
    await admin.create(rest.DAEMONSETS, _ds("agent"))
    await eventually(lambda: _pods_on(admin, "agent", {"a"}))
    await _add_node(admin, "b")
    pods = await eventually(lambda: _pods_on(admin, "agent", {"a", "b"}))
    assert all(not p["spec"].get("nodeName") for p in pods)
    await admin.delete(rest.NODES, "b")
    await eventually(lambda: _pods_on(admin, "agent", {"a"}))
    status = await eventually(
        lambda: _status(admin, "agent", desiredNumberScheduled=1, currentNumberScheduled=1)
    )
    assert status.get("numberMisscheduled", 0) == 0
    messages = await eventually(
        lambda: event_messages(admin, "agent", "SuccessfulCreate", at_least=2, namespace=NS)
    )
    assert all(m.startswith("Created pod: agent-") for m in messages)


async def test_rolling_update_replaces_one_pod_at_a_time_and_records_revisions(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """maxUnavailable 1: one old pod goes, its replacement must be ready before the next; revision 2 is recorded."""
    for name in ("a", "b", "c"):
        await _add_node(admin, name)
    await admin.create(rest.DAEMONSETS, _ds("roll", strategy=ROLLING))
    for pod in await eventually(lambda: _pods_on(admin, "roll", {"a", "b", "c"})):
        await _make_ready(admin, pod)
    await eventually(lambda: _status(admin, "roll", numberAvailable=3, updatedNumberScheduled=3))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}}}
    }
    await admin.patch(rest.DAEMONSETS, "roll", patch, namespace=NS, patch_type="strategic")

    async def one_new_pod() -> list[Object] | None:
        pods = await _pods(admin, "roll")
        new = [p for p in pods if p["spec"]["containers"][0]["image"] == "busybox:2"]
        return pods if len(new) == 1 else None

    pods = await eventually(one_new_pod)
    old = [p for p in pods if p["spec"]["containers"][0]["image"] == "busybox:1"]
    assert len(old) == 2, "only maxUnavailable=1 old pod is replaced while the new one is not ready"
    new = next(p for p in pods if p not in old)
    assert new["metadata"]["labels"]["pod-template-generation"] == "2"
    await eventually(
        lambda: _status(
            admin, "roll", observedGeneration=2, updatedNumberScheduled=1, numberUnavailable=1
        )
    )
    assert len(await _pods(admin, "roll")) == 3

    async def all_updated() -> Object | None:
        for pod in await _pods(admin, "roll"):
            if not any(
                c.get("type") == "Ready" for c in (pod.get("status") or {}).get("conditions") or ()
            ):
                await _make_ready(admin, pod)
        return await _status(admin, "roll", updatedNumberScheduled=3, numberAvailable=3)

    await eventually(all_updated, timeout=20)
    revisions_list = (await admin.list(rest.CONTROLLERREVISIONS, namespace=NS))["items"]
    assert sorted(r["revision"] for r in revisions_list) == [1, 2]


async def test_on_delete_waits_for_pods_to_be_deleted(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """OnDelete: a template change replaces nothing until a pod is deleted; its replacement is new."""
    await _add_node(admin, "a")
    await _add_node(admin, "b")
    await admin.create(rest.DAEMONSETS, _ds("od", strategy={"type": "OnDelete"}))
    pods = await eventually(lambda: _pods_on(admin, "od", {"a", "b"}))
    old_hash = pods[0]["metadata"]["labels"]["controller-revision-hash"]
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "od", "v": "2"}}}}}
    await admin.patch(rest.DAEMONSETS, "od", patch, namespace=NS)
    await eventually(lambda: _status(admin, "od", observedGeneration=2, updatedNumberScheduled=0))
    assert sorted(p["metadata"]["name"] for p in await _pods(admin, "od")) == sorted(
        p["metadata"]["name"] for p in pods
    )
    await admin.delete(rest.PODS, pods[0]["metadata"]["name"], namespace=NS)

    async def replaced() -> Object | None:
        for pod in await _pods(admin, "od"):
            if pod["metadata"]["labels"].get("v") == "2":
                return pod
        return None

    fresh = await eventually(replaced)
    assert placement.target_node(fresh) == placement.target_node(pods[0])
    assert fresh["metadata"]["labels"]["controller-revision-hash"] != old_hash
    await eventually(
        lambda: _status(admin, "od", updatedNumberScheduled=1, desiredNumberScheduled=2)
    )


async def test_a_failed_daemon_pod_is_reported_and_replaced(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A Failed pod gets a FailedDaemonPod warning, is deleted, and a fresh pod takes its node."""
    await _add_node(admin, "a")
    await admin.create(rest.DAEMONSETS, _ds("crash"))
    [pod] = await eventually(lambda: _pods_on(admin, "crash", {"a"}))
    name = pod["metadata"]["name"]
    await admin.patch(
        rest.PODS, name, {"status": {"phase": "Failed"}}, namespace=NS, subresource="status"
    )

    async def replaced() -> list[Object] | None:
        pods = await _pods_on(admin, "crash", {"a"})
        return pods if pods and pods[0]["metadata"]["name"] != name else None

    await eventually(replaced)
    [message] = await eventually(
        lambda: event_messages(admin, "crash", "FailedDaemonPod", at_least=1, namespace=NS)
    )
    assert message == f"Found failed daemon pod {NS}/{name} on node a, will try to kill it"


def test_heartbeat_only_node_updates_are_ignored_but_condition_flips_are_not() -> None:
    """upstream's shouldIgnoreNodeUpdate: new heartbeat times alone wake no DaemonSet."""
    old = _node("n")
    old["metadata"]["resourceVersion"] = "1"
    old["status"] = {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t1"}]}
    beat = {**old, "metadata": {**old["metadata"], "resourceVersion": "2"}}
    beat["status"] = {
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}]
    }
    assert placement.only_heartbeat_changed(old, beat)
    flipped = {**beat, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    assert not placement.only_heartbeat_changed(old, flipped)
    relabelled = {**beat, "metadata": {**beat["metadata"], "labels": {"disk": "ssd"}}}
    assert not placement.only_heartbeat_changed(old, relabelled)


def test_failed_pod_backoff_doubles_up_to_its_maximum() -> None:
    """1 s, 2 s, 4 s ... capped; in backoff until the delay since the last attempt has passed."""
    now = [0.0]
    backoff = controller.Backoff(1.0, 4.0, clock=lambda: now[0])
    assert not backoff.in_backoff("k")
    delays = []
    for _ in range(4):
        backoff.next("k")
        delays.append(backoff.delay("k"))
    assert delays == [1.0, 2.0, 4.0, 4.0]
    assert backoff.in_backoff("k")
    now[0] = 4.5
    assert not backoff.in_backoff("k")


async def test_the_template_generation_annotation_counts_template_changes(
    admin: rest.Client,
) -> None:
    """1 on create; unchanged by other spec edits or client attempts; +1 per template change."""
    annotation = placement.TEMPLATE_GENERATION_ANNOTATION
    created = await admin.create(rest.DAEMONSETS, _ds("gen"))
    assert created["metadata"]["annotations"][annotation] == "1"
    spec_only = {"spec": {"minReadySeconds": 5}, "metadata": {"annotations": {annotation: "9"}}}
    patched = await admin.patch(rest.DAEMONSETS, "gen", spec_only, namespace=NS)
    assert patched["metadata"]["annotations"][annotation] == "1"
    template = {"spec": {"template": {"metadata": {"labels": {"app": "gen", "v": "2"}}}}}
    patched = await admin.patch(rest.DAEMONSETS, "gen", template, namespace=NS)
    assert patched["metadata"]["annotations"][annotation] == "2"
