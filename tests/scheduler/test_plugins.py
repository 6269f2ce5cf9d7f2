"""Each Filter plugin as a table: (pod, node snapshot) -> fits, or the reason upstream gives."""

from __future__ import annotations

from typing import Any

import pytest
from tests.scheduler import helpers

from kajitori.scheduler import framework
from kajitori.scheduler.plugins import (
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
)

Object = dict[str, Any]
make_node, make_pod, info = helpers.make_node, helpers.make_pod, helpers.info


def run_filter(plugin: Any, pod: Object, node: framework.NodeInfo, *others: Any) -> Any:
    """PreFilter (when the plugin has one) over ``node`` and ``others``, then Filter on ``node``."""
    state: framework.CycleState = {}
    if hasattr(plugin, "pre_filter"):
        plugin.pre_filter(state, pod, [node, *others])
    status = plugin.filter(state, pod, node)
    return status.reasons[0] if status.reasons else None


@pytest.mark.parametrize(
    ("pod", "node", "reason"),
    [
        pytest.param(make_pod(), make_node("n"), None, id="no-name"),
        pytest.param(make_pod(node="n"), make_node("n"), None, id="same-name"),
        pytest.param(make_pod(node="m"), make_node("n"), node_name.REASON, id="other-name"),
    ],
)
def test_node_name(pod: Object, node: Object, reason: str | None) -> None:
    """NodeName: only the named node fits."""
    assert run_filter(node_name.NodeName(), pod, info(node)) == reason


TOLERATE_CORDON = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]


@pytest.mark.parametrize(
    ("pod", "node", "reason"),
    [
        pytest.param(make_pod(), make_node("n"), None, id="schedulable"),
        pytest.param(
            make_pod(), make_node("n", unschedulable=True), node_unschedulable.REASON, id="cordoned"
        ),
        pytest.param(
            make_pod(tolerations=TOLERATE_CORDON),
            make_node("n", unschedulable=True),
            None,
            id="cordoned-but-tolerated",
        ),
    ],
)
def test_node_unschedulable(pod: Object, node: Object, reason: str | None) -> None:
    """NodeUnschedulable: cordoned nodes repel pods that do not tolerate the cordon taint."""
    assert run_filter(node_unschedulable.NodeUnschedulable(), pod, info(node)) == reason


def _required(*terms: Object) -> Object:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }


def _expr(key: str, operator: str, *values: str) -> Object:
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


ZONE_A = make_node("n1", labels={"zone": "a", "gen": "5"})


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        pytest.param({"nodeSelector": {"zone": "a"}}, True, id="selector-match"),
        pytest.param({"nodeSelector": {"zone": "b"}}, False, id="selector-mismatch"),
        pytest.param({"affinity": _required(_expr("zone", "In", "a", "b"))}, True, id="in"),
        pytest.param({"affinity": _required(_expr("zone", "NotIn", "a"))}, False, id="notin"),
        pytest.param({"affinity": _required(_expr("rack", "NotIn", "x"))}, True, id="notin-absent"),
        pytest.param({"affinity": _required(_expr("zone", "Exists"))}, True, id="exists"),
        pytest.param({"affinity": _required(_expr("zone", "DoesNotExist"))}, False, id="dne"),
        pytest.param({"affinity": _required(_expr("gen", "Gt", "4"))}, True, id="gt"),
        pytest.param({"affinity": _required(_expr("gen", "Lt", "5"))}, False, id="lt"),
        pytest.param(
            {"affinity": _required(_expr("zone", "In", "b"), _expr("gen", "Exists"))},
            True,
            id="terms-are-ored",
        ),
        pytest.param(
            {
                "affinity": _required(
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                )
            },
            True,
            id="match-fields-name",
        ),
        pytest.param({"affinity": _required({})}, False, id="empty-term-matches-nothing"),
    ],
)
def test_node_affinity_filter(spec: Object, fits: bool) -> None:
    """NodeAffinity: nodeSelector AND any required term; every operator."""
    reason = run_filter(node_affinity.NodeAffinity(), make_pod(**spec), info(ZONE_A))
    assert reason == (None if fits else node_affinity.REASON)


def test_node_affinity_scores_matching_preferred_weights() -> None:
    """Preferred terms add their weight; normalization scales to 100."""
    preferred = [
        {"weight": 10, "preference": _expr("zone", "In", "a")},
        {"weight": 5, "preference": _expr("gen", "Exists")},
    ]
    pod = make_pod(
        affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
    )
    plugin = node_affinity.NodeAffinity()
    other = make_node("n2", labels={"gen": "1"})
    scores = {n["metadata"]["name"]: plugin.score({}, pod, info(n)) for n in (ZONE_A, other)}
    plugin.normalize({}, pod, scores)
    assert scores == {"n1": 100, "n2": 33}


NO_SCHEDULE = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("tolerations", "taint", "reason"),
    [
        pytest.param([], NO_SCHEDULE, "node(s) had untolerated taint {dedicated: gpu}", id="none"),
        pytest.param(
            [{"key": "dedicated", "operator": "Equal", "value": "gpu"}], NO_SCHEDULE, None, id="eq"
        ),
        pytest.param(
            [{"key": "dedicated", "operator": "Equal", "value": "cpu"}],
            NO_SCHEDULE,
            "node(s) had untolerated taint {dedicated: gpu}",
            id="eq-other-value",
        ),
        pytest.param([{"operator": "Exists"}], NO_SCHEDULE, None, id="exists-everything"),
        pytest.param(
            [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}],
            NO_SCHEDULE,
            "node(s) had untolerated taint {dedicated: gpu}",
            id="other-effect",
        ),
        pytest.param([], {**NO_SCHEDULE, "effect": "PreferNoSchedule"}, None, id="prefer-only"),
    ],
)
def test_taint_toleration_filter(tolerations: list[Object], taint: Object, reason: str) -> None:
    """TaintToleration: NoSchedule/NoExecute taints need a matching toleration."""
    node = make_node("n", taints=[taint])
    pod = make_pod(tolerations=tolerations)
    assert run_filter(taint_toleration.TaintToleration(), pod, info(node)) == reason


def test_taint_toleration_scores_fewer_prefer_no_schedule_taints_higher() -> None:
    """PreferNoSchedule taints lower a node's score."""
    plugin = taint_toleration.TaintToleration()
    prefer = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    pod = make_pod()
    scores = {
        "clean": plugin.score({}, pod, info(make_node("clean"))),
        "tainted": plugin.score({}, pod, info(make_node("tainted", taints=[prefer]))),
    }
    plugin.normalize({}, pod, scores)
    assert scores == {"clean": 100, "tainted": 0}


@pytest.mark.parametrize(
    ("requests", "node", "existing", "reasons"),
    [
        pytest.param({"cpu": "1"}, make_node("n", cpu="2"), [], [], id="fits"),
        pytest.param(
            {"cpu": "1"},
            make_node("n", cpu="2"),
            [{"cpu": "1500m"}],
            ["Insufficient cpu"],
            id="cpu-taken",
        ),
        pytest.param(
            {"cpu": "3", "memory": "16Gi"},
            make_node("n", cpu="2"),
            [],
            ["Insufficient cpu", "Insufficient memory"],
            id="several",
        ),
        pytest.param({}, make_node("n", pods="1"), [{}], ["Too many pods"], id="pods"),
        pytest.param(
            {"example.com/gpu": "1"},
            make_node("n"),
            [],
            ["Insufficient example.com/gpu"],
            id="extended-missing",
        ),
        pytest.param(
            {"example.com/gpu": "1"},
            make_node("n", extra={"example.com/gpu": "2"}),
            [{"example.com/gpu": "1"}],
            [],
            id="extended-fits",
        ),
    ],
)
def test_node_resources_fit_filter(
    requests: Object, node: Object, existing: list[Object], reasons: list[str]
) -> None:
    """NodeResourcesFit: requests against allocatable minus assigned pods' requests."""
    assigned = [make_pod(f"e{i}", node="n", requests=r) for i, r in enumerate(existing)]
    plugin = node_resources_fit.NodeResourcesFit()
    state: framework.CycleState = {}
    pod = make_pod(requests=requests)
    plugin.pre_filter(state, pod, [])
    assert list(plugin.filter(state, pod, info(node, *assigned)).reasons) == reasons


def test_least_allocated_prefers_the_emptier_node() -> None:
    """LeastAllocated scores free capacity; BalancedAllocation prefers even use."""
    pod = make_pod(requests={"cpu": "1", "memory": "1Gi"})
    empty = info(make_node("empty"))
    busy = info(make_node("busy"), make_pod("b", node="busy", requests={"cpu": "2"}))
    fit = node_resources_fit.NodeResourcesFit()
    assert fit.score({}, pod, empty) > fit.score({}, pod, busy)
    balanced = node_resources_fit.BalancedAllocation()
    assert balanced.score({}, pod, empty) > balanced.score({}, pod, busy)


def _port(port: int, ip: str = "", protocol: str = "TCP") -> Object:
    container = {
        "name": "c",
        "ports": [{"containerPort": 80, "hostPort": port, "protocol": protocol}],
    }
    if ip:
        container["ports"][0]["hostIP"] = ip
    return {"containers": [container]}


@pytest.mark.parametrize(
    ("wanted", "used", "fits"),
    [
        pytest.param(_port(80), _port(81), True, id="different-port"),
        pytest.param(_port(80), _port(80), False, id="same-port"),
        pytest.param(_port(80), _port(80, protocol="UDP"), True, id="other-protocol"),
        pytest.param(_port(80, "10.0.0.1"), _port(80, "10.0.0.2"), True, id="different-ips"),
        pytest.param(_port(80, "10.0.0.1"), _port(80), False, id="wildcard-conflicts"),
    ],
)
def test_node_ports(wanted: Object, used: Object, fits: bool) -> None:
    """NodePorts: host ports conflict by protocol, port and overlapping IP."""
    existing = {"metadata": {"name": "e", "uid": "e"}, "spec": {**used, "nodeName": "n"}}
    pod = {"metadata": {"name": "p"}, "spec": wanted}
    reason = run_filter(node_ports.NodePorts(), pod, info(make_node("n"), existing))
    assert reason == (None if fits else node_ports.REASON)


HOST = "kubernetes.io/hostname"
WEB = {"app": "web"}


def _pod_term(kind: str, labels: Object, key: str = HOST) -> Object:
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


@pytest.mark.parametrize(
    ("pod", "here", "elsewhere", "reason"),
    [
        pytest.param(
            make_pod(labels=WEB, affinity=_pod_term("podAntiAffinity", WEB)),
            [make_pod("w", labels=WEB, node="n1")],
            [],
            inter_pod_affinity.ANTI_AFFINITY,
            id="anti-affinity-same-host",
        ),
        pytest.param(
            make_pod(labels=WEB, affinity=_pod_term("podAntiAffinity", WEB)),
            [],
            [make_pod("w", labels=WEB, node="n2")],
            None,
            id="anti-affinity-other-host",
        ),
        pytest.param(
            make_pod(labels=WEB),
            [
                make_pod(
                    "w", labels={"app": "db"}, node="n1", affinity=_pod_term("podAntiAffinity", WEB)
                )
            ],
            [],
            inter_pod_affinity.EXISTING_ANTI_AFFINITY,
            id="existing-pods-anti-affinity",
        ),
        pytest.param(
            make_pod(affinity=_pod_term("podAffinity", {"app": "db"})),
            [],
            [make_pod("d", labels={"app": "db"}, node="n2")],
            inter_pod_affinity.AFFINITY,
            id="affinity-elsewhere",
        ),
        pytest.param(
            make_pod(affinity=_pod_term("podAffinity", {"app": "db"})),
            [make_pod("d", labels={"app": "db"}, node="n1")],
            [],
            None,
            id="affinity-here",
        ),
        pytest.param(
            make_pod(labels=WEB, affinity=_pod_term("podAffinity", WEB)),
            [],
            [],
            None,
            id="first-pod-of-a-group-selecting-itself",
        ),
    ],
)
def test_inter_pod_affinity(
    pod: Object, here: list[Object], elsewhere: list[Object], reason: str | None
) -> None:
    """InterPodAffinity: required affinity and anti-affinity, both directions."""
    n1, n2 = info(make_node("n1"), *here), info(make_node("n2"), *elsewhere)
    assert run_filter(inter_pod_affinity.InterPodAffinity(), pod, n1, n2) == reason


ZONE = "topology.kubernetes.io/zone"


def _spread(max_skew: int, when: str = "DoNotSchedule") -> list[Object]:
    return [
        {
            "maxSkew": max_skew,
            "topologyKey": ZONE,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": WEB},
        }
    ]


@pytest.mark.parametrize(
    ("max_skew", "in_a", "in_b", "reason"),
    [
        pytest.param(1, 1, 0, pod_topology_spread.REASON, id="would-skew-by-2"),
        pytest.param(2, 1, 0, None, id="within-max-skew"),
        pytest.param(1, 1, 1, None, id="balanced"),
    ],
)
def test_pod_topology_spread_filter(max_skew: int, in_a: int, in_b: int, reason: str) -> None:
    """DoNotSchedule: count(zone) + self - min(count) must stay within maxSkew."""
    a = info(
        make_node("a", labels={ZONE: "a"}),
        *(make_pod(f"a{i}", labels=WEB, node="a") for i in range(in_a)),
    )
    b = info(
        make_node("b", labels={ZONE: "b"}),
        *(make_pod(f"b{i}", labels=WEB, node="b") for i in range(in_b)),
    )
    pod = make_pod(labels=WEB, topologySpreadConstraints=_spread(max_skew))
    assert run_filter(pod_topology_spread.PodTopologySpread(), pod, a, b) == reason


def test_pod_topology_spread_rejects_a_node_without_the_key() -> None:
    """A node lacking the topology key is unresolvable for DoNotSchedule."""
    pod = make_pod(labels=WEB, topologySpreadConstraints=_spread(1))
    plugin = pod_topology_spread.PodTopologySpread()
    assert run_filter(plugin, pod, info(make_node("x"))) == pod_topology_spread.MISSING_LABEL
