"""Custom resource values against a CRD's structural schema: prune, default, validate.

Owns the three things upstream's apiextensions-apiserver does to every custom
resource body (staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/schema):
``prune`` drops fields the schema does not declare (unless
``x-kubernetes-preserve-unknown-fields``) and reports their paths as
``unknown field "spec.foo"`` does; ``apply_defaults`` fills ``default:``
values of absent fields; ``validate`` reports every violation with the
messages of kube-openapi's validator as the apiserver renders them
(``spec.replicas: Invalid value: "string": spec.replicas in body must be of
type integer: "string"``). Schemas are plain JSONSchemaProps dicts.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import re
import uuid
from typing import Any

import orjson

from kajitori.machinery import field

Schema = dict[str, Any]

_ROOT_KEYS = ("apiVersion", "kind", "metadata")
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


# ----- pruning ----------------------------------------------------------------------------


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Drop undeclared fields of ``obj`` in place; return their paths (root keys kept)."""
    unknown: list[str] = []
    props = schema.get("properties") or {}
    for key in list(obj):
        if key in _ROOT_KEYS:
            continue
        if key in props:
            _prune(obj[key], props[key], key, unknown)
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            unknown.append(key)
            del obj[key]
    return unknown


def _prune(value: Any, schema: Schema, path: str, unknown: list[str]) -> None:
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", unknown)
        return
    if not isinstance(value, dict):
        return
    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        for key, item in value.items():
            _prune(item, additional, f"{path}.{key}", unknown)
        return
    if props is None or additional is True:
        return
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    for key in list(value):
        if key in props:
            _prune(value[key], props[key], f"{path}.{key}", unknown)
        elif not preserve and not (embedded and key in _ROOT_KEYS):
            unknown.append(f"{path}.{key}")
            del value[key]


# ----- defaulting -------------------------------------------------------------------------


def apply_defaults(value: Any, schema: Schema) -> None:
    """Set ``default:`` values for absent (or null, non-nullable) fields, in place."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, prop in props.items():
            missing = key not in value or (value[key] is None and not prop.get("nullable"))
            if missing and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                apply_defaults(value[key], prop)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for item in value.values():
                apply_defaults(item, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


# ----- validation -------------------------------------------------------------------------


def validate(obj: dict[str, Any], schema: Schema) -> field.ErrorList:
    """Every violation of ``schema`` in ``obj`` (metadata is ObjectMeta's business)."""
    errs = field.ErrorList()
    props = schema.get("properties") or {}
    for key in schema.get("required") or ():
        if key not in _ROOT_KEYS and obj.get(key) is None:
            errs.append(field.required(key))
    for key, value in obj.items():
        if key not in _ROOT_KEYS and key in props:
            _validate(value, props[key], key, errs)
    return errs


def _go_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_matches(value: Any, expected: str) -> bool:
    actual = _go_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()
    return actual == expected


def _type_error(path: str, value: Any, expected: str) -> field.FieldError:
    actual = _go_type(value)
    return field.type_invalid(
        path, actual, f'{path} in body must be of type {expected}: "{actual}"'
    )


def _validate(value: Any, schema: Schema, path: str, errs: field.ErrorList) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errs.append(_type_error(path, value, schema["type"]))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errs.append(_type_error(path, value, "integer-or-string"))
            return
    expected = schema.get("type")
    if expected and not _type_matches(value, expected):
        errs.append(_type_error(path, value, expected))
        return
    _validate_enum(value, schema, path, errs)
    if isinstance(value, str):
        _validate_string(value, schema, path, errs)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, errs)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errs)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, errs)


def _validate_enum(value: Any, schema: Schema, path: str, errs: field.ErrorList) -> None:
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        errs.append(
            field.not_supported(path, value, [v if isinstance(v, str) else str(v) for v in enum])
        )


def _validate_string(value: str, schema: Schema, path: str, errs: field.ErrorList) -> None:
    max_length = schema.get("maxLength")
    if max_length is not None and len(value) > max_length:
        errs.append(field.too_long(path, value, max_length))
    min_length = schema.get("minLength")
    if min_length is not None and len(value) < min_length:
        detail = f"{path} in body should be at least {min_length} chars long"
        errs.append(field.invalid(path, value, detail))
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        errs.append(field.invalid(path, value, f"{path} in body should match '{pattern}'"))
    fmt = schema.get("format", "")
    if fmt and not _format_ok(value, fmt):
        errs.append(
            field.invalid(path, value, f"{path} in body must be of type {fmt}: {_q(value)}")
        )


def _q(value: str) -> str:
    return orjson.dumps(value).decode()


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _format_ok(value: str, fmt: str) -> bool:
    """String formats kube-openapi checks (a subset; unknown formats pass, as upstream)."""
    try:
        if fmt == "date-time":
            return bool(_DATE_TIME.match(value)) and _parses_time(value)
        if fmt == "date":
            datetime.date.fromisoformat(value)
            return len(value) == 10
        if fmt == "byte":
            base64.b64decode(value, validate=True)
            return True
        if fmt == "uuid":
            uuid.UUID(value)
            return True
        if fmt == "email":
            return bool(_EMAIL.match(value))
    except (ValueError, binascii.Error):
        return False
    return True


def _parses_time(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _validate_number(value: float, schema: Schema, path: str, errs: field.ErrorList) -> None:
    fmt = schema.get("format", "")
    bounds = {"int32": _INT32, "int64": _INT64}.get(fmt)
    if bounds and not bounds[0] <= value <= bounds[1]:
        errs.append(field.invalid(path, value, f"{path} in body must be of type {fmt}: {value}"))
    minimum = schema.get("minimum")
    if minimum is not None:
        if schema.get("exclusiveMinimum") and value <= minimum:
            errs.append(
                field.invalid(path, value, f"{path} in body should be greater than {minimum}")
            )
        elif value < minimum:
            detail = f"{path} in body should be greater than or equal to {minimum}"
            errs.append(field.invalid(path, value, detail))
    maximum = schema.get("maximum")
    if maximum is not None:
        if schema.get("exclusiveMaximum") and value >= maximum:
            errs.append(field.invalid(path, value, f"{path} in body should be less than {maximum}"))
        elif value > maximum:
            detail = f"{path} in body should be less than or equal to {maximum}"
            errs.append(field.invalid(path, value, detail))
    multiple = schema.get("multipleOf")
    if multiple and value % multiple:
        errs.append(
            field.invalid(path, value, f"{path} in body should be a multiple of {multiple}")
        )


def _validate_array(value: list[Any], schema: Schema, path: str, errs: field.ErrorList) -> None:
    max_items = schema.get("maxItems")
    if max_items is not None and len(value) > max_items:
        errs.append(field.too_many(path, len(value), max_items))
    min_items = schema.get("minItems")
    if min_items is not None and len(value) < min_items:
        detail = f"{path} in body should have at least {min_items} items"
        errs.append(field.invalid(path, len(value), detail))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", errs)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" or schema.get("uniqueItems"):
        _check_set(value, path, errs)
    elif list_type == "map":
        _check_map_keys(value, schema.get("x-kubernetes-list-map-keys") or [], path, errs)


def _check_set(value: list[Any], path: str, errs: field.ErrorList) -> None:
    seen: list[Any] = []
    for i, item in enumerate(value):
        if item in seen:
            errs.append(field.duplicate(f"{path}[{i}]", item))
        else:
            seen.append(item)


def _check_map_keys(value: list[Any], keys: list[str], path: str, errs: field.ErrorList) -> None:
    seen: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            continue
        key = {k: item.get(k) for k in keys if k in item}
        if key in seen:
            errs.append(field.duplicate(f"{path}[{i}]", key))
        else:
            seen.append(key)


def _validate_object(
    value: dict[str, Any], schema: Schema, path: str, errs: field.ErrorList
) -> None:
    for key in schema.get("required") or ():
        if key not in value:
            errs.append(field.required(f"{path}.{key}"))
    max_props = schema.get("maxProperties")
    if max_props is not None and len(value) > max_props:
        errs.append(field.too_many(path, len(value), max_props))
    if schema.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                errs.append(field.required(f"{path}.{key}", "must not be empty"))
    props = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            _validate(item, props[key], f"{path}.{key}", errs)
        elif isinstance(additional, dict):
            _validate(item, additional, f"{path}[{key}]", errs)
