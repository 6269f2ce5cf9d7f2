"""``observedGeneration`` for pod conditions written outside the kubelet: the pod's generation, or none."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.core_v1 import pod_conditions

Object = dict[str, Any]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param({"generation": 4}, {"type": "X", "observedGeneration": 4}, id="generation"),
        pytest.param({}, {"type": "X"}, id="stored-before-generations"),
        pytest.param({"generation": 0}, {"type": "X"}, id="zero-is-unset"),
        pytest.param({"generation": True}, {"type": "X"}, id="not-an-integer"),
        pytest.param({"generation": -3}, {"type": "X"}, id="negative"),
    ],
)
def test_a_condition_carries_the_pods_generation_only_when_it_has_one(
    metadata: Object, expected: Object
) -> None:
    """Upstream omits a zero observedGeneration; a malformed generation counts as none."""
    assert pod_conditions.observe({"type": "X"}, {"metadata": metadata}) == expected


def test_a_pod_without_a_generation_leaves_an_earlier_value_alone() -> None:
    """Nothing to say about the generation: the condition's own value stays (as the API server keeps it)."""
    condition = {"type": "X", "observedGeneration": 2}
    assert pod_conditions.observe(condition, {}) == {"type": "X", "observedGeneration": 2}
