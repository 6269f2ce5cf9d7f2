"""Defaulting for autoscaling/v2 HorizontalPodAutoscalers (upstream: pkg/apis/autoscaling/v2/defaults.go).

An HPA without ``minReplicas`` gets 1, one without metrics gets the implicit
80% average CPU utilization target that autoscaling/v1 always had, and a
``behavior`` that is present (even ``{}``) has both directions filled in from
upstream's rules: scale up by at most 4 pods or 100% per 15 s with no
stabilization, scale down by at most 100% per 15 s (the scale-down
stabilization window stays unset: the controller's command-line flag decides
it). A direction's fields the client gave win one by one.
"""

from __future__ import annotations

import copy
from typing import Any

Object = dict[str, Any]

DEFAULT_CPU_UTILIZATION = 80

_SCALE_UP_RULES: Object = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN_RULES: Object = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
# The fields of HPAScalingRules a client's value overrides (upstream's copyHPAScalingRules).
_RULE_FIELDS = ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance")


def default_cpu_metric(utilization: int = DEFAULT_CPU_UTILIZATION) -> Object:
    """A Resource metric targeting ``utilization`` percent average CPU."""
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": utilization},
        },
    }


def _scaling_rules(given: Any, defaults: Object) -> Object:
    rules = copy.deepcopy(defaults)
    if isinstance(given, dict):
        for key in _RULE_FIELDS:
            if given.get(key) is not None:
                rules[key] = given[key]
    return rules


def set_defaults_behavior(spec: Object) -> None:
    """Fill both scaling directions of a present ``behavior`` (SetDefaults_HorizontalPodAutoscalerBehavior)."""
    behavior = spec.get("behavior")
    if not isinstance(behavior, dict):
        return
    behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP_RULES)
    behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN_RULES)


def set_defaults_horizontal_pod_autoscaler(obj: Object) -> None:
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [default_cpu_metric()]
    set_defaults_behavior(spec)
