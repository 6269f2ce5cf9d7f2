"""``/openapi/v2`` in upstream's protobuf encoding (gnostic's ``openapi.v2.Document``).

client-go's ``OpenAPISchema()`` asks for
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` only, and
kubectl falls back to it when a kind is missing from OpenAPI v3 (client-side
validation and the ``fieldValidation`` support check), as does ``kubectl
explain --output plaintext-openapiv2``. This module writes the Swagger 2.0
JSON document built by ``server.openapi.build_v2_document`` as that message:
the protobuf wire format by hand (field numbers from gnostic's
``OpenAPIv2.proto``), covering the parts of Swagger that the document uses
(schemas, paths with their operations, query parameters, responses and
``x-`` vendor extensions, whose values are YAML as gnostic keeps them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from kajitori.server import negotiation

# What clients ask for (client-go still sends the "@" form) and what upstream answers.
ACCEPTED = frozenset(
    (
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    )
)
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

Object = dict[str, Any]

# Schema fields by JSON name: (field number, wire kind).
_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_INTS = {
    "maxLength": 11,
    "minLength": 12,
    "maxItems": 14,
    "minItems": 15,
    "maxProperties": 17,
    "minProperties": 18,
}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_PATH_VERBS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative int64s are ten bytes, as protobuf writes them
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _message(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _string(number: int, value: str) -> bytes:
    return _message(number, value.encode()) if value else b""


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(int(value))


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", float(value))


def _any(value: Any) -> bytes:
    """gnostic's Any: the value as YAML (field 2)."""
    return _string(2, negotiation.dump_yaml(value))


def _named(number: int, name: str, value: bytes) -> bytes:
    return _message(number, _string(1, name) + _message(2, value))


def _extensions(number: int, node: Object) -> bytes:
    return b"".join(
        _named(number, key, _any(value)) for key, value in node.items() if key.startswith("x-")
    )


def schema(node: Object) -> bytes:
    """One ``openapi.v2.Schema``."""
    out = bytearray()
    for key, value in node.items():
        if key in _SCHEMA_STRINGS:
            out += _string(_SCHEMA_STRINGS[key], value)
        elif key in _SCHEMA_DOUBLES:
            out += _double(_SCHEMA_DOUBLES[key], value)
        elif key in _SCHEMA_INTS:
            out += _int(_SCHEMA_INTS[key], value)
        elif key in _SCHEMA_BOOLS:
            out += _bool(_SCHEMA_BOOLS[key], value)
        else:
            out += _schema_composite(key, value)
    return bytes(out)


def _schema_composite(key: str, value: Any) -> bytes:
    if key == "default":
        return _message(5, _any(value))
    if key == "required":
        return b"".join(_string(19, name) for name in value)
    if key == "enum":
        return b"".join(_message(20, _any(v)) for v in value)
    if key == "additionalProperties":
        item = _message(1, schema(value)) if isinstance(value, dict) else _bool(2, bool(value))
        return _message(21, item or _varint(2 << 3) + b"\x00")
    if key == "type":
        types = value if isinstance(value, list) else [value]
        return _message(22, b"".join(_string(1, t) for t in types))
    if key == "items":
        items = value if isinstance(value, list) else [value]
        return _message(23, b"".join(_message(1, schema(i)) for i in items))
    if key == "allOf":
        return b"".join(_message(24, schema(s)) for s in value)
    if key == "properties":
        named = b"".join(_named(1, name, schema(s)) for name, s in value.items())
        return _message(25, named)
    if key.startswith("x-"):
        return _named(31, key, _any(value))
    return b""


def _parameter(param: Object) -> bytes:
    """A query parameter: ParametersItem.parameter.non_body_parameter.query_parameter_sub_schema."""
    query = (
        _string(2, param.get("in", "query"))
        + _string(3, param.get("description", ""))
        + _string(4, param["name"])
        + _string(6, param.get("type", ""))
        + _bool(20, bool(param.get("uniqueItems")))
    )
    return _message(1, _message(2, _message(3, query)))


def _responses(responses: Object) -> bytes:
    out = bytearray()
    for code, response in responses.items():
        body = _string(1, response.get("description", ""))
        if "schema" in response:
            body += _message(2, _message(1, schema(response["schema"])))
        out += _named(1, code, _message(1, body))
    return bytes(out)


def _operation(op: Object) -> bytes:
    out = bytearray(_string(5, op.get("operationId", "")))
    out += b"".join(_string(6, m) for m in op.get("produces", ()))
    out += b"".join(_string(7, m) for m in op.get("consumes", ()))
    out += b"".join(_message(8, _parameter(p)) for p in op.get("parameters", ()))
    out += _message(9, _responses(op.get("responses", {})))
    out += _extensions(13, op)
    return bytes(out)


def _path_item(item: Object) -> bytes:
    return b"".join(
        _message(_PATH_VERBS[verb], _operation(op))
        for verb, op in item.items()
        if verb in _PATH_VERBS
    )


def _definitions(definitions: Iterable[tuple[str, Object]]) -> bytes:
    return b"".join(_named(1, name, schema(node)) for name, node in definitions)


def encode_document(document: Object) -> bytes:
    """A Swagger 2.0 document (as ``build_v2_document`` makes it) as ``openapi.v2.Document``."""
    info = document.get("info", {})
    paths = b"".join(_named(2, path, _path_item(item)) for path, item in document["paths"].items())
    return (
        _string(1, document.get("swagger", "2.0"))
        + _message(2, _string(1, info.get("title", "")) + _string(2, info.get("version", "")))
        + _message(8, paths)
        + _message(9, _definitions(document["definitions"].items()))
    )
