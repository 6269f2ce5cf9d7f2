"""HorizontalPodAutoscaler defaulting, validation, v1 conversion and TARGETS printing (pure functions).

The e2e file (tests/e2e/test_hpa_e2e.py) covers what kubectl sees; these
cover the cases a kubectl command does not easily reach: every metric source
through the autoscaling/v1 annotations and back, the apiVersion rules of the
scale target, and the printer's other metric kinds.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.api.autoscaling_v1 import conversion
from kajitori.api.autoscaling_v2 import defaults, validation
from kajitori.registry.autoscaling import horizontalpodautoscalers as registry

Object = dict[str, Any]

SELECTOR = {"matchLabels": {"app": "web"}}
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
OTHER_METRICS: list[Object] = [
    {
        "type": "Object",
        "object": {
            "describedObject": {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "name": "i",
            },
            "target": {"type": "Value", "value": "10"},
            "metric": {"name": "hits", "selector": SELECTOR},
        },
    },
    {
        "type": "Pods",
        "pods": {
            "metric": {"name": "rps"},
            "target": {"type": "AverageValue", "averageValue": "1k"},
        },
    },
    {
        "type": "External",
        "external": {
            "metric": {"name": "queue", "selector": SELECTOR},
            "target": {"type": "AverageValue", "averageValue": "30"},
        },
    },
    {
        "type": "ContainerResource",
        "containerResource": {
            "name": "memory",
            "container": "app",
            "target": {"type": "AverageValue", "averageValue": "100Mi"},
        },
    },
]
CPU_METRIC = defaults.default_cpu_metric(60)


def stored(metrics: list[Object], status: Object | None = None) -> Object:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "resourceVersion": "5",
            "annotations": {"a": "b"},
        },
        "spec": {"scaleTargetRef": TARGET, "minReplicas": 2, "maxReplicas": 5, "metrics": metrics},
        "status": status or {"desiredReplicas": 0},
    }


def test_every_metric_source_survives_v1_and_back() -> None:
    original = stored([*OTHER_METRICS, CPU_METRIC])
    before = copy.deepcopy(original)
    v1 = conversion.downgrade(original)
    assert original == before  # watch events are shared: never mutated
    assert v1["spec"] == {
        "scaleTargetRef": TARGET,
        "minReplicas": 2,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 60,
    }
    annotations = v1["metadata"]["annotations"]
    assert annotations["a"] == "b"
    assert conversion.METRICS_ANNOTATION in annotations
    back = conversion.upgrade(v1)
    # Upstream puts the annotation's metrics first and the CPU target last.
    assert back["spec"]["metrics"] == [*OTHER_METRICS, CPU_METRIC]
    assert back["metadata"]["annotations"] == {"a": "b"}


def test_current_metrics_and_conditions_travel_in_annotations() -> None:
    condition = {
        "type": "AbleToScale",
        "status": "True",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "reason": "SucceededGetScale",
        "message": "m",
    }
    current = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "current": {"averageValue": "50m", "averageUtilization": 25},
            },
        },
        {"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "3"}}},
    ]
    status = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": current}
    v1 = conversion.downgrade(stored([CPU_METRIC], {**status, "conditions": [condition]}))
    assert v1["status"] == {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentCPUUtilizationPercentage": 25,
    }
    back = conversion.upgrade(v1)
    assert back["status"]["currentMetrics"] == current
    assert back["status"]["conditions"] == [condition]
    assert "annotations" in back["metadata"] and back["metadata"]["annotations"] == {"a": "b"}


def test_v1_without_metrics_means_80_percent_cpu() -> None:
    body = {"apiVersion": "autoscaling/v1", "spec": {"scaleTargetRef": TARGET, "maxReplicas": 3}}
    assert conversion.upgrade(body)["spec"] == {
        "scaleTargetRef": TARGET,
        "minReplicas": 1,
        "maxReplicas": 3,
        "metrics": [defaults.default_cpu_metric(80)],
    }


def test_behavior_defaults_fill_both_directions() -> None:
    hpa: Object = {"spec": {"behavior": {}, "metrics": [CPU_METRIC]}}
    defaults.set_defaults_horizontal_pod_autoscaler(hpa)
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    # Upstream leaves the scale-down window to the controller's flag.
    assert "stabilizationWindowSeconds" not in behavior["scaleDown"]
    assert hpa["spec"]["metrics"] == [CPU_METRIC]
    assert "behavior" not in defaults_of({"spec": {}})["spec"]


def defaults_of(obj: Object) -> Object:
    defaults.set_defaults_horizontal_pod_autoscaler(obj)
    return obj


def messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def test_scale_target_api_version_needs_a_group_except_for_replication_controllers() -> None:
    core = stored([CPU_METRIC])
    core["spec"]["scaleTargetRef"] = {"apiVersion": "v1", "kind": "Deployment", "name": "web"}
    assert messages(validation.validate_horizontal_pod_autoscaler(core)) == [
        'spec.scaleTargetRef.apiVersion: Invalid value: "v1": apiVersion must specify API group'
    ]
    core["spec"]["scaleTargetRef"]["kind"] = "ReplicationController"
    assert validation.validate_horizontal_pod_autoscaler(core) == []
    # An update that keeps an (old, now invalid) target is not re-checked.
    old = stored([CPU_METRIC])
    old["spec"]["scaleTargetRef"] = {"kind": "Deployment", "name": "web"}
    new = copy.deepcopy(old)
    new["spec"]["maxReplicas"] = 6
    assert validation.validate_horizontal_pod_autoscaler_update(new, old) == []


def test_metric_type_must_match_its_one_source() -> None:
    hpa = stored([{"type": "Pods", "resource": CPU_METRIC["resource"]}])
    assert messages(validation.validate_horizontal_pod_autoscaler(hpa)) == [
        "spec.metrics[0].pods: Required value: must populate information for the given metric source"
    ]
    both = stored([{**CPU_METRIC, "pods": OTHER_METRICS[1]["pods"]}])
    assert (
        "spec.metrics[0].pods: Forbidden: must populate the given metric source only"
        in messages(validation.validate_horizontal_pod_autoscaler(both))
    )


def test_update_may_keep_min_replicas_zero() -> None:
    old = stored([OTHER_METRICS[0]])
    old["spec"]["minReplicas"] = 0
    new = copy.deepcopy(old)
    new["spec"]["maxReplicas"] = 7
    assert validation.validate_horizontal_pod_autoscaler_update(new, old) == []
    assert messages(validation.validate_horizontal_pod_autoscaler(old)) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
    ]


def test_targets_column_for_other_metric_kinds() -> None:
    statuses = [
        {"type": "Object", "object": {"current": {"value": "7"}}},
        {"type": "Pods", "pods": {"current": {"averageValue": "2"}}},
    ]
    assert registry.format_metrics(OTHER_METRICS[:2], statuses) == "7/10, 2/1k"
    assert registry.format_metrics(OTHER_METRICS, []) == ("<unknown>/10, <unknown>/1k + 2 more...")
    assert registry.format_metrics(OTHER_METRICS[2:3], []) == "<unknown>/30 (avg)"
    assert registry.format_metrics(OTHER_METRICS[3:], []) == "memory: <unknown>/100Mi"
    assert registry.format_metrics([], []) == "<none>"
