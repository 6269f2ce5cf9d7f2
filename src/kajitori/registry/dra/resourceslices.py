"""ResourceSlices in the API server (upstream: pkg/registry/resource/resourceslice).

Owns: cluster scope; a generation that starts at 1 and counts spec changes;
device taints defaulted with the time they were added; the fields of
features off by default in 1.37 dropped (``gates``); validation
(api.resource_v1.slices); a warning for a driver name with upper-case
letters; the field selectors upstream registers (``spec.nodeName``,
``spec.driver``, beside ``metadata.name``); DELETE answering with the
object; the ``kubectl get resourceslices`` columns (NAME NODE DRIVER POOL AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.resource_v1 import defaults, slices
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.dra import gates
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ResourceSliceStrategy(strategies.Strategy):
    """Create/update rules for ``resource.k8s.io/v1 resourceslices``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_resource_slice(obj)

    def prepare_for_create(self, obj: Object) -> None:
        gates.drop_disabled_slice_fields(obj, None)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        gates.drop_disabled_slice_fields(obj, old)

    def validate(self, obj: Object) -> field.ErrorList:
        return slices.validate_resource_slice(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return slices.validate_resource_slice_update(obj, old)

    def warnings_on_create(self, obj: Object) -> list[str]:
        return slices.driver_warnings(obj)

    def warnings_on_update(self, obj: Object, old: Object) -> list[str]:
        return slices.driver_warnings(obj)


_SPEC = "io.k8s.api.resource.v1.ResourceSliceSpec"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Node", description=printing.doc(_SPEC, "nodeName")),
    tables.Column("Driver", description=printing.doc(_SPEC, "driver")),
    tables.Column("Pool", description=printing.doc("io.k8s.api.resource.v1.ResourcePool", "name")),
    tables.AGE_COLUMN,
)


def resource_slice_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    return [
        tables.name(obj),
        str(spec.get("nodeName") or ""),
        str(spec.get("driver") or ""),
        str((spec.get("pool") or {}).get("name") or ""),
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="resource.k8s.io",
    version="v1",
    kind="ResourceSlice",
    plural="resourceslices",
    namespaced=False,
    strategy=ResourceSliceStrategy(),
    tracks_generation=True,
    return_deleted_object=True,
    selectable_fields={
        "spec.nodeName": resource.nested_str("spec", "nodeName"),
        "spec.driver": resource.nested_str("spec", "driver"),
    },
    table=tables.Table(columns=COLUMNS, row=resource_slice_row),
)
