"""CSINodes in the API server (upstream: pkg/registry/storage/csinode).

Owns: cluster scope (one per Node, named after it); validation; ``status``
(1.37's storage health reports, dropped while their alpha gate is off)
written only through ``csinodes/status``;
the ``kubectl get csinodes`` columns (NAME DRIVERS AGE). A kubelet's CSI plugin
manager writes these; nothing here creates them.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.storage_v1.validation import csinodes as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class CSINodeStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``storage.k8s.io/v1 csinodes``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_csi_node(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_csi_node_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


class CSINodeStatusStrategy(strategies.StatusStrategy):
    """``csinodes/status`` (new in 1.37: drivers' storage health); spec stays as stored.

    ``storageHealth`` is behind CSIVolumeHealth, an alpha gate that is off:
    upstream drops it unless the stored status already has some.
    """

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        super().prepare_for_update(obj, old)
        status = obj.get("status")
        if isinstance(status, dict) and not (old.get("status") or {}).get("storageHealth"):
            status.pop("storageHealth", None)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        # With storageHealth dropped, only the metadata rules are left to check.
        return common.validate_meta_update(obj, old)


STRATEGY = CSINodeStrategy()

COLUMNS = (
    tables.NAME_COLUMN,
    # Upstream's printer describes this column in its own words.
    tables.Column(
        "Drivers",
        "integer",
        description="Drivers indicates the number of CSI drivers registered on the node",
    ),
    tables.AGE_COLUMN,
)


def csi_node_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    drivers = (obj.get("spec") or {}).get("drivers") or []
    return [tables.name(obj), len(drivers), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="CSINode",
    plural="csinodes",
    namespaced=False,
    strategy=STRATEGY,
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    status=CSINodeStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=csi_node_row),
)
