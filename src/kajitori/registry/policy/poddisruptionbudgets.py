"""PodDisruptionBudgets in the API server (upstream: pkg/registry/policy/poddisruptionbudget).

Owns: status is written only through ``poddisruptionbudgets/status`` (by the
disruption controller); generation bumps on spec changes; the ``kubectl get
pdb`` columns (NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.policy_v1 import defaults
from kajitori.api.policy_v1.validation import poddisruptionbudgets as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class PodDisruptionBudgetStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``policy/v1 poddisruptionbudgets``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_pod_disruption_budget(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_pod_disruption_budget(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_disruption_budget_update(obj, old)


class PodDisruptionBudgetStatusStrategy(strategies.StatusStrategy):
    """``poddisruptionbudgets/status``: only status changes; counters are non-negative."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_disruption_budget_status_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Min Available", description="The minimum number of pods that must be available."
    ),
    tables.Column(
        "Max Unavailable", description="The maximum number of pods that may be unavailable."
    ),
    tables.Column(
        "Allowed Disruptions",
        type="integer",
        description="Calculated number of pods that may be disrupted at this time.",
    ),
    tables.AGE_COLUMN,
)


def _int_or_string(value: Any) -> str:
    # IntOrString.String(): the number or the string, "N/A" when unset.
    return "N/A" if value is None else str(value)


def pod_disruption_budget_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return [
        tables.name(obj),
        _int_or_string(spec.get("minAvailable")),
        _int_or_string(spec.get("maxUnavailable")),
        int(status.get("disruptionsAllowed") or 0),
        tables.age(obj, now),
    ]


STRATEGY = PodDisruptionBudgetStrategy()

RESOURCE = resource.ResourceInfo(
    group="policy",
    version="v1",
    kind="PodDisruptionBudget",
    plural="poddisruptionbudgets",
    namespaced=True,
    short_names=("pdb",),
    strategy=STRATEGY,
    status=PodDisruptionBudgetStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=pod_disruption_budget_row),
    tracks_generation=True,
)
