"""Device taints, tolerations and DeviceTaintRules (upstream: pkg/apis/resource/validation).

Owns a taint's rules (a label-name key, a label value, an effect of
NoExecute, NoSchedule or None, checked on update only when it changed), a
toleration's (optional key; operator Equal with a label value or Exists with
none; an optional effect) and a DeviceTaintRule: a DNS-subdomain name, a
device selector whose driver, pool and device are checked as names, one
taint, and a status of at most 8 metav1 conditions.
"""

from __future__ import annotations

from typing import Any

from kajitori.api import resource_v1 as limits
from kajitori.api.resource_v1 import common
from kajitori.machinery import conditions, field, objectmeta

Object = dict[str, Any]

TAINT_EFFECTS = ("NoExecute", "NoSchedule", "None")  # sorted, as upstream lists them
TOLERATION_OPERATORS = ("Equal", "Exists")


def validate_device_taint(taint: Any, old: Any, path: field.Path) -> field.ErrorList:
    item = common.as_dict(taint)
    errs = common.validate_label_name(item.get("key"), path.child("key"))
    if common.text(item.get("value")):
        errs.extend(common.validate_label_value(item.get("value"), path.child("value")))
    effect = common.text(item.get("effect"))
    if old is None or common.as_dict(old).get("effect") != item.get("effect"):
        if not effect:
            errs.append(field.required(path.child("effect")))
        elif effect not in TAINT_EFFECTS:
            errs.append(field.not_supported(path.child("effect"), effect, TAINT_EFFECTS))
    return errs


def validate_device_toleration(toleration: Any, path: field.Path) -> field.ErrorList:
    item = common.as_dict(toleration)
    errs = field.ErrorList()
    if common.text(item.get("key")):
        errs.extend(common.validate_label_name(item.get("key"), path.child("key")))
    operator = common.text(item.get("operator"))
    value = common.text(item.get("value"))
    if operator == "Exists":
        if value:
            detail = "must be empty for operator `Exists`"
            errs.append(field.invalid(path.child("value"), value, detail))
    elif operator == "Equal":
        errs.extend(common.validate_label_value(value, path.child("value")))
    elif not operator:
        errs.append(field.required(path.child("operator")))
    else:
        errs.append(field.not_supported(path.child("operator"), operator, TOLERATION_OPERATORS))
    effect = common.text(item.get("effect"))
    if effect and effect not in TAINT_EFFECTS:
        errs.append(field.not_supported(path.child("effect"), effect, TAINT_EFFECTS))
    return errs


def validate_tolerations(tolerations: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, toleration in enumerate(common.as_list(tolerations)):
        errs.extend(validate_device_toleration(toleration, path.index(i)))
    return errs


def _validate_selector(selector: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(selector, dict):
        return errs
    if selector.get("driver") is not None:
        errs.extend(common.validate_driver_name(selector.get("driver"), path.child("driver")))
    if selector.get("pool") is not None:
        errs.extend(common.validate_pool_name(selector.get("pool"), path.child("pool")))
    if selector.get("device") is not None:
        errs.extend(common.validate_device_name(selector.get("device"), path.child("device")))
    return errs


def _validate_spec(spec: Object, old: Object | None, path: field.Path) -> field.ErrorList:
    errs = _validate_selector(spec.get("deviceSelector"), path.child("deviceSelector"))
    old_taint = None if old is None else common.as_dict(old.get("taint"))
    errs.extend(validate_device_taint(spec.get("taint"), old_taint, path.child("taint")))
    return errs


def validate_device_taint_rule(obj: Object) -> field.ErrorList:
    return common.validate_cluster_object(obj, None, _validate_spec)


def validate_device_taint_rule_update(obj: Object, old: Object) -> field.ErrorList:
    return common.validate_cluster_object(obj, old, _validate_spec)


def validate_device_taint_rule_status_update(obj: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        common.as_dict(obj.get("metadata")),
        common.as_dict(old.get("metadata")),
        path=field.Path("metadata"),
    )
    path = field.Path("status", "conditions")
    found = common.as_list(common.as_dict(obj.get("status")).get("conditions"))
    errs.extend(conditions.validate_conditions(found, path))
    if len(found) > limits.DEVICE_TAINT_RULE_STATUS_MAX_CONDITIONS:
        errs.append(
            field.too_many(path, len(found), limits.DEVICE_TAINT_RULE_STATUS_MAX_CONDITIONS)
        )
    return errs
