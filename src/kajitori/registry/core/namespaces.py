"""Namespaces in the API server: strategy, status and finalize subresources, table.

Mirrors pkg/registry/core/namespace/strategy.go:

* create: ``status`` becomes ``{phase: Active}`` and ``spec.finalizers``
  gains ``kubernetes`` (the namespace controller removes it after emptying
  the namespace);
* main-endpoint update: ``spec.finalizers`` and ``status`` are kept from the
  stored object (only ``/finalize`` and ``/status`` change them);
* always: the ``kubernetes.io/metadata.name`` label equals the name (set in
  the prepare hooks and again in ``canonicalize``, since a generated name is
  known only after defaulting and a client may have removed the label).

``FINALIZE_STRATEGY`` is the strategy of the ``/finalize`` subresource, which
the server serves as a PUT handler of its own.

Not here: upstream's namespace Delete is special (first marks the namespace
Terminating with a deletionTimestamp, deleting it only once
``spec.finalizers`` is empty); that lives in the store's delete path.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import namespaces as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

LABEL_METADATA_NAME = "kubernetes.io/metadata.name"


def set_name_label(obj: Object) -> None:
    """``kubernetes.io/metadata.name: <name>``, whatever the client sent."""
    meta = obj.setdefault("metadata", {})
    name = meta.get("name")
    if not name:
        return
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = meta["labels"] = {}
    labels[LABEL_METADATA_NAME] = name


class NamespaceStrategy(strategies.Strategy):
    """Create/update rules for ``v1 namespaces``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_namespace(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": validation.PHASE_ACTIVE}
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        finalizers = spec.get("finalizers")
        finalizers = list(finalizers) if isinstance(finalizers, list) else []
        if validation.FINALIZER_KUBERNETES not in finalizers:
            finalizers.append(validation.FINALIZER_KUBERNETES)
        spec["finalizers"] = finalizers
        set_name_label(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        old_finalizers = (old.get("spec") or {}).get("finalizers")
        if old_finalizers is None:
            spec.pop("finalizers", None)
        else:
            spec["finalizers"] = copy.deepcopy(old_finalizers)
        _keep_status(obj, old)
        set_name_label(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_namespace(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_namespace_update(obj, old)

    def canonicalize(self, obj: Object) -> None:
        set_name_label(obj)

    def deletion_pending(self, obj: Object) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def prepare_for_delete(self, obj: Object) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"


def _keep_status(obj: Object, old: Object) -> None:
    if "status" in old:
        obj["status"] = copy.deepcopy(old["status"])
    else:
        obj.pop("status", None)


class NamespaceStatusStrategy(strategies.StatusStrategy):
    """``namespaces/status``: only status changes; phase must match deletion state."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_namespace_status_update(obj, old)

    def canonicalize(self, obj: Object) -> None:
        set_name_label(obj)


class NamespaceFinalizeStrategy(NamespaceStrategy):
    """``namespaces/finalize``: only ``spec.finalizers`` (and metadata) change; status is kept."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        _keep_status(obj, old)
        set_name_label(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_namespace_finalize_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Status", description="The status of the namespace"),
    tables.AGE_COLUMN,
)


def namespace_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """NAME, STATUS (the phase), AGE."""
    phase = (obj.get("status") or {}).get("phase") or ""
    return [tables.name(obj), str(phase), tables.age(obj, now)]


STRATEGY = NamespaceStrategy()
FINALIZE_STRATEGY = NamespaceFinalizeStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Namespace",
    plural="namespaces",
    namespaced=False,
    short_names=("ns",),
    strategy=STRATEGY,
    status=NamespaceStatusStrategy(STRATEGY),
    extra_subresources=("finalize",),
    extra_strategies={"finalize": FINALIZE_STRATEGY},
    selectable_fields={"status.phase": resource.nested_str("status", "phase")},
    table=tables.Table(columns=COLUMNS, row=namespace_row),
)
