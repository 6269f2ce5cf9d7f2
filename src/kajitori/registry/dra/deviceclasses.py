"""DeviceClasses in the API server (upstream: pkg/registry/resource/deviceclass).

Owns: cluster scope; a generation that starts at 1 and counts spec changes;
validation (api.resource_v1.claims: selectors compiled as CEL, opaque
configuration, the extended resource name); DELETE answering with the
object, as upstream's storage; the ``kubectl get deviceclasses`` columns
(NAME AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.resource_v1 import claims as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class DeviceClassStrategy(strategies.Strategy):
    """Create/update rules for ``resource.k8s.io/v1 deviceclasses``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_device_class(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        # The update check covers the metadata too; selectors and configuration equal
        # to the stored ones are not compiled again.
        return validation.validate_device_class_update(obj, old)


def name_age_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """NAME AGE: upstream's printers for classes and claim templates."""
    return [tables.name(obj), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="resource.k8s.io",
    version="v1",
    kind="DeviceClass",
    plural="deviceclasses",
    namespaced=False,
    strategy=DeviceClassStrategy(),
    tracks_generation=True,
    return_deleted_object=True,
    table=tables.Table(columns=(tables.NAME_COLUMN, tables.AGE_COLUMN), row=name_age_row),
)
