"""Validation of StorageClasses (upstream: ValidateStorageClass in pkg/apis/storage/validation).

Owns the provisioner (required, a qualified name once lower-cased),
parameter size limits, reclaim policy and binding mode enums, and what may
never change: parameters, provisioner and reclaimPolicy are "forbidden" to
update, volumeBindingMode is immutable. The update check also re-validates the
new object, as upstream's strategy does.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, names

Object = dict[str, Any]

RECLAIM_POLICIES = ("Delete", "Retain")
VOLUME_BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
MAX_PROVISIONER_PARAMETER_SIZE = 256 * (1 << 10)
MAX_PROVISIONER_PARAMETER_LEN = 512


def _validate_provisioner(provisioner: Any, path: field.Path) -> field.ErrorList:
    value = provisioner if isinstance(provisioner, str) else ""
    if not value:
        return field.ErrorList([field.required(path)])
    return field.ErrorList(
        field.invalid(path, value, msg) for msg in names.is_qualified_name(value.lower())
    )


def _validate_parameters(params: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(params, dict):
        return errs
    if len(params) > MAX_PROVISIONER_PARAMETER_LEN:
        errs.append(
            field.too_long(
                path, "Provisioner Parameters exceeded max allowed", MAX_PROVISIONER_PARAMETER_LEN
            )
        )
        return errs
    total = 0
    for key, value in params.items():
        if not key:
            errs.append(field.invalid(path, key, "field can not be empty."))
        total += len(key) + len(str(value))
    if total > MAX_PROVISIONER_PARAMETER_SIZE:
        errs.append(field.too_long(path, "", MAX_PROVISIONER_PARAMETER_SIZE))
    return errs


def _validate_enums(obj: Object) -> field.ErrorList:
    errs = field.ErrorList()
    policy = obj.get("reclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(field.not_supported(field.Path("reclaimPolicy"), policy, RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(field.required(field.Path("volumeBindingMode")))
    elif mode not in VOLUME_BINDING_MODES:
        errs.append(
            field.not_supported(field.Path("volumeBindingMode"), mode, VOLUME_BINDING_MODES)
        )
    return errs


def validate_storage_class(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=False, name_validator=common.name_is_dns_subdomain)
    errs.extend(_validate_provisioner(obj.get("provisioner"), field.Path("provisioner")))
    errs.extend(_validate_parameters(obj.get("parameters"), field.Path("parameters")))
    errs.extend(_validate_enums(obj))
    return errs


def validate_storage_class_update(new: Object, old: Object) -> field.ErrorList:
    errs = validate_storage_class(new)
    errs.extend(common.validate_meta_update(new, old))
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(
            field.forbidden(field.Path("parameters"), "updates to parameters are forbidden.")
        )
    for key in ("provisioner", "reclaimPolicy"):
        if new.get(key) != old.get(key):
            errs.append(field.forbidden(field.Path(key), f"updates to {key} are forbidden."))
    errs.extend(
        common.validate_immutable(
            new.get("volumeBindingMode"),
            old.get("volumeBindingMode"),
            field.Path("volumeBindingMode"),
        )
    )
    return errs


# VolumeAttributesClasses check driverName and parameters the same way (upstream
# reuses validateProvisioner and validateParameters).
validate_provisioner = _validate_provisioner
validate_parameters = _validate_parameters
