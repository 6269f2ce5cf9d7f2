"""ResourceQuotas in the API server: strategy, status subresource, table.

Mirrors pkg/registry/core/resourcequota/strategy.go: status is cleared on
create and kept on main-endpoint updates (the quota controller writes it
through ``/status``). The table is upstream's NAME, AGE, REQUEST, LIMIT,
where REQUEST lists every ``status.hard`` resource not named ``limits.*`` as
``name: used/hard`` and LIMIT the ``limits.*`` ones.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import resourcequotas as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ResourceQuotaStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``v1 resourcequotas``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_resource_quota(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_resource_quota(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_resource_quota_update(obj, old)


class ResourceQuotaStatusStrategy(strategies.StatusStrategy):
    """``resourcequotas/status``: only status changes."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_resource_quota_status_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.AGE_COLUMN,
    tables.Column(
        "Request",
        description="Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    tables.Column(
        "Limit",
        description=(
            "Limits control the maximum amount of cpu/memory that a container may use "
            "independent of contention on the node."
        ),
    ),
)


def _resources(obj: Object, key: str) -> dict[str, Any]:
    value = (obj.get("status") or {}).get(key)
    return value if isinstance(value, dict) else {}


def resource_quota_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """NAME, AGE, REQUEST, LIMIT as upstream's printResourceQuota."""
    hard, used = _resources(obj, "hard"), _resources(obj, "used")
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        target = limits if name.split(".")[0] == "limits" and "." in name else requests
        target.append(f"{name}: {used.get(name, '0')}/{hard[name]}")
    return [tables.name(obj), tables.age(obj, now), ", ".join(requests), ", ".join(limits)]


STRATEGY = ResourceQuotaStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="ResourceQuota",
    plural="resourcequotas",
    namespaced=True,
    short_names=("quota",),
    strategy=STRATEGY,
    status=ResourceQuotaStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=resource_quota_row),
)
