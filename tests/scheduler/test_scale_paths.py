"""The scheduler's shortcuts for large clusters give the answers of the plain per-node path."""

from __future__ import annotations

from typing import Any

from tests.scheduler import helpers

from kajitori.scheduler import cache, framework, scheduler
from kajitori.scheduler.plugins import (
    node_name,
    node_resources_fit,
    node_unschedulable,
    taint_toleration,
)

Object = dict[str, Any]
make_node, make_pod, info = helpers.make_node, helpers.make_pod, helpers.info


def _varied_nodes() -> list[framework.NodeInfo]:
    """Empty, busy, overcommitted and memory-less nodes."""
    return [
        info(make_node("empty")),
        info(
            make_node("busy"), make_pod("b1", node="busy", requests={"cpu": "3", "memory": "1Gi"})
        ),
        info(
            make_node("full"), make_pod("b2", node="full", requests={"cpu": "5", "memory": "9Gi"})
        ),
        info(make_node("small", cpu="1", memory="512Mi")),
        info(make_node("no-memory", memory="0")),
    ]


def test_score_many_gives_each_nodes_own_score() -> None:
    """LeastAllocated and BalancedAllocation scored in one call equal their per-node scores."""
    pod = make_pod(requests={"cpu": "500m", "memory": "256Mi"})
    nodes = _varied_nodes()
    for plugin in (node_resources_fit.NodeResourcesFit(), node_resources_fit.BalancedAllocation()):
        state: framework.CycleState = {}
        each = [plugin.score(state, pod, node) for node in nodes]
        assert plugin.score_many(state, pod, nodes) == each, plugin.name
    assert len(set(each)) > 2  # the nodes really differ


def test_pre_filters_skip_only_when_no_node_could_be_rejected() -> None:
    """Unschedulable, taints and node name skip their Filter only when it would pass every node."""
    plain = [info(make_node("a")), info(make_node("b"))]
    cordoned = [*plain, info(make_node("c", unschedulable=True))]
    soft = [*plain, info(make_node("d", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))]
    hard = [*plain, info(make_node("e", taints=[{"key": "k", "effect": "NoSchedule"}]))]
    pod = make_pod()
    skip = framework.Code.SKIP
    unschedulable = node_unschedulable.NodeUnschedulable()
    taints = taint_toleration.TaintToleration()
    assert unschedulable.pre_filter({}, pod, plain).code == skip
    assert unschedulable.pre_filter({}, pod, cordoned).code != skip
    assert taints.pre_filter({}, pod, soft).code == skip
    assert taints.pre_filter({}, pod, hard).code != skip
    assert taints.pre_score({}, pod, plain).code == skip
    assert taints.pre_score({}, pod, soft).code != skip
    assert node_name.NodeName().pre_filter({}, pod, plain).code == skip
    assert node_name.NodeName().pre_filter({}, make_pod(node="a"), plain).code != skip


def test_a_large_cluster_still_avoids_cordoned_tainted_and_full_nodes() -> None:
    """Through the sampled search (150 nodes): only the one open node is chosen."""
    nodes = [info(make_node(f"n{i:03d}", unschedulable=True)) for i in range(50)]
    nodes += [
        info(make_node(f"t{i:03d}", taints=[{"key": "k", "effect": "NoExecute"}]))
        for i in range(50)
    ]
    nodes += [info(make_node(f"s{i:03d}", cpu="100m")) for i in range(49)]
    nodes.append(info(make_node("open")))
    pod = make_pod(requests={"cpu": "1"})
    for start in (0, 75, 149):
        assert (
            scheduler.place_pod(pod, nodes, scheduler.default_profile(), start=start)[0] == "open"
        )


def test_ties_go_to_the_first_node_by_name_among_those_searched() -> None:
    """300 nodes: 144 fits are scored, from where the search starts (upstream's sampling)."""
    nodes = [info(make_node(f"n{i:03d}")) for i in range(300)]
    pod = make_pod(requests={"cpu": "1"})
    profile = scheduler.default_profile()
    assert scheduler.place_pod(pod, nodes, profile, start=100) == ("n100", 144)
    assert scheduler.place_pod(pod, nodes, profile, start=0) == ("n000", 144)


def test_a_status_update_keeps_the_nodes_sums_and_a_spec_change_redoes_them() -> None:
    """The cache swaps the object of a pod whose spec did not change, and re-sums otherwise."""
    nodes = cache.Cache()
    nodes.set_node(make_node("a"))
    pod = make_pod("p", node="a", requests={"cpu": "1"})
    nodes.set_pod("default/p", pod)
    running = {**pod, "status": {"phase": "Running"}}
    nodes.set_pod("default/p", running)
    (node_info,) = nodes.node_infos()
    assert node_info.pods == [running]
    assert node_info.requested == {"cpu": 1000}
    resized = {**running, "spec": {**running["spec"], "containers": [
        {"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}}}
    ]}}  # fmt: skip
    nodes.set_pod("default/p", resized)
    assert node_info.pods == [resized]
    assert node_info.requested == {"cpu": 2000}
    nodes.set_pod("default/p", {**resized, "status": {"phase": "Succeeded"}})
    assert node_info.pods == []
    assert node_info.requested == {"cpu": 0}
