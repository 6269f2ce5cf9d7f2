"""The HPA's replica arithmetic (controllers/replica_calculator.py), on upstream's own cases.

Utilization is usage over requests; within the 0.1 tolerance nothing moves;
unready pods count as idle on a scale-up and missing pods as fully busy on a
scale-down; normalization applies the stabilization windows and the scaling
policies with upstream's condition reasons.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.controllers import replica_calculator as calc

Object = dict[str, Any]
NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
OLD = "2030-01-01T11:50:00Z"


def pod(name: str, *, ready: bool = True, phase: str = "Running", cpu: str = "1") -> Object:
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {
            "phase": phase,
            "startTime": OLD,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": OLD}
            ],
        },
    }


def usage(**milli: int) -> dict[str, calc.PodMetric]:
    return {name: calc.PodMetric(value, NOW, 15.0) for name, value in milli.items()}


def test_scale_up_on_utilization() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    got = calc.resource_replicas(3, 30, "cpu", pods, usage(a=300, b=500, c=700), now=NOW)
    assert got == calc.Proposal(5, 50, 500)


def test_unready_pods_count_as_idle_when_scaling_up() -> None:
    pods = [pod("a", ready=False), pod("b"), pod("c")]
    got = calc.resource_replicas(3, 30, "cpu", pods, usage(a=300, b=500, c=700), now=NOW)
    assert got.replicas == 4 and got.utilization == 60


def test_missing_pods_count_as_busy_when_scaling_down() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    got = calc.resource_replicas(4, 50, "cpu", pods, usage(a=100, b=100, c=100), now=NOW)
    assert got.replicas == 3 and got.utilization == 10


def test_within_tolerance_keeps_the_count() -> None:
    pods = [pod("a"), pod("b")]
    got = calc.resource_replicas(2, 50, "cpu", pods, usage(a=540, b=540), now=NOW)
    assert got == calc.Proposal(2, 54, 540)


def test_errors_are_upstreams() -> None:
    with pytest.raises(
        calc.CalculationError, match=r"^missing request for cpu in container c of Pod a$"
    ):
        bare = pod("a")
        bare["spec"]["containers"][0]["resources"] = {}
        calc.resource_replicas(1, 50, "cpu", [bare], usage(a=1), now=NOW)
    with pytest.raises(calc.CalculationError, match=r"did not receive metrics for targeted pods"):
        calc.resource_replicas(1, 50, "cpu", [pod("a", phase="Pending")], usage(a=1), now=NOW)
    with pytest.raises(calc.CalculationError, match="no pods returned by selector"):
        calc.resource_replicas(1, 50, "cpu", [], usage(a=1), now=NOW)


def test_average_value_target() -> None:
    pods = [pod("a"), pod("b")]
    got = calc.raw_resource_replicas(2, 200, "cpu", pods, usage(a=400, b=600), now=NOW)
    assert got == calc.Proposal(5, None, 500)


def test_pod_metrics_sums_containers_and_reads_the_window() -> None:
    items = [
        {
            "metadata": {"name": "a"},
            "timestamp": "2030-01-01T12:00:00Z",
            "window": "15.001s",
            "containers": [
                {"name": "x", "usage": {"cpu": "250m", "memory": "1Ki"}},
                {"name": "y", "usage": {"cpu": "1500000n", "memory": "1Ki"}},
            ],
        },
        {"metadata": {"name": "b"}, "window": "1m0.5s", "containers": [{"name": "x", "usage": {}}]},
    ]
    got = calc.pod_metrics(items, "cpu")
    assert got == {"a": calc.PodMetric(252, NOW, 15.001)}
    assert calc.parse_go_duration("1m0.5s") == 60.5


BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 60,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
    },
}


def test_behavior_stabilizes_and_limits_scale_down() -> None:
    history = calc.History()
    history.record_initial(5, 0.0)
    # A lower recommendation within the 60 s window: the highest recent one wins.
    desired, conditions = calc.normalize_with_behavior(history, BEHAVIOR, 5, 2, 1, 10, 10.0)
    assert desired == 5
    assert (conditions[0].reason, conditions[1].reason) == (
        "ScaleDownStabilized",
        "DesiredWithinRange",
    )
    # Past the window: down, but one pod per 30 s.
    desired, conditions = calc.normalize_with_behavior(history, BEHAVIOR, 5, 2, 1, 10, 100.0)
    assert desired == 4
    assert conditions[1] == calc.Condition(
        "ScalingLimited",
        "True",
        "ScaleDownLimit",
        "the desired replica count is decreasing faster than the maximum scale rate",
    )
    history.store_scale_event(BEHAVIOR, 5, 4, 100.0)
    assert calc.scale_down_limit(4, history, BEHAVIOR["scaleDown"], 110.0) == 4
    assert calc.scale_down_limit(4, history, BEHAVIOR["scaleDown"], 131.0) == 3


def test_behavior_scale_up_is_capped_by_max_then_by_rate() -> None:
    history = calc.History()
    desired, conditions = calc.normalize_with_behavior(history, BEHAVIOR, 2, 30, 1, 5, 0.0)
    assert desired == 5 and conditions[1].reason == "TooManyReplicas"
    desired, conditions = calc.normalize_with_behavior(history, BEHAVIOR, 2, 30, 1, 50, 1.0)
    assert desired == 6 and conditions[1].reason == "ScaleUpLimit"


def test_without_behavior_the_legacy_limits_apply() -> None:
    history = calc.History()
    history.record_initial(3, 0.0)
    desired, conditions = calc.normalize_without_behavior(history, 3, 20, 1, 50, 1.0)
    assert desired == 6 and conditions[1].reason == "ScaleUpLimit"
    desired, conditions = calc.normalize_without_behavior(history, 6, 1, 2, 50, 2.0)
    # The highest recent recommendation (20), then at most twice the current count.
    assert desired == 12 and conditions[0].reason == "ScaleDownStabilized"
    assert conditions[1].reason == "ScaleUpLimit"
