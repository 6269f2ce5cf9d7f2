"""ReplicaSets in the API server (upstream: pkg/registry/apps/replicaset).

Owns: status only through ``replicasets/status``; generation bumps on spec
changes; ``/scale``; immutable selector; the ``status.replicas`` field
selector; columns NAME DESIRED CURRENT READY AGE (wide CONTAINERS IMAGES
SELECTOR).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import defaults, printing
from kajitori.api.apps_v1.validation import replicasets as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ReplicaSetStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``apps/v1 replicasets``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_replica_set(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_replica_set(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_replica_set_update(obj, old)


class ReplicaSetStatusStrategy(strategies.StatusStrategy):
    """``replicasets/status``: only status changes; counters are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_replica_set_status_update(obj, old)


def _status_replicas(obj: Object) -> str:
    # Upstream's selectable field prints the int32, so an unset count is "0".
    return str((obj.get("status") or {}).get("replicas", 0))


_SPEC = "io.k8s.api.apps.v1.ReplicaSetSpec"
_STATUS = "io.k8s.api.apps.v1.ReplicaSetStatus"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Desired", type="integer", description=printing.doc(_SPEC, "replicas")),
    tables.Column("Current", type="integer", description=printing.doc(_STATUS, "replicas")),
    tables.Column("Ready", type="integer", description=printing.doc(_STATUS, "readyReplicas")),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description=printing.CONTAINERS_DOC),
    tables.Column("Images", priority=1, description=printing.IMAGES_DOC),
    tables.Column("Selector", priority=1, description=printing.doc(_SPEC, "selector")),
)


def replica_set_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = printing.container_cells((spec.get("template") or {}).get("spec"))
    return [
        tables.name(obj),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        tables.age(obj, now),
        names,
        images,
        printing.selector_string(spec.get("selector")),
    ]


STRATEGY = ReplicaSetStrategy()

RESOURCE = resource.ResourceInfo(
    group="apps",
    version="v1",
    kind="ReplicaSet",
    plural="replicasets",
    namespaced=True,
    short_names=("rs",),
    categories=("all",),
    strategy=STRATEGY,
    status=ReplicaSetStatusStrategy(STRATEGY),
    scale=resource.ScaleSubresource(),
    selectable_fields={"status.replicas": _status_replicas},
    table=tables.Table(columns=COLUMNS, row=replica_set_row),
    tracks_generation=True,
)
