"""Batched Filter, memoized resource scores and snapshot summaries give the per-node answers."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tests.scheduler import helpers

from kajitori.scheduler import cache, framework, scheduler
from kajitori.scheduler.plugins import inter_pod_affinity, node_resources_fit, taint_toleration

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


def test_remembered_score_totals_place_every_pod_as_plain_sums_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pods of a few sizes placed one after another through the cache land on the same nodes
    whether each node's weighted score total is remembered between pods or summed afresh."""
    rng = random.Random(7)
    sizes = [{"cpu": "100m", "memory": "64Mi"}, {"cpu": "1", "memory": "1Gi"}, None]
    pods = [make_pod(f"p{i}", requests=rng.choice(sizes)) for i in range(400)]
    # Past 100 nodes: the sampled search and its moving start index are exercised too.
    cpus = [rng.choice(["2", "4", "8"]) for _ in range(130)]
    placements = []
    for remembered in (True, False):
        if not remembered:
            monkeypatch.setattr(scheduler, "_totals_key", lambda *_: None)
        nodes = cache.Cache()
        for i, cpu in enumerate(cpus):
            nodes.set_node(make_node(f"n{i:03d}", cpu=cpu))
        start, chosen = 0, []
        profile = scheduler.default_profile()
        for pod in pods:
            snapshot = nodes.node_infos()
            node, processed = scheduler.place_pod(pod, snapshot, profile, start=start)
            start = (start + processed) % len(snapshot)
            bound = {**pod, "spec": {**pod["spec"], "nodeName": node}}
            nodes.set_pod(f"default/{pod['metadata']['name']}", bound)
            chosen.append(node)
        placements.append(chosen)
    assert placements[0] == placements[1]
    assert len(set(placements[0])) > 50  # the scores really steered the pods around


def test_taint_pre_score_skips_only_when_no_feasible_node_has_a_soft_taint() -> None:
    soft = [{"key": "k", "effect": "PreferNoSchedule"}]
    plugin = taint_toleration.TaintToleration()
    pod = make_pod()
    skip = framework.Code.SKIP
    for tainted_node, expected in ((None, skip), ("b", skip), ("a", framework.Code.SUCCESS)):
        nodes = cache.Cache()
        for name in ("a", "b"):
            nodes.set_node(make_node(name, taints=soft if name == tainted_node else None))
        state: framework.CycleState = {}
        plugin.pre_filter(state, pod, nodes.node_infos())
        feasible = [n for n in nodes.node_infos() if n.name == "a"]
        assert plugin.pre_score(state, pod, feasible).code == expected, tainted_node
        # Without PreFilter's note (preemption's what-ifs, tests) the nodes are scanned.
        assert plugin.pre_score({}, pod, feasible).code == expected, tainted_node


def test_parsed_amounts_are_remembered_per_resource_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framework, "_AMOUNTS", {})
    monkeypatch.setattr(framework, "_AMOUNTS_MAX", 3)
    assert framework.amount("cpu", "1") == 1000
    assert framework.amount("memory", "1") == 1  # the same text, not the cpu's answer
    assert framework.amount("cpu", "250m") == 250
    assert framework.amount("memory", "1Ki") == 1024  # full: forgotten, then remembered anew
    assert len(framework._AMOUNTS) == 1
    assert framework.amount("cpu", 2) == 2000  # numbers are parsed, not remembered
    with pytest.raises(ValueError):
        framework.amount("cpu", "1 core")


def test_ties_go_to_the_first_name_through_the_cache_snapshot_as_through_a_list() -> None:
    """The snapshot's shortcut (its order is known) picks the tie a full scan of names picks."""
    nodes = cache.Cache()
    for i in range(130):  # identical nodes, so every feasible node ties
        nodes.set_node(make_node(f"n{i:03d}", cpu="1" if i % 7 == 3 else "4"))
    snapshot = nodes.node_infos()
    profile = scheduler.default_profile()
    pod = make_pod(requests={"cpu": "2"})  # the 1-cpu nodes do not fit
    for start in range(0, 130, 3):
        fast = scheduler.place_pod(pod, snapshot, profile, start=start)
        assert fast == scheduler.place_pod(pod, list(snapshot), profile, start=start), start
    # Where the search wrapped past n129 to n000, the smallest name wins over the start's.
    assert scheduler.place_pod(pod, snapshot, profile, start=100)[0] == "n000"
    assert scheduler.place_pod(pod, snapshot, profile, start=0)[0] == "n000"
    assert scheduler.place_pod(pod, snapshot, profile, start=3)[0] == "n004"


def test_snapshot_window_totals_follow_pods_bound_and_nodes_changed() -> None:
    """Totals sliced from the snapshot (by position) equal fresh weighted sums, cycle after
    cycle, as pods land on nodes, windows wrap and a changed node makes a new snapshot."""
    rng = random.Random(11)
    sizes = [{"cpu": "100m", "memory": "64Mi"}, {"cpu": "1", "memory": "1Gi"}, None]
    nodes = cache.Cache()
    for i in range(130):
        nodes.set_node(make_node(f"n{i:03d}", cpu=rng.choice(["16", "32", "64"]), pods="500"))
    profile = scheduler.default_profile()
    for i in range(300):
        snapshot = nodes.node_infos()
        pod = make_pod(f"p{i}", requests=rng.choice(sizes))
        start, count = rng.randrange(130), rng.randrange(1, 131)
        state: framework.CycleState = {}
        feasible, diagnosis = scheduler.find_feasible(
            pod, snapshot, profile, state, limit=count, start=start
        )
        assert not diagnosis.node_statuses and len(feasible) == count
        window = scheduler._window_totals(pod, snapshot, start, feasible, profile, state)
        fresh: framework.CycleState = {}
        scheduler.find_feasible(pod, snapshot, profile, fresh, limit=count, start=start)
        scorers = scheduler._scorers(pod, feasible, profile, fresh)
        assert window == scheduler._weighted_sums(pod, feasible, scorers, fresh), i
        target = rng.choice(snapshot).name
        nodes.set_pod(f"default/p{i}", {**pod, "spec": {**pod["spec"], "nodeName": target}})
        if i % 50 == 25:  # a node's status changed: it keeps its place in the snapshot
            nodes.set_node(make_node("n050", cpu=str(128 + i), pods="500"))
            assert nodes.node_infos() is snapshot and not snapshot.retired
        if i % 97 == 96:  # a node tainted: a new snapshot, the old one retired
            soft = [{"key": f"k{i}", "effect": "PreferNoSchedule"}]
            nodes.set_node(make_node("n060", cpu="16", pods="500", taints=soft))
            assert nodes.node_infos() is not snapshot and snapshot.retired
    assert len(nodes.node_infos().totals("unused").stale) == 130


def test_the_snapshot_filters_and_scores_as_a_plain_list_while_nodes_fill_up() -> None:
    """Each cycle through the cache's snapshot (answers remembered by position) picks the node,
    looks at as many nodes and fails with the message of the same cycle over a plain list,
    while pods fill the nodes (cpu, memory, pod slots) and the start index moves around."""
    rng = random.Random(5)
    nodes = cache.Cache()
    for i in range(120):
        nodes.set_node(
            make_node(f"n{i:03d}", cpu=rng.choice(["1", "2"]), memory="2Gi", pods=rng.choice(["3", "5"]))
        )  # fmt: skip
    sizes = [{"cpu": "300m", "memory": "256Mi"}, {"cpu": "700m"}, {"memory": "900Mi"}, None]
    profile, start, failures = scheduler.default_profile(), 0, 0
    for i in range(500):
        pod = make_pod(f"p{i}", requests=rng.choice(sizes))
        snapshot = nodes.node_infos()
        outcomes: list[tuple[str, int, bool]] = []
        for view in (snapshot, list(snapshot)):
            try:
                outcomes.append((*scheduler.place_pod(pod, view, profile, start=start), True))
            except framework.FitError as exc:
                outcomes.append((exc.message, len(exc.diagnosis.node_statuses), False))
        assert outcomes[0] == outcomes[1], i
        node, processed, placed = outcomes[0]
        if not placed:
            failures += 1
            continue
        start = (start + processed) % len(snapshot)
        nodes.set_pod(f"default/p{i}", {**pod, "spec": {**pod["spec"], "nodeName": node}})
    assert failures > 10  # the cluster really filled up


def test_runs_cut_from_the_snapshot_are_the_runs_of_its_rotated_copy() -> None:
    """The Filters' runs, taken from the snapshot at its start index, are the slices of
    ``nodes[start:] + nodes[:start]`` for every start and every slice, wrapping or not."""
    for size in range(1, 9):
        nodes = list(range(size))
        for start in range(size):
            rotated = nodes[start:] + nodes[:start]
            view = scheduler._Rotated(nodes, start)  # type: ignore[arg-type]
            assert len(view) == size
            for begin in range(size + 2):
                for end in range(size + 3):
                    assert view[begin:end] == rotated[begin:end], (size, start, begin, end)
