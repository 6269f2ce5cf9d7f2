"""LimitRange validation: limit types, resource names, and min <= default <= max orderings.

Mirrors upstream's ``ValidateLimitRange``. Quantities are compared by value
and shown in messages as the client wrote them (upstream prints its canonical
form, which is the same for the usual "500m"/"1Gi" spellings). Keys are
checked in sorted order so the error list is stable.
"""

from __future__ import annotations

import decimal
from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.api.core_v1.validation import resourcequotas as quotas
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

STANDARD_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_BOUNDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def validate_limit_range(obj: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    limits = (obj.get("spec") or {}).get("limits")
    seen: set[str] = set()
    path = field.Path("spec", "limits")
    for index, item in enumerate(limits if isinstance(limits, list) else []):
        item = item if isinstance(item, dict) else {}
        errs.extend(_validate_item(item, path.index(index), seen))
    return errs


def validate_limit_range_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    errs.extend(validate_limit_range(new))
    return errs


def _validate_type(limit_type: str, path: field.Path) -> field.ErrorList:
    errs = common.from_details(path, limit_type, names.is_qualified_name(limit_type))
    if not errs and "/" not in limit_type and limit_type not in STANDARD_LIMIT_TYPES:
        errs.append(
            field.invalid(path, limit_type, "must be a standard limit type or fully qualified")
        )
    return errs


def _bound(item: Object, key: str) -> Object:
    value = item.get(key)
    return value if isinstance(value, dict) else {}


def _validate_item(item: Object, path: field.Path, seen: set[str]) -> field.ErrorList:
    limit_type = str(item.get("type") or "")
    errs = _validate_type(limit_type, path.child("type"))
    if limit_type in seen:
        errs.append(field.duplicate(path.child("type"), limit_type))
    seen.add(limit_type)
    is_pod_level = limit_type in ("Pod", "Container")
    for key in _BOUNDS:
        if limit_type == "Pod" and key in ("default", "defaultRequest"):
            if _bound(item, key):
                errs.append(
                    field.forbidden(path.child(key), "may not be specified when `type` is 'Pod'")
                )
            continue
        for name in _bound(item, key):
            name_path = path.child(key).key(name)
            if is_pod_level:
                errs.extend(quotas.validate_container_resource_name(name, name_path))
            else:
                errs.extend(quotas.validate_resource_name(name, name_path))
    if limit_type == "PersistentVolumeClaim" and not (
        "storage" in _bound(item, "min") or "storage" in _bound(item, "max")
    ):
        detail = "either minimum or maximum storage value is required, but neither was provided"
        errs.append(field.required(path.child("limits"), detail))
    errs.extend(_validate_orderings(item, path, skip_defaults=limit_type == "Pod"))
    return errs


def _values(item: Object, key: str) -> dict[str, tuple[str, decimal.Decimal]]:
    result: dict[str, tuple[str, decimal.Decimal]] = {}
    for name, raw in _bound(item, key).items():
        amount = common.quantity_value(raw)
        if amount is not None:
            result[name] = (str(raw), amount)
    return result


def _validate_orderings(item: Object, path: field.Path, *, skip_defaults: bool) -> field.ErrorList:
    errs = field.ErrorList()
    bounds = {key: _values(item, key) for key in _BOUNDS}
    if skip_defaults:
        bounds["default"], bounds["defaultRequest"] = {}, {}
    for name in sorted(set().union(*bounds.values())):
        errs.extend(_validate_resource(name, {key: b.get(name) for key, b in bounds.items()}, path))
    return errs


Bound = tuple[str, decimal.Decimal] | None


def _validate_resource(name: str, b: dict[str, Bound], path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    low, high, default, request = b["min"], b["max"], b["default"], b["defaultRequest"]

    def check(where: str, shown: Bound, small: Bound, big: Bound, message: str) -> None:
        if small is not None and big is not None and small[1] > big[1]:
            assert shown is not None
            errs.append(
                field.invalid(
                    path.child(where).key(name), shown[0], message.format(small[0], big[0])
                )
            )

    check("min", low, low, high, "min value {} is greater than max value {}")
    check(
        "defaultRequest",
        request,
        low,
        request,
        "min value {} is greater than default request value {}",
    )
    check(
        "defaultRequest",
        request,
        request,
        high,
        "default request value {} is greater than max value {}",
    )
    check(
        "defaultRequest",
        request,
        request,
        default,
        "default request value {} is greater than default limit value {}",
    )
    check("default", low, low, default, "min value {} is greater than default value {}")
    check("default", high, default, high, "default value {} is greater than max value {}")
    errs.extend(_validate_ratio(name, b, path))
    if not quotas.is_overcommit_allowed(name) and default and request and default[1] != request[1]:
        message = (
            f"default value {default[0]} must equal to defaultRequest value {request[0]} in {name}"
        )
        errs.append(field.invalid(path.child("defaultRequest").key(name), request[0], message))
    return errs


def _validate_ratio(name: str, b: dict[str, Bound], path: field.Path) -> field.ErrorList:
    ratio, low, high = b["maxLimitRequestRatio"], b["min"], b["max"]
    if ratio is None:
        return field.ErrorList()
    ratio_path = path.child("maxLimitRequestRatio").key(name)
    errs = field.ErrorList()
    if ratio[1] < 1:
        errs.append(field.invalid(ratio_path, ratio[0], f"ratio {ratio[0]} is less than 1"))
    if low is not None and high is not None and low[1] > 0:
        limit = high[1] / low[1]
        if ratio[1] > limit:
            message = f"ratio {ratio[0]} is greater than max/min = {float(limit):f}"
            errs.append(field.invalid(ratio_path, ratio[0], message))
    return errs
