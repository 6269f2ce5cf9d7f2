"""CSIDrivers in the API server (upstream: pkg/registry/storage/csidriver).

Owns: cluster scope; defaulting (api.storage_v1.defaults); validation; the
generation, which upstream sets only when an update changes the spec (a new
CSIDriver has none); the ``kubectl get csidrivers`` columns (NAME
ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS
REQUIRESREPUBLISH MODES AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.storage_v1 import defaults
from kajitori.api.storage_v1.validation import csidrivers as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class CSIDriverStrategy(strategies.Strategy):
    """Create/update rules for ``storage.k8s.io/v1 csidrivers``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_csi_driver(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        # Upstream bumps generation here, from 0 for a driver never changed.
        if obj.get("spec") != old.get("spec"):
            meta = obj.setdefault("metadata", {})
            meta["generation"] = int((old.get("metadata") or {}).get("generation") or 0) + 1

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_csi_driver(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_csi_driver_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


_SPEC = "io.k8s.api.storage.v1.CSIDriverSpec"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("AttachRequired", "boolean", description=printing.doc(_SPEC, "attachRequired")),
    tables.Column("PodInfoOnMount", "boolean", description=printing.doc(_SPEC, "podInfoOnMount")),
    tables.Column("StorageCapacity", "boolean", description=printing.doc(_SPEC, "storageCapacity")),
    tables.Column("TokenRequests", description=printing.doc(_SPEC, "tokenRequests")),
    tables.Column(
        "RequiresRepublish", "boolean", description=printing.doc(_SPEC, "requiresRepublish")
    ),
    tables.Column("Modes", description=printing.doc(_SPEC, "volumeLifecycleModes")),
    tables.AGE_COLUMN,
)


def _flag(spec: Object, key: str, default: bool) -> bool:
    value = spec.get(key)
    return default if value is None else bool(value)


def csi_driver_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    audiences = [str(t.get("audience") or "") for t in spec.get("tokenRequests") or []]
    modes = ",".join(str(m) for m in spec.get("volumeLifecycleModes") or [])
    return [
        tables.name(obj),
        _flag(spec, "attachRequired", True),
        _flag(spec, "podInfoOnMount", False),
        _flag(spec, "storageCapacity", False),
        ",".join(audiences) if audiences else "<unset>",
        _flag(spec, "requiresRepublish", False),
        modes or "<none>",
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="CSIDriver",
    plural="csidrivers",
    namespaced=False,
    strategy=CSIDriverStrategy(),
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    table=tables.Table(columns=COLUMNS, row=csi_driver_row),
)
