"""ResourceQuota and LimitRange validation against upstream's messages."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.core_v1.validation import limitranges, resourcequotas

Object = dict[str, Any]


def quota(hard: Object, scopes: list[str] | None = None) -> Object:
    spec: Object = {"hard": hard}
    if scopes is not None:
        spec["scopes"] = scopes
    return {"metadata": {"name": "q", "namespace": "default", "resourceVersion": "1"}, "spec": spec}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            quota({"pods": "10", "requests.cpu": "2", "limits.memory": "4Gi"}), [], id="valid"
        ),
        pytest.param(
            quota({"gpus": "1"}),
            [
                'spec.hard[gpus]: Invalid value: "gpus": must be a standard resource type or fully qualified',
                'spec.hard[gpus]: Invalid value: "gpus": must be a standard resource for quota',
            ],
            id="unknown-resource",
        ),
        pytest.param(
            quota({"pods": "1.5"}),
            ['spec.hard[pods]: Invalid value: "1.5": must be an integer'],
            id="fractional-count",
        ),
        pytest.param(
            quota({"cpu": "-1"}),
            ['spec.hard[cpu]: Invalid value: "-1": must be greater than or equal to 0'],
            id="negative",
        ),
        pytest.param(
            quota({"pods": "1"}, ["BestEffort", "NotBestEffort"]),
            ['spec.scopes: Invalid value: ["BestEffort","NotBestEffort"]: conflicting scopes'],
            id="conflicting-scopes",
        ),
        pytest.param(
            quota({"cpu": "1"}, ["BestEffort"]),
            ['spec.scopes: Invalid value: ["BestEffort"]: unsupported scope applied to resource'],
            id="best-effort-cpu",
        ),
        pytest.param(
            quota({"pods": "1"}, ["Sometimes"]),
            ['spec.scopes: Invalid value: ["Sometimes"]: unsupported scope'],
            id="unknown-scope",
        ),
    ],
)
def test_validate_resource_quota(obj: Object, expected: list[str]) -> None:
    """Resource names, quantities and scopes give upstream's messages."""
    assert [str(e) for e in resourcequotas.validate_resource_quota(obj)] == expected


def test_quota_scopes_are_immutable() -> None:
    """Scopes compare as sets: reordering is fine, changing is not."""
    old = quota({"pods": "1"}, ["Terminating", "PriorityClass"])
    reordered = quota({"pods": "2"}, ["PriorityClass", "Terminating"])
    assert resourcequotas.validate_resource_quota_update(reordered, old) == []
    changed = quota({"pods": "1"}, ["Terminating"])
    assert [str(e) for e in resourcequotas.validate_resource_quota_update(changed, old)] == [
        'spec.scopes: Invalid value: ["Terminating"]: field is immutable'
    ]


def limit_range(*items: Object) -> Object:
    return {
        "metadata": {"name": "l", "namespace": "default"},
        "spec": {"limits": list(items)},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            limit_range(
                {
                    "type": "Container",
                    "min": {"cpu": "100m"},
                    "max": {"cpu": "1"},
                    "default": {"cpu": "500m"},
                    "defaultRequest": {"cpu": "200m"},
                }
            ),
            [],
            id="valid",
        ),
        pytest.param(
            limit_range({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}),
            [
                'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1'
            ],
            id="min-over-max",
        ),
        pytest.param(
            limit_range(
                {"type": "Container", "default": {"memory": "2Gi"}, "max": {"memory": "1Gi"}}
            ),
            [
                'spec.limits[0].default[memory]: Invalid value: "1Gi": default value 2Gi is greater than max value 1Gi'
            ],
            id="default-over-max",
        ),
        pytest.param(
            limit_range({"type": "Pod", "default": {"cpu": "1"}}),
            ["spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"],
            id="pod-default",
        ),
        pytest.param(
            limit_range({"type": "PersistentVolumeClaim", "max": {"cpu": "1"}}),
            [
                "spec.limits[0].limits: Required value: either minimum or maximum storage value is "
                "required, but neither was provided"
            ],
            id="pvc-without-storage",
        ),
        pytest.param(
            limit_range({"type": "Widget"}),
            [
                'spec.limits[0].type: Invalid value: "Widget": must be a standard limit type or fully qualified'
            ],
            id="bad-type",
        ),
        pytest.param(
            limit_range({"type": "Container"}, {"type": "Container"}),
            ['spec.limits[1].type: Duplicate value: "Container"'],
            id="duplicate-type",
        ),
        pytest.param(
            limit_range({"type": "Container", "max": {"storage": "1Gi"}}),
            [
                'spec.limits[0].max[storage]: Invalid value: "storage": must be a standard resource for containers'
            ],
            id="storage-on-container",
        ),
        pytest.param(
            limit_range({"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}}),
            [
                'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1'
            ],
            id="ratio-below-one",
        ),
        pytest.param(
            limit_range(
                {
                    "type": "Container",
                    "min": {"cpu": "1"},
                    "max": {"cpu": "2"},
                    "maxLimitRequestRatio": {"cpu": "3"},
                }
            ),
            [
                'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater '
                "than max/min = 2.000000"
            ],
            id="ratio-over-max-by-min",
        ),
    ],
)
def test_validate_limit_range(obj: Object, expected: list[str]) -> None:
    """Orderings of min/default/defaultRequest/max and limit types, as upstream reports them."""
    assert [str(e) for e in limitranges.validate_limit_range(obj)] == expected
