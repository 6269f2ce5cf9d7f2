"""Validation of VolumeAttributesClasses (upstream: ValidateVolumeAttributesClass).

Owns: a DNS-subdomain name, ``driverName`` checked as a StorageClass's
provisioner (required, a qualified name once lower-cased) and
``parameters`` checked as a StorageClass's but required to hold at least
one pair. On update driverName and parameters are "forbidden" to change,
and then the whole new object is validated again, as upstream orders it.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.storage_v1.validation import storageclasses
from kajitori.machinery import field, names

Object = dict[str, Any]


def validate_volume_attributes_class(obj: Object) -> field.ErrorList:
    """ValidateVolumeAttributesClass."""
    errs = common.validate_meta(obj, namespaced=False, name_validator=names.name_is_dns_subdomain)
    errs.extend(
        storageclasses.validate_provisioner(obj.get("driverName"), field.Path("driverName"))
    )
    parameters = obj.get("parameters")
    path = field.Path("parameters")
    errs.extend(storageclasses.validate_parameters(parameters, path))
    if not parameters:
        errs.append(field.required(path, "must contain at least one key/value pair"))
    return errs


def validate_volume_attributes_class_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateVolumeAttributesClassUpdate."""
    errs = common.validate_meta_update(new, old)
    if new.get("driverName") != old.get("driverName"):
        errs.append(
            field.forbidden(field.Path("driverName"), "updates to driverName are forbidden.")
        )
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(
            field.forbidden(field.Path("parameters"), "updates to parameters are forbidden.")
        )
    errs.extend(validate_volume_attributes_class(new))
    return errs
