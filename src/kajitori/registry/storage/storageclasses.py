"""StorageClasses in the API server (upstream: pkg/registry/storage/storageclass).

Owns: cluster scope; the ``kubectl get sc`` columns (NAME PROVISIONER
RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE), where the default
class's name is followed by " (default)".
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import storage_v1
from kajitori.api.apps_v1 import printing
from kajitori.api.storage_v1 import defaults
from kajitori.api.storage_v1.validation import storageclasses as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class StorageClassStrategy(strategies.Strategy):
    """Create/update rules for ``storage.k8s.io/v1 storageclasses``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_storage_class(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_storage_class(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_storage_class_update(obj, old)


_CLASS = "io.k8s.api.storage.v1.StorageClass"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Provisioner", description=printing.doc(_CLASS, "provisioner")),
    tables.Column("ReclaimPolicy", description=printing.doc(_CLASS, "reclaimPolicy")),
    tables.Column("VolumeBindingMode", description=printing.doc(_CLASS, "volumeBindingMode")),
    tables.Column("AllowVolumeExpansion", description=printing.doc(_CLASS, "allowVolumeExpansion")),
    tables.AGE_COLUMN,
)


def storage_class_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    name = tables.name(obj)
    if storage_v1.is_default_class(obj):
        name += " (default)"
    return [
        name,
        str(obj.get("provisioner") or ""),
        obj.get("reclaimPolicy") or defaults.DEFAULT_RECLAIM_POLICY,
        obj.get("volumeBindingMode") or defaults.DEFAULT_VOLUME_BINDING_MODE,
        bool(obj.get("allowVolumeExpansion")),
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="StorageClass",
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    plural="storageclasses",
    namespaced=False,
    short_names=("sc",),
    strategy=StorageClassStrategy(),
    table=tables.Table(columns=COLUMNS, row=storage_class_row),
)
