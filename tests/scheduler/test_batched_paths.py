"""Batched Filter, memoized resource scores and snapshot summaries give the per-node answers."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tests.scheduler import helpers

from kajitori.scheduler import cache, framework, scheduler
from kajitori.scheduler.plugins import inter_pod_affinity, node_resources_fit

Object = dict[str, Any]
make_node, make_pod, info = helpers.make_node, helpers.make_pod, helpers.info


class _OneByOne:
    """A Filter plugin without ``filter_many``: the scheduler's per-node loop."""

    def __init__(self, plugin: Any) -> None:
        self.plugin, self.name = plugin, plugin.name

    def pre_filter(self, *args: Any) -> framework.Status:
        return self.plugin.pre_filter(*args)  # type: ignore[no-any-return]

    def filter(self, *args: Any) -> framework.Status:
        return self.plugin.filter(*args)  # type: ignore[no-any-return]


def _profile(*, batched: bool) -> scheduler.Profile:
    profile = scheduler.default_profile()
    if batched:
        return profile
    plain = {id(p): _OneByOne(p) for p in profile.filters}
    return scheduler.Profile(
        tuple(plain.get(id(p), p) for p in profile.pre_filters),
        tuple(plain[id(p)] for p in profile.filters),
        profile.scorers,
    )


def _crowded_cluster(seed: int, count: int, *, tainted: bool) -> list[framework.NodeInfo]:
    """Nodes of several sizes, some nearly full (cpu, memory or pod slots), some tainted."""
    rng = random.Random(seed)
    nodes = []
    for i in range(count):
        name = f"n{i:03d}"
        taint = {"key": "k", "effect": rng.choice(["NoSchedule", "NoExecute", "PreferNoSchedule"])}
        node = make_node(
            name, cpu=rng.choice(["1", "2", "4"]), memory=rng.choice(["1Gi", "2Gi"]),
            pods=rng.choice(["2", "3", "110"]), unschedulable=tainted and rng.random() < 0.1,
            taints=[taint] if tainted and rng.random() < 0.2 else [],
        )  # fmt: skip
        placed = [
            make_pod(
                f"{name}-{j}",
                node=name,
                requests={
                    "cpu": f"{rng.randrange(100, 900, 100)}m",
                    "memory": f"{rng.randrange(64, 512, 64)}Mi",
                },
            )
            for j in range(rng.randrange(0, 3))
        ]
        nodes.append(info(node, *placed))
    return nodes


@pytest.mark.parametrize("tainted", [False, True])
@pytest.mark.parametrize("requests", [
    {"cpu": "500m", "memory": "256Mi"}, {"cpu": "900m"}, {"memory": "700Mi"}, None,
    {"cpu": "500m", "ephemeral-storage": "1Gi"},  # declined: the per-node loop
])  # fmt: skip
def test_batched_filter_finds_the_same_nodes_and_reasons(
    requests: Object | None, tainted: bool
) -> None:
    """Same node, nodes looked at and FailedScheduling message as the one-by-one Filter."""
    for seed in range(6):
        nodes = _crowded_cluster(seed, 150, tainted=tainted)  # from 100 the search stops early
        tolerations = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
        pod = make_pod(requests=requests, tolerations=tolerations if seed % 2 else [])
        for start in (0, 37, 149):
            outcomes = []
            for batched in (True, False):
                try:
                    outcomes.append(
                        scheduler.place_pod(pod, nodes, _profile(batched=batched), start=start)
                    )
                except framework.FitError as exc:
                    outcomes.append((exc.message, len(exc.diagnosis.node_statuses)))
            assert outcomes[0] == outcomes[1], (seed, start)


def test_a_full_cluster_gives_the_same_fit_error_either_way() -> None:
    nodes = [info(make_node(f"n{i:03d}", cpu="1", pods="3")) for i in range(120)]
    pod = make_pod(requests={"cpu": "2"})
    messages = []
    for batched in (True, False):
        with pytest.raises(framework.FitError) as caught:
            scheduler.place_pod(pod, nodes, _profile(batched=batched))
        messages.append(caught.value.message)
    assert messages[0] == messages[1] == "0/120 nodes are available: 120 Insufficient cpu."


def test_memoized_scores_follow_pods_added_and_removed() -> None:
    """A node's remembered score is dropped when its pods change."""
    node = info(make_node("a"))
    pod = make_pod(requests={"cpu": "1", "memory": "1Gi"})
    plugins = (node_resources_fit.NodeResourcesFit(), node_resources_fit.BalancedAllocation())
    before = [p.score_many({}, pod, [node]) for p in plugins]
    assert node.score_memo  # remembered
    placed = make_pod("q", node="a", requests={"cpu": "2", "memory": "512Mi"})
    node.add_pod(placed)
    after = [p.score_many({}, pod, [node]) for p in plugins]
    assert after == [[p.score({}, pod, node)] for p in plugins]
    assert after != before
    node.remove_pod(placed)
    assert [p.score_many({}, pod, [node]) for p in plugins] == before


def test_the_cache_snapshot_knows_cordons_taints_and_anti_affinity() -> None:
    nodes = cache.Cache()
    nodes.set_node(make_node("a"))
    nodes.set_node(make_node("b", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    snapshot = nodes.node_infos()
    assert not framework.any_cordoned(snapshot)
    assert framework.has_taint_effect(snapshot, ["PreferNoSchedule"])
    assert not framework.has_taint_effect(snapshot, ["NoSchedule", "NoExecute"])
    assert list(framework.nodes_with_anti_affinity(snapshot)) == []
    term = {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}
    lonely = make_pod(
        "lonely", node="a", labels={"app": "x"},
        affinity={"podAntiAffinity": {inter_pod_affinity.REQUIRED: [term]}},
    )  # fmt: skip
    nodes.set_pod("default/lonely", lonely)
    assert [n.name for n in framework.nodes_with_anti_affinity(nodes.node_infos())] == ["a"]
    # The anti-affinity pod keeps a matching pod off node a, through the snapshot.
    profile = scheduler.default_profile()
    newcomer = make_pod("new", labels={"app": "x"})
    assert scheduler.place_pod(newcomer, nodes.node_infos(), profile)[0] == "b"
    nodes.remove_pod("default/lonely")
    assert list(framework.nodes_with_anti_affinity(nodes.node_infos())) == []
    nodes.set_node(make_node("c", unschedulable=True))
    assert framework.any_cordoned(nodes.node_infos())
