"""ConfigMap validation: key syntax, no key in both maps, 1 MiB in total, immutability.

Mirrors upstream's ``ValidateConfigMap``/``ValidateConfigMapUpdate``.
``binaryData`` is ``[]byte`` upstream, so, as for Secret ``data``, a value that
is not base64 fails in the JSON decoder (a 400) before validation;
``decode_config_map_binary_data`` gives that decoder's message for the server
to wrap (``ConfigMap in version "v1" cannot be handled as a ConfigMap: ...``).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1.validation import secrets
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

_DATA = field.Path("data")
_BINARY_DATA = field.Path("binaryData")


def decode_config_map_binary_data(obj: Object) -> str | None:
    """The JSON decoder's error for ``binaryData`` (first bad value), or None."""
    return secrets.decode_bytes_map(obj, kind="ConfigMap", key="binaryData")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _utf8_len(text: str) -> int:
    # An ASCII text (CPython keeps the flag) is as long in UTF-8: no copy of a large value.
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def validate_config_map(obj: Object) -> field.ErrorList:
    """All problems with a ConfigMap, ObjectMeta included."""
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    data, binary = _dict(obj.get("data")), _dict(obj.get("binaryData"))
    total = 0
    for key, value in data.items():
        for detail in names.is_config_map_key(key):
            errs.append(field.invalid(_DATA.key(key), key, detail))
        if key in binary:
            errs.append(
                field.invalid(_DATA.key(key), key, "duplicate of key present in binaryData")
            )
        total += _utf8_len(value) if isinstance(value, str) else 0
    for key, value in binary.items():
        for detail in names.is_config_map_key(key):
            errs.append(field.invalid(_BINARY_DATA.key(key), key, detail))
        message = secrets.base64_error(value)
        if message:  # only when the server's decoder did not check first
            errs.append(field.invalid(_BINARY_DATA.key(key), key, message))
    total += sum(len(raw) for raw in secrets.decoded(binary).values())
    if total > secrets.MAX_SECRET_SIZE:
        # Upstream reports the whole object, with an empty field path.
        errs.append(field.too_long(field.Path(""), "", secrets.MAX_SECRET_SIZE))
    return errs


def validate_config_map_update(new: Object, old: Object) -> field.ErrorList:
    """``validate_config_map`` plus: an immutable ConfigMap keeps its data and stays immutable."""
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(field.forbidden(field.Path("immutable"), secrets.IMMUTABLE_WHEN_SET))
        if _dict(new.get("data")) != _dict(old.get("data")):
            errs.append(field.forbidden(_DATA, secrets.IMMUTABLE_WHEN_SET))
        if secrets.decoded(new.get("binaryData")) != secrets.decoded(old.get("binaryData")):
            errs.append(field.forbidden(_BINARY_DATA, secrets.IMMUTABLE_WHEN_SET))
    errs.extend(validate_config_map(new))
    return errs
