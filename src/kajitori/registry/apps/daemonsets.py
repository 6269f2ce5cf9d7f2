"""DaemonSets in the API server (upstream: pkg/registry/apps/daemonset).

Owns: status only through ``daemonsets/status``; generation bumps on spec
changes; immutable selector; columns NAME DESIRED CURRENT READY UP-TO-DATE
AVAILABLE NODE SELECTOR AGE (wide CONTAINERS IMAGES SELECTOR).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import defaults, printing
from kajitori.api.apps_v1.validation import daemonsets as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class DaemonSetStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``apps/v1 daemonsets``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_daemon_set(obj)

    # Upstream's internal spec.templateGeneration travels in apps/v1 as this
    # annotation: 1 on create, +1 when the template changes, never set by
    # clients on update. The DaemonSet controller copies it into its pods'
    # pod-template-generation label.
    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        if _template_generation(obj) < 1:
            _set_template_generation(obj, 1)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        super().prepare_for_update(obj, old)
        generation = _template_generation(old)
        if (obj.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        _set_template_generation(obj, generation)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_daemon_set(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_daemon_set_update(obj, old)


TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


def _template_generation(obj: Object) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(TEMPLATE_GENERATION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def _set_template_generation(obj: Object, generation: int) -> None:
    meta = obj.setdefault("metadata", {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        TEMPLATE_GENERATION_ANNOTATION: str(generation),
    }


class DaemonSetStatusStrategy(strategies.StatusStrategy):
    """``daemonsets/status``: only status changes; counters are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_daemon_set_status_update(obj, old)


_STATUS = "io.k8s.api.apps.v1.DaemonSetStatus"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Desired", type="integer", description=printing.doc(_STATUS, "desiredNumberScheduled")
    ),
    tables.Column(
        "Current", type="integer", description=printing.doc(_STATUS, "currentNumberScheduled")
    ),
    tables.Column("Ready", type="integer", description=printing.doc(_STATUS, "numberReady")),
    tables.Column(
        "Up-to-date", type="integer", description=printing.doc(_STATUS, "updatedNumberScheduled")
    ),
    tables.Column(
        "Available", type="integer", description=printing.doc(_STATUS, "numberAvailable")
    ),
    tables.Column(
        "Node Selector", description=printing.doc("io.k8s.api.core.v1.PodSpec", "nodeSelector")
    ),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description=printing.CONTAINERS_DOC),
    tables.Column("Images", priority=1, description=printing.IMAGES_DOC),
    tables.Column(
        "Selector",
        priority=1,
        description=printing.doc("io.k8s.api.apps.v1.DaemonSetSpec", "selector"),
    ),
)


def daemon_set_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    names, images = printing.container_cells(pod_spec)
    return [
        tables.name(obj),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        printing.format_labels(pod_spec.get("nodeSelector")),
        tables.age(obj, now),
        names,
        images,
        printing.selector_string(spec.get("selector")),
    ]


STRATEGY = DaemonSetStrategy()

RESOURCE = resource.ResourceInfo(
    group="apps",
    version="v1",
    kind="DaemonSet",
    plural="daemonsets",
    namespaced=True,
    short_names=("ds",),
    categories=("all",),
    strategy=STRATEGY,
    status=DaemonSetStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=daemon_set_row),
    tracks_generation=True,
)
