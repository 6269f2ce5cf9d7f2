"""PersistentVolumes in the API server: strategy, status subresource, table.

Mirrors pkg/registry/core/persistentvolume/strategy.go: cluster-scoped; a new
volume's status is ``{phase: Pending, lastPhaseTransitionTime: now}``; the
main endpoint never changes status and ``/status`` never changes spec; a
status update that changes the phase stamps ``lastPhaseTransitionTime``
unless the writer set a new one itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import persistentvolumes as validation
from kajitori.machinery import field, times
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class PersistentVolumeStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``v1 persistentvolumes``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_persistent_volume(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": times.now_rfc3339()}

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_persistent_volume(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_persistent_volume_update(obj, old)


class PersistentVolumeStatusStrategy(strategies.StatusStrategy):
    """``persistentvolumes/status``: spec kept; phase changes get a transition time."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        super().prepare_for_update(obj, old)
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        old_status = old.get("status") or {}
        new_time = status.get("lastPhaseTransitionTime")
        old_time = old_status.get("lastPhaseTransitionTime")
        if status.get("phase") == old_status.get("phase"):
            if new_time is None and old_time is not None:
                status["lastPhaseTransitionTime"] = old_time
        elif new_time is None or new_time == old_time:
            status["lastPhaseTransitionTime"] = times.now_rfc3339()

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_persistent_volume_status_update(obj, old)


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Capacity", description=_doc("PersistentVolumeSpec", "capacity")),
    tables.Column("Access Modes", description=_doc("PersistentVolumeSpec", "accessModes")),
    tables.Column(
        "Reclaim Policy", description=_doc("PersistentVolumeSpec", "persistentVolumeReclaimPolicy")
    ),
    tables.Column("Status", description=_doc("PersistentVolumeStatus", "phase")),
    tables.Column("Claim", description=_doc("PersistentVolumeSpec", "claimRef")),
    tables.Column("StorageClass", description="StorageClass of the pv"),
    tables.Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
    tables.Column("Reason", description=_doc("PersistentVolumeStatus", "reason")),
    tables.AGE_COLUMN,
    tables.Column("VolumeMode", priority=1, description=_doc("PersistentVolumeSpec", "volumeMode")),
)


def persistent_volume_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """Upstream's printPersistentVolume (quantities as written, not re-canonicalised)."""
    spec, status = validation.dict_at(obj, "spec"), validation.dict_at(obj, "status")
    claim = validation.dict_at(spec, "claimRef")
    claim_text = (
        f"{claim.get('namespace', '')}/{claim.get('name', '')}" if spec.get("claimRef") else ""
    )
    phase = status.get("phase") or ""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return [
        tables.name(obj),
        str(validation.dict_at(spec, "capacity").get("storage") or "0"),
        validation.access_modes_string(spec.get("accessModes")),
        str(spec.get("persistentVolumeReclaimPolicy") or ""),
        str(phase),
        claim_text,
        validation.storage_class_of(obj),
        str(spec.get("volumeAttributesClassName") or "<unset>"),
        str(status.get("reason") or ""),
        tables.age(obj, now),
        str(spec.get("volumeMode") or "<unset>"),
    ]


STRATEGY = PersistentVolumeStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="PersistentVolume",
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    plural="persistentvolumes",
    namespaced=False,
    short_names=("pv",),
    strategy=STRATEGY,
    status=PersistentVolumeStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=persistent_volume_row),
)
