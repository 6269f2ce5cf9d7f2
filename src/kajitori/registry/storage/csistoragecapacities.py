"""CSIStorageCapacities in the API server (upstream: pkg/registry/storage/csistoragecapacity).

Owns: namespace scope; validation (on update the new object is checked in
full, then the immutable GetCapacity inputs); the ``kubectl get
csistoragecapacities`` columns (NAME STORAGECLASSNAME CAPACITY: upstream's
printer has no AGE here).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.storage_v1.validation import csistoragecapacities as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class CSIStorageCapacityStrategy(strategies.Strategy):
    """Create/update rules for ``storage.k8s.io/v1 csistoragecapacities``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_csi_storage_capacity(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_csi_storage_capacity(obj)
        errs.extend(validation.validate_csi_storage_capacity_update(obj, old))
        return errs

    def allow_unconditional_update(self) -> bool:
        return False


_CLASS = "io.k8s.api.storage.v1.CSIStorageCapacity"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("StorageClassName", description=printing.doc(_CLASS, "storageClassName")),
    tables.Column("Capacity", description=printing.doc(_CLASS, "capacity")),
)


def csi_storage_capacity_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    capacity = obj.get("capacity")
    return [
        tables.name(obj),
        str(obj.get("storageClassName") or ""),
        "<unset>" if capacity is None else str(capacity),
    ]


RESOURCE = resource.ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="CSIStorageCapacity",
    plural="csistoragecapacities",
    namespaced=True,
    strategy=CSIStorageCapacityStrategy(),
    table=tables.Table(columns=COLUMNS, row=csi_storage_capacity_row),
)
