"""VolumeAttributesClasses in the API server (upstream: pkg/registry/storage/volumeattributesclass).

Owns: cluster scope, short name ``vac`` (GA in 1.34); validation;
DELETE answering with the object, as StorageClasses; the ``kubectl get
vac`` columns (NAME DRIVERNAME AGE), where a class marked default by
upstream's annotation is named with " (default)".
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.storage_v1.validation import volumeattributesclasses as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

# storageutil.IsDefaultAnnotationForVolumeAttributesClass reads this one annotation.
IS_DEFAULT_CLASS_ANNOTATION = "volumeattributesclass.alpha.kubernetes.io/is-default-class"


class VolumeAttributesClassStrategy(strategies.Strategy):
    """Create/update rules for ``storage.k8s.io/v1 volumeattributesclasses``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_volume_attributes_class(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_volume_attributes_class_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "DriverName",
        description=printing.doc("io.k8s.api.storage.v1.VolumeAttributesClass", "driverName"),
    ),
    tables.AGE_COLUMN,
)


def _is_default(obj: Object) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(IS_DEFAULT_CLASS_ANNOTATION) == "true"


def volume_attributes_class_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    name = tables.name(obj) + (" (default)" if _is_default(obj) else "")
    return [name, str(obj.get("driverName") or ""), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="VolumeAttributesClass",
    plural="volumeattributesclasses",
    namespaced=False,
    short_names=("vac",),
    strategy=VolumeAttributesClassStrategy(),
    return_deleted_object=True,
    table=tables.Table(columns=COLUMNS, row=volume_attributes_class_row),
)
