"""The Kubernetes protobuf wire format (``application/vnd.kubernetes.protobuf``).

Owns turning protobuf request bodies of built-in kinds into the JSON-shaped
dicts the rest of kajitori works on, and back again for responses. Since
client-go 1.33 typed clientsets (``kubectl create configmap``, ``create
token``, ``auth can-i``, ``drain``, ...) send protobuf and do not fall back to
JSON on 415, so decoding is required for the real kubectl to work.

Wire format (upstream ``apimachinery/pkg/runtime/serializer/protobuf``): the
magic ``k8s\\x00`` followed by a ``runtime.Unknown`` message whose ``typeMeta``
carries apiVersion and kind and whose ``raw`` is the object's own message.
Messages and field numbers come from upstream's ``generated.proto`` files,
compiled by ``scripts/gen-protobuf-schema`` into ``protobuf_schema.json.gz``
(docs/decisions/0006-protobuf.md). Each table row is
``[number, json name, type, flags]`` with flags ``r`` repeated, ``m`` map
(type is then ``[key, value]``), ``p`` Go pointer, ``o`` omitempty, ``z``
omitzero, ``i`` inlined embedded struct.

Decoding renders what upstream would render after decoding into its Go
struct and encoding that as JSON: Go's protobuf marshaller writes every
non-pointer scalar even when zero, and encoding/json then drops the zero ones
tagged omitempty, keeps pointers that were set, renders absent non-pointer
structs as their zero value (``"status": {}``, ``"lastTransitionTime":
null``) and nil slices without omitempty as ``null``. Types with their own
JSON form (Time, MicroTime, Quantity, IntOrString, RawExtension,
FieldsV1, and named slices such as ``ExtraValue``) have their own converters;
quantities come out canonical (``0.5`` -> ``500m``), as upstream's Unmarshal
parses them. ``api.normalize`` gives JSON bodies the same shape by walking
this table (``kind_message``, ``message``, ``Field``).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import gzip
import pathlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kajitori.machinery import quantity, times

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
TIME = _META + "Time"
MICRO_TIME = _META + "MicroTime"
FIELDS_V1 = _META + "FieldsV1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
QUANTITY_VALUE = "k8s.io.apimachinery.pkg.api.resource.QuantityValue"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
# Kinds every group version serves from meta/v1 (client-go encodes them with
# the group's apiVersion); used when the table has no row for that group.
_META_KINDS = frozenset(
    {"DeleteOptions", "Status", "WatchEvent", "ListOptions", "GetOptions", "CreateOptions",
     "PatchOptions", "UpdateOptions", "List", "Table", "PartialObjectMetadata",
     "PartialObjectMetadataList"}
)  # fmt: skip

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_SCALAR_WIRE = {
    "string": _LEN, "bytes": _LEN, "int32": _VARINT, "int64": _VARINT, "uint32": _VARINT,
    "uint64": _VARINT, "bool": _VARINT, "double": _FIXED64, "float": _FIXED32,
}  # fmt: skip
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# --- the field table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One row of the table: a Go struct field and how encoding/json treats it.

    Shared with ``api.normalize``, which walks JSON bodies by the same rows.
    """

    number: int
    json: str
    type: str  # scalar name or message name; for maps, the value type
    key_type: str  # maps only
    flags: str

    @property
    def is_scalar(self) -> bool:
        return self.type in _SCALAR_WIRE

    @property
    def repeated(self) -> bool:
        return "r" in self.flags

    @property
    def is_map(self) -> bool:
        return "m" in self.flags

    @property
    def pointer(self) -> bool:
        return "p" in self.flags

    @property
    def omitempty(self) -> bool:
        return "o" in self.flags

    @property
    def omitzero(self) -> bool:
        return "z" in self.flags

    @property
    def inline(self) -> bool:
        return "i" in self.flags

    def drops_scalar(self, value: Any) -> bool:
        """Whether encoding/json leaves out this scalar field holding ``value``.

        Only omitempty non-pointers drop, and only their zero value ("", 0,
        false, an empty []byte); a set pointer is written even when zero.
        """
        return "o" in self.flags and "p" not in self.flags and value in ("", 0, None)


@dataclass(frozen=True, slots=True)
class Message:
    """A Go struct's fields in declaration order (JSON renders in this order)."""

    name: str
    fields: tuple[Field, ...]
    by_number: dict[int, Field]
    wrapper: bool  # a named Go slice (``type ExtraValue []string``): JSON is the list


@dataclass(frozen=True, slots=True)
class _Table:
    messages: dict[str, Message]
    kinds: dict[str, str]


@functools.cache
def _table() -> _Table:
    path = pathlib.Path(__file__).with_name("protobuf_schema.json.gz")
    data = orjson.loads(gzip.decompress(path.read_bytes()))
    wrappers = frozenset(data["wrappers"])
    messages: dict[str, Message] = {}
    for name, rows in data["messages"].items():
        fields = tuple(_row_field(row) for row in rows)
        by_number = {f.number: f for f in fields}
        messages[name] = Message(name, fields, by_number, name in wrappers)
    return _Table(messages, data["kinds"])


def _row_field(row: list[Any]) -> Field:
    number, json_name, type_, flags = row
    if "m" in flags:
        return Field(number, json_name, type_[1], type_[0], flags)
    return Field(number, json_name, type_, "", flags)


def message_name(api_version: str, kind: str) -> str | None:
    """The protobuf message of a kind, e.g. ("apps/v1", "Deployment"), or None."""
    table = _table()
    name = table.kinds.get(f"{api_version}/{kind}")
    if name is None and kind in _META_KINDS and _META + kind in table.messages:
        name = _META + kind
    return name


def kind_message(api_version: str, kind: str) -> Message | None:
    """The message of a kind, or None when kajitori has no Go type for it (CRDs)."""
    name = message_name(api_version, kind)
    return None if name is None else _table().messages[name]


def message(name: str) -> Message:
    """A message by its full protobuf name, e.g. ``k8s.io.api.core.v1.PodSpec``."""
    return _table().messages[name]


def _message(api_version: str, kind: str) -> Message:
    name = message_name(api_version, kind)
    if name is None:
        raise ValueError(f'no kind "{kind}" is registered for version "{api_version}"')
    return _table().messages[name]


# --- public API ------------------------------------------------------------------------------


def is_protobuf(content_type: str) -> bool:
    """True for ``application/vnd.kubernetes.protobuf`` with any parameters."""
    return content_type.split(";", 1)[0].strip().lower() == CONTENT_TYPE


def decode(data: bytes, *, api_version: str = "", kind: str = "") -> dict[str, Any]:
    """The JSON-shaped object of a protobuf body (magic + ``runtime.Unknown``).

    ``api_version``/``kind`` fill in what the body's typeMeta leaves empty, as
    upstream's decoder does with the type the endpoint expects. Raises
    ValueError, with upstream's wording where it has one, on bad data.
    """
    if not data:
        raise ValueError("empty data")
    if not data.startswith(MAGIC):
        raise ValueError(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    if len(data) == len(MAGIC):
        raise ValueError("empty body")
    unknown = _parse(data[len(MAGIC) :], "Unknown")
    type_meta = _parse(_last_bytes(unknown, 1, "typeMeta"), "typeMeta")
    api_version = _text(_last_bytes(type_meta, 1, "apiVersion")) or api_version
    kind = _text(_last_bytes(type_meta, 2, "kind")) or kind
    if not kind:
        raise ValueError("Object 'Kind' is missing in protobuf body")
    if not api_version:
        raise ValueError("Object 'apiVersion' is missing in protobuf body")
    message = _message(api_version, kind)
    body = _render_message(message, _last_bytes(unknown, 2, "raw"), kind)
    if not isinstance(body, dict):
        raise ValueError(f"{kind} is not an object kind")
    return {"apiVersion": api_version, "kind": kind, **body}


def encode(obj: dict[str, Any]) -> bytes:
    """The protobuf body (magic + ``runtime.Unknown``) of a JSON-shaped object.

    Lists (``ConfigMapList``, ...) are ordinary kinds here: their items lose
    apiVersion/kind, as on upstream's wire. Raises ValueError when the kind is
    unknown or a value does not fit its field.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        raise ValueError("apiVersion and kind are required to encode as protobuf")
    raw = _encode_message(_message(api_version, kind), obj, kind)
    type_meta = _len_field(1, api_version.encode()) + _len_field(2, kind.encode())
    # Go writes contentEncoding and contentType even when empty; so do we.
    unknown = (
        _len_field(1, type_meta) + _len_field(2, raw) + _len_field(3, b"") + _len_field(4, b"")
    )
    return MAGIC + unknown


def encode_watch_event(event_type: str, obj: dict[str, Any]) -> bytes:
    """One frame of a protobuf watch stream: 4-byte big-endian length + WatchEvent.

    The stream carries bare ``WatchEvent`` messages (no magic); the object
    inside is a full protobuf body, magic included.
    """
    event = _len_field(1, event_type.encode()) + _len_field(2, _len_field(1, encode(obj)))
    return len(event).to_bytes(4, "big") + event


# --- reading the wire ------------------------------------------------------------------------

_Occurrences = dict[int, list[tuple[int, Any]]]


def _read_varint(data: bytes, pos: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError(f"{path}: unexpected end of data in varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError(f"{path}: varint overflows 64 bits")


def _parse(data: bytes, path: str) -> _Occurrences:
    """Every field occurrence of one message: {number: [(wire type, value), ...]}."""
    out: _Occurrences = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos, path)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError(f"{path}: illegal field number 0")
        value: Any
        if wire == _VARINT:
            value, pos = _read_varint(data, pos, path)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos, path)
            if pos + size > len(data):
                raise ValueError(f"{path}: field {number} runs past the end of data")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > len(data):
                raise ValueError(f"{path}: field {number} runs past the end of data")
            value, pos = data[pos : pos + width], pos + width
        else:
            raise ValueError(f"{path}: unsupported wire type {wire} for field {number}")
        out.setdefault(number, []).append((wire, value))
    return out


def _last_bytes(fields: _Occurrences, number: int, path: str) -> bytes:
    occurrences = fields.get(number)
    if not occurrences:
        return b""
    wire, value = occurrences[-1]
    if wire != _LEN:
        raise ValueError(f"{path}: wrong wire type {wire}")
    result: bytes = value
    return result


def _text(value: bytes, path: str = "") -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: invalid UTF-8 in string field") from None


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(type_: str, wire: int, value: Any, path: str) -> Any:
    if wire != _SCALAR_WIRE[type_]:
        raise ValueError(f"{path}: wrong wire type {wire} for a {type_} field")
    if type_ == "string":
        return _text(value, path)
    if type_ == "bytes":
        return base64.b64encode(value).decode()
    if type_ in ("int32", "int64"):
        return _signed(value, 32 if type_ == "int32" else 64)
    if type_ == "uint32":
        return value & 0xFFFFFFFF
    if type_ == "bool":
        return value != 0
    if type_ == "double":
        return struct.unpack("<d", value)[0]
    if type_ == "float":
        return struct.unpack("<f", value)[0]
    return value  # uint64


def _scalar_values(type_: str, occurrences: list[tuple[int, Any]], path: str) -> list[Any]:
    """A repeated scalar's values, accepting packed encoding for numbers."""
    values: list[Any] = []
    for wire, value in occurrences:
        if wire == _LEN and _SCALAR_WIRE[type_] == _VARINT:
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos, path)
                values.append(_scalar(type_, _VARINT, item, path))
        else:
            values.append(_scalar(type_, wire, value, path))
    return values


# --- decoding: protobuf message → JSON --------------------------------------------------------

# What encoding/json writes for a zero scalar (a nil []byte is null).
ZERO: dict[str, Any] = {"string": "", "int32": 0, "int64": 0, "uint32": 0, "uint64": 0, "bool": False,
        "double": 0.0, "float": 0.0, "bytes": None}  # fmt: skip


def _joined(occurrences: list[tuple[int, Any]], path: str) -> bytes:
    """A message field's bytes; repeated occurrences merge, as in proto2."""
    for wire, _ in occurrences:
        if wire != _LEN:
            raise ValueError(f"{path}: wrong wire type {wire} for a message field")
    return b"".join(value for _, value in occurrences)


def _render_message(message: Message, data: bytes, path: str) -> Any:
    special = _DECODERS.get(message.name)
    if special is not None:
        return special(_parse(data, path), path)
    fields = _parse(data, path)
    if message.wrapper:
        return _render_repeated(message.fields[0], fields.get(1, []), path)
    out: dict[str, Any] = {}
    for field in message.fields:
        if field.json != "-":
            _render_field(field, fields.get(field.number, []), out, f"{path}.{field.json}")
    return out


def _render_field(field: Field, occ: list[tuple[int, Any]], out: dict[str, Any], path: str) -> None:
    flags = field.flags
    if "i" in flags:
        out.update(_render_message(_table().messages[field.type], _joined(occ, path), path))
        return
    if "m" in flags or "r" in flags:
        if not occ:  # a nil slice or map
            if "o" not in flags:
                out[field.json] = None
            return
        render = _render_map if "m" in flags else _render_repeated
        out[field.json] = render(field, occ, path)
        return
    if not occ and "p" in flags:
        if "o" not in flags:
            out[field.json] = None
        return
    if field.is_scalar:
        value = _scalar(field.type, *occ[-1], path) if occ else ZERO[field.type]
        if field.drops_scalar(value):
            return
        out[field.json] = value
        return
    data = _joined(occ, path)
    if "z" in flags and _is_zero(field.type, data, path):
        return
    out[field.json] = _render_message(_table().messages[field.type], data, path)


def _render_repeated(field: Field, occ: list[tuple[int, Any]], path: str) -> list[Any]:
    if field.is_scalar:
        return _scalar_values(field.type, occ, path)
    message = _table().messages[field.type]
    return [
        _render_message(message, _joined([item], path), f"{path}[{i}]")
        for i, item in enumerate(occ)
    ]


def _render_map(field: Field, occ: list[tuple[int, Any]], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in occ:
        parts = _parse(_joined([entry], path), path)
        key = _scalar(field.key_type, *parts[1][-1], path) if 1 in parts else ZERO[field.key_type]
        value_path = f"{path}[{key}]"
        values = parts.get(2, [])
        if field.is_scalar:
            value = _scalar(field.type, *values[-1], value_path) if values else ZERO[field.type]
            # Go keeps a present-but-empty []byte as []byte{}, which JSON renders as "".
            out[key] = "" if value is None else value
        else:
            message = _table().messages[field.type]
            out[key] = _render_message(message, _joined(values, value_path), value_path)
    return out


def _is_zero(message_name: str, data: bytes, path: str) -> bool:
    """Go's omitzero test; only metav1.Time uses it (``IsZero``: never written)."""
    if message_name in (TIME, MICRO_TIME):
        return not data
    return not data or all(
        value in (0, b"") for occurrences in _parse(data, path).values() for _, value in occurrences
    )


def _int_field(fields: _Occurrences, number: int, path: str, *, bits: int = 64) -> int:
    occurrences = fields.get(number)
    if not occurrences:
        return 0
    wire, value = occurrences[-1]
    if wire != _VARINT:
        raise ValueError(f"{path}: wrong wire type {wire}")
    return _signed(value, bits)


def _decode_time(fields: _Occurrences, path: str) -> str | None:
    if not fields:
        return None  # the zero time, which Go renders as null
    return times.rfc3339(_int_field(fields, 1, path))


def _decode_micro_time(fields: _Occurrences, path: str) -> str | None:
    if not fields:
        return None
    seconds = _int_field(fields, 1, path)
    micros = _int_field(fields, 2, path, bits=32) // 1000
    return times.format_micro_time(
        _EPOCH + datetime.timedelta(seconds=seconds, microseconds=micros)
    )


def _decode_quantity(fields: _Occurrences, path: str) -> str:
    # Upstream's Unmarshal parses the text (untrimmed), so JSON shows its canonical form.
    text = _text(_last_bytes(fields, 1, path), path)
    return quantity.parse_quantity(text).canonical() if text else "0"


def _decode_int_or_string(fields: _Occurrences, path: str) -> int | str:
    if _int_field(fields, 1, path) == 1:
        return _text(_last_bytes(fields, 3, path), path)
    return _int_field(fields, 2, path, bits=32)


def _decode_raw_json(fields: _Occurrences, path: str) -> Any:
    raw = _last_bytes(fields, 1, path)
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: embedded object is not JSON: {exc}") from None


_DECODERS: dict[str, Callable[[_Occurrences, str], Any]] = {
    TIME: _decode_time,
    MICRO_TIME: _decode_micro_time,
    QUANTITY: _decode_quantity,
    QUANTITY_VALUE: _decode_quantity,
    INT_OR_STRING: _decode_int_or_string,
    RAW_EXTENSION: _decode_raw_json,
    FIELDS_V1: _decode_raw_json,
}


# --- encoding: JSON → protobuf message --------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers are ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _encode_scalar(number: int, type_: str, value: Any, path: str) -> bytes:
    wire = _SCALAR_WIRE[type_]
    if type_ == "string":
        if not isinstance(value, str):
            raise ValueError(f"{path}: expected a string")
        return _len_field(number, value.encode())
    if type_ == "bytes":
        return _len_field(number, _b64decode(value, path))
    if type_ == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{path}: expected a boolean")
        return _varint(number << 3 | wire) + _varint(int(value))
    if type_ in ("double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{path}: expected a number")
        packed = struct.pack("<d" if type_ == "double" else "<f", value)
        return _varint(number << 3 | wire) + packed
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{path}: expected an integer")
    return _varint(number << 3 | wire) + _varint(value)


def _b64decode(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{path}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"{path}: illegal base64 data") from None


def _encode_message(message: Message, value: Any, path: str) -> bytes:
    special = _ENCODERS.get(message.name)
    if special is not None:
        return special(value, path)
    if message.wrapper:
        return _encode_field(message.fields[0], value, path)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected an object")
    out = bytearray()
    for field in sorted(message.fields, key=lambda f: f.number):
        if "i" in field.flags:
            inner = _encode_message(_table().messages[field.type], value, path)
            out += _len_field(field.number, inner)
        elif field.json != "-" and value.get(field.json) is not None:
            out += _encode_field(field, value[field.json], f"{path}.{field.json}")
    return bytes(out)


def _encode_field(field: Field, value: Any, path: str) -> bytes:
    if "m" in field.flags:
        if not isinstance(value, dict):
            raise ValueError(f"{path}: expected an object")
        out = bytearray()
        for key in sorted(value):
            entry = _encode_scalar(1, field.key_type, key, path)
            entry += _encode_one(field, value[key], f"{path}[{key}]", number=2)
            out += _len_field(field.number, entry)
        return bytes(out)
    if "r" in field.flags:
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected an array")
        items = (_encode_one(field, item, f"{path}[{i}]") for i, item in enumerate(value))
        return b"".join(items)
    return _encode_one(field, value, path)


def _encode_one(field: Field, value: Any, path: str, *, number: int = 0) -> bytes:
    number = number or field.number
    if value is None:  # a null map value or list item: Go's zero value
        return b"" if field.is_scalar else _len_field(number, b"")
    if field.is_scalar:
        return _encode_scalar(number, field.type, value, path)
    return _len_field(number, _encode_message(_table().messages[field.type], value, path))


def _parse_time(value: Any, path: str) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError(f"{path}: expected an RFC 3339 time string")
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{path}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{path}: {value!r} has no time zone")
    return moment


def _encode_time(value: Any, path: str) -> bytes:
    delta = _parse_time(value, path) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return _varint(1 << 3) + _varint(seconds) + _varint(2 << 3) + _varint(0)


def _encode_micro_time(value: Any, path: str) -> bytes:
    delta = _parse_time(value, path) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return _varint(1 << 3) + _varint(seconds) + _varint(2 << 3) + _varint(delta.microseconds * 1000)


def _encode_quantity(value: Any, path: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{path}: expected a quantity string")
    return _len_field(1, str(value).encode())


def _encode_int_or_string(value: Any, path: str) -> bytes:
    if isinstance(value, str):
        return (
            _varint(1 << 3)
            + _varint(1)
            + _varint(2 << 3)
            + _varint(0)
            + _len_field(3, value.encode())
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return _varint(1 << 3) + _varint(0) + _varint(2 << 3) + _varint(value) + _len_field(3, b"")
    raise ValueError(f"{path}: expected an integer or a string")


def _encode_raw_json(value: Any, path: str) -> bytes:
    return _len_field(1, orjson.dumps(value))


_ENCODERS: dict[str, Callable[[Any, str], bytes]] = {
    TIME: _encode_time,
    MICRO_TIME: _encode_micro_time,
    QUANTITY: _encode_quantity,
    QUANTITY_VALUE: _encode_quantity,
    INT_OR_STRING: _encode_int_or_string,
    RAW_EXTENSION: _encode_raw_json,
    FIELDS_V1: _encode_raw_json,
}
