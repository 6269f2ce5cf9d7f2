"""Validation of policy/v1 PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.policy_v1.validation import poddisruptionbudgets as pdbs

Object = dict[str, Any]


def _pdb(**spec: Any) -> Object:
    return {
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "4"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"minAvailable": 2}, id="min-int"),
        pytest.param({"maxUnavailable": "25%"}, id="max-percent"),
        pytest.param({"unhealthyPodEvictionPolicy": "AlwaysAllow"}, id="eviction-policy"),
    ],
)
def test_typical_budgets_are_valid(spec: Object) -> None:
    """Budgets with one bound pass validation."""
    assert list(pdbs.validate_pod_disruption_budget(_pdb(**spec))) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"minAvailable": 1, "maxUnavailable": 1},
            'spec: Invalid value: {"selector":{"matchLabels":{"app":"web"}},"minAvailable":1,'
            '"maxUnavailable":1}: minAvailable and maxUnavailable cannot be both set',
            id="both-bounds",
        ),
        pytest.param(
            {"minAvailable": -1},
            "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0",
            id="negative",
        ),
        pytest.param(
            {"maxUnavailable": "150%"},
            'spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%',
            id="over-100-percent",
        ),
        pytest.param(
            {"unhealthyPodEvictionPolicy": "Never"},
            'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": '
            'supported values: "AlwaysAllow", "IfHealthyBudget"',
            id="bad-eviction-policy",
        ),
    ],
)
def test_budget_mistakes_get_upstreams_messages(spec: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert [str(e) for e in pdbs.validate_pod_disruption_budget(_pdb(**spec))] == [message]


def test_spec_may_change_on_update() -> None:
    """Since 1.15 a PDB's spec is mutable."""
    assert list(pdbs.validate_pod_disruption_budget_update(_pdb(minAvailable=3), _pdb())) == []


def test_status_counters_must_not_be_negative() -> None:
    """The status endpoint refuses negative counters."""
    new = _pdb()
    new["status"] = {"disruptionsAllowed": -1, "expectedPods": 2}
    assert [str(e) for e in pdbs.validate_pod_disruption_budget_status_update(new, _pdb())] == [
        "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"
    ]
