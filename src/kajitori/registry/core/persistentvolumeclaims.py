"""PersistentVolumeClaims in the API server: strategy, status subresource, table.

Mirrors pkg/registry/core/persistentvolumeclaim/strategy.go: a new claim's
status is ``{phase: Pending}``; the main endpoint never changes status and
``/status`` never changes spec. What may change in the spec is decided by
validation (api.core_v1.validation.persistentvolumeclaims).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import persistentvolumeclaims as validation
from kajitori.api.core_v1.validation import persistentvolumes as volumes
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class PersistentVolumeClaimStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``v1 persistentvolumeclaims``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_persistent_volume_claim(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_persistent_volume_claim(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_persistent_volume_claim_update(obj, old)


class PersistentVolumeClaimStatusStrategy(strategies.StatusStrategy):
    """``persistentvolumeclaims/status``: only status changes."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_persistent_volume_claim_status_update(obj, old)


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Status", description=_doc("PersistentVolumeClaimStatus", "phase")),
    tables.Column("Volume", description=_doc("PersistentVolumeClaimSpec", "volumeName")),
    tables.Column("Capacity", description=_doc("PersistentVolumeClaimStatus", "capacity")),
    tables.Column("Access Modes", description=_doc("PersistentVolumeClaimStatus", "accessModes")),
    tables.Column("StorageClass", description="StorageClass of the pvc"),
    tables.Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    tables.AGE_COLUMN,
    tables.Column(
        "VolumeMode", priority=1, description=_doc("PersistentVolumeClaimSpec", "volumeMode")
    ),
)


def persistent_volume_claim_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """Upstream's printPersistentVolumeClaim: capacity and modes only once bound to a volume."""
    spec, status = volumes.dict_at(obj, "spec"), volumes.dict_at(obj, "status")
    phase = status.get("phase") or ""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    capacity = modes = ""
    volume_name = str(spec.get("volumeName") or "")
    if volume_name:
        modes = volumes.access_modes_string(status.get("accessModes"))
        capacity = str(volumes.dict_at(status, "capacity").get("storage") or "0")
    return [
        tables.name(obj),
        str(phase),
        volume_name,
        capacity,
        modes,
        volumes.storage_class_of(obj),
        str(spec.get("volumeAttributesClassName") or "<unset>"),
        tables.age(obj, now),
        str(spec.get("volumeMode") or "<unset>"),
    ]


STRATEGY = PersistentVolumeClaimStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="PersistentVolumeClaim",
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    plural="persistentvolumeclaims",
    namespaced=True,
    short_names=("pvc",),
    strategy=STRATEGY,
    status=PersistentVolumeClaimStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=persistent_volume_claim_row),
)
