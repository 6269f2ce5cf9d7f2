"""StatefulSets in the API server (upstream: pkg/registry/apps/statefulset).

Owns: status only through ``statefulsets/status``; generation bumps on spec
changes; ``/scale``; only some spec fields are mutable (see the validation
module); columns NAME READY AGE (wide CONTAINERS IMAGES).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import defaults, printing
from kajitori.api.apps_v1.validation import statefulsets as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class StatefulSetStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``apps/v1 statefulsets``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_stateful_set(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_stateful_set(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_stateful_set_update(obj, old)


class StatefulSetStatusStrategy(strategies.StatusStrategy):
    """``statefulsets/status``: only status changes; counters are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_stateful_set_status_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Ready", description="Number of the pod with ready state"),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description=printing.CONTAINERS_DOC),
    tables.Column("Images", priority=1, description=printing.IMAGES_DOC),
)


def stateful_set_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = printing.container_cells((spec.get("template") or {}).get("spec"))
    return [
        tables.name(obj),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        tables.age(obj, now),
        names,
        images,
    ]


STRATEGY = StatefulSetStrategy()

RESOURCE = resource.ResourceInfo(
    group="apps",
    version="v1",
    kind="StatefulSet",
    plural="statefulsets",
    namespaced=True,
    short_names=("sts",),
    categories=("all",),
    strategy=STRATEGY,
    status=StatefulSetStatusStrategy(STRATEGY),
    scale=resource.ScaleSubresource(),
    table=tables.Table(columns=COLUMNS, row=stateful_set_row),
    tracks_generation=True,
)
