"""Leases in the API server (upstream: pkg/registry/coordination/lease).

Owns: the ``kubectl get leases`` columns (NAME HOLDER AGE). Leases are plain:
no short name, no status subresource, no generation; node heartbeats and
leader election renew them by update, which must stay cheap.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.coordination_v1 import defaults
from kajitori.api.coordination_v1.validation import leases as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class LeaseStrategy(strategies.Strategy):
    """Create/update rules for ``coordination.k8s.io/v1 leases``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_lease(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_lease(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_lease_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Holder", description=printing.doc("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")
    ),
    tables.AGE_COLUMN,
)


def lease_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    holder = (obj.get("spec") or {}).get("holderIdentity")
    return [tables.name(obj), holder if isinstance(holder, str) else "", tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="coordination.k8s.io",
    version="v1",
    kind="Lease",
    plural="leases",
    namespaced=True,
    strategy=LeaseStrategy(),
    table=tables.Table(columns=COLUMNS, row=lease_row),
)
