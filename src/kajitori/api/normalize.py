"""Giving JSON bodies of built-in kinds the shape upstream's Go types give them.

Owns ``go_shape``: upstream decodes every request body into its Go struct,
stores it as protobuf and answers with that struct encoded by encoding/json,
so what clients read back is shaped by the Go types, not by what they sent.
kajitori keeps objects as JSON dicts, so without this a ``kubectl apply``
(JSON) and a ``kubectl create`` (protobuf, see ``api.protobuf``) of the same
object would be stored differently. The rules, per field of the kind's Go
struct (read from the protobuf field table, ``api.protobuf``'s one loader):

- a missing or null non-pointer struct is its zero encoding (``"resources":
  {}``, ``"status": {}``, a zero ``Time`` is null, a zero ``Quantity`` "0",
  a zero ``IntOrString`` 0), unless tagged omitzero;
- a missing or null pointer, slice or map is left out when omitempty and
  null otherwise; an empty slice or map is the same as a nil one, because
  protobuf storage cannot tell them apart (``"rules": []`` reads back null);
- a non-pointer scalar is written unless omitempty and zero; null is zero;
- quantities are canonical (``0.5`` -> ``500m``, ``1`` -> ``"1"``) and an
  invalid one raises ``quantity.QuantityError`` with upstream's text; times
  are UTC RFC 3339 (whole seconds, or microseconds for MicroTime);
  ``[]byte`` values are re-encoded as padded base64 (bad base64 raises);
- IntOrString, RawExtension and FieldsV1 keep their JSON as sent.

Unknown fields, unknown kinds (custom resources) and values of the wrong JSON
type are left alone: pruning and validation own those. Defaulting is a
separate, later step (the store's ``set_defaults``); nothing here sets a
non-zero value. Applied to ``protobuf.decode``'s output it changes nothing.

Plans are compiled once per message (``_plan``) so the write path pays only
for walking the object.
"""

from __future__ import annotations

import base64
import datetime
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kajitori.api import protobuf
from kajitori.api.core_v1.validation import secrets
from kajitori.machinery import quantity, shapes, times

Object = dict[str, Any]
_Step = Callable[[Object], None]
_Shaper = Callable[[Any], Any]

_MISSING: Any = object()
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)
_GO_ZERO_TIME = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)


def go_shape(obj: Object) -> None:
    """Reshape a built-in object, in place, as upstream's decode → store → encode would.

    Objects of kinds without a Go type (custom resources) are left untouched.
    Raises ValueError (``quantity.QuantityError`` for quantities) carrying
    upstream's decoder message when a value cannot be decoded; the caller
    answers 400 as upstream does.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return
    plan = _kind_plan(api_version, kind)
    if plan is not None:
        plan.apply(obj)


@functools.lru_cache(maxsize=1024)
def _kind_plan(api_version: str, kind: str) -> _Plan | None:
    """The plan of a kind's message (None: no Go type), looked up once per kind."""
    message = protobuf.kind_message(api_version, kind)
    if message is None or message.wrapper:
        return None
    return _plan(message.name)


# --- per-message plans -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """A struct message's steps, inlined structs flattened.

    ``always`` runs on every object (fields Go writes even when absent);
    ``present`` only for keys the object has, since an absent omitempty
    field needs nothing: most of a PodSpec's ~40 fields are never sent.
    """

    always: tuple[_Step, ...]
    present: dict[str, _Step]

    def apply(self, obj: Object) -> None:
        for step in self.always:
            step(obj)
        present = self.present
        for key in [k for k in obj if k in present]:  # steps may pop keys
            present[key](obj)


@functools.cache
def _plan(name: str) -> _Plan:
    always: list[_Step] = []
    present: dict[str, _Step] = {}
    for field in _fields(name):
        step = _field_step(field)
        if _noop_when_absent(field):
            present[field.json] = step
        else:
            always.append(step)
    return _Plan(tuple(always), present)


def _fields(name: str) -> list[protobuf.Field]:
    fields: list[protobuf.Field] = []
    for field in protobuf.message(name).fields:
        if field.inline:
            fields.extend(_fields(field.type))
        elif field.json != "-":
            fields.append(field)
    return fields


def _noop_when_absent(field: protobuf.Field) -> bool:
    """Whether Go writes nothing for this field when the body leaves it out."""
    if not field.omitempty:
        return False
    return field.pointer or field.is_scalar or field.is_map or field.repeated


def _field_step(field: protobuf.Field) -> _Step:
    if field.is_map or field.repeated:
        return _collection_step(field)
    if field.is_scalar and not field.pointer:
        return _scalar_step(field)
    return _value_step(field)


def _absent(obj: Object, key: str, *, omitempty: bool) -> None:
    """A nil pointer, slice or map: left out when omitempty, else null."""
    if omitempty:
        obj.pop(key, None)
    else:
        obj[key] = None


def _scalar_step(field: protobuf.Field) -> _Step:
    key, zero = field.json, protobuf.ZERO[field.type]
    shape = _canonical_bytes if field.type == "bytes" else None
    drops = field.drops_scalar

    def step(obj: Object) -> None:
        value = obj.get(key)
        if value is None:
            value = zero
        elif shape is not None:
            value = shape(value)
        elif value:  # what most fields hold: written as sent, and kept where it is
            return
        if drops(value):
            obj.pop(key, None)
        else:
            obj[key] = value

    return step


def _value_step(field: protobuf.Field) -> _Step:
    """A pointer (scalar or struct) or a non-pointer struct field."""
    key, omitempty = field.json, field.omitempty
    shape: Callable[[Any], Any] | None = _canonical_bytes if field.type == "bytes" else None
    if not field.is_scalar:
        shape = _shaper(field.type)
    if field.pointer or field.is_scalar:

        def pointer_step(obj: Object) -> None:
            value = obj.get(key)
            if value is None:
                _absent(obj, key, omitempty=omitempty)
            elif shape is not None:
                obj[key] = shape(value)

        return pointer_step
    name, omitzero = field.type, field.omitzero

    def struct_step(obj: Object) -> None:
        value = obj.get(key)
        value = _zero(name) if value is None else (value if shape is None else shape(value))
        if omitzero and value == _zero_template(name):
            obj.pop(key, None)
        else:
            obj[key] = value

    return struct_step


def _collection_step(field: protobuf.Field) -> _Step:
    key, omitempty, is_map = field.json, field.omitempty, field.is_map
    item = _item_shaper(field)

    def step(obj: Object) -> None:
        value = obj.get(key)
        if not value and (value is None or isinstance(value, list | dict)):
            _absent(obj, key, omitempty=omitempty)
        elif is_map and isinstance(value, dict):
            for k, v in value.items():
                value[k] = item(v)
        elif not is_map and isinstance(value, list):
            value[:] = [item(v) for v in value]

    return step


def _item_shaper(field: protobuf.Field) -> _Shaper:
    """A slice item or map value: null is the element type's zero value."""
    if field.is_scalar:
        # A null []byte map value is stored as an empty one and reads back "".
        zero = "" if field.type == "bytes" else protobuf.ZERO[field.type]
        if field.type == "bytes":
            return lambda v: zero if v is None else _canonical_bytes(v)
        return lambda v: zero if v is None else v
    name, shape = field.type, _shaper(field.type)
    if shape is None:
        return lambda v: _zero(name) if v is None else v
    return lambda v: _zero(name) if v is None else shape(v)


# --- values of one message type ----------------------------------------------------------------


def _shaper(name: str) -> _Shaper | None:
    """How a present, non-null value of message ``name`` is reshaped (None: kept as sent)."""
    if name in _SPECIAL_SHAPERS:
        return _SPECIAL_SHAPERS[name]
    if name in _KEPT:
        return None
    message = protobuf.message(name)
    if message.wrapper:
        return _shape_wrapper
    if name in _REMEMBERED:
        memo = shapes.JsonMemo(_REMEMBERED_MAX, digest=True)
        return functools.partial(_shape_remembered, name, memo)
    return functools.partial(_shape_struct, name)


def _shape_struct(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        _plan(name).apply(value)
    return value


# Messages whose values repeat from write to write: every pod of a workload
# carries its template's containers and, until it is scheduled, its spec; a
# pod's spec comes back unchanged in each of its status writes; and the
# parts admission and the kubelet add are alike from pod to pod. Shaping is a
# pure function of the value (key order included), so the shaped JSON is
# remembered per value's JSON, and a repeat costs an encode and a decode of
# the value instead of a walk of it through the plans. A value that was
# already shaped (a spec sent back as the server stored it) is remembered as
# ``shapes.UNCHANGED``: a repeat costs the encode alone and keeps the value.
_REMEMBERED = frozenset(
    f"k8s.io.api.core.v1.{name}"
    for name in (
        "PodSpec",
        "Container",
        "ProjectedVolumeSource",  # the service-account token volume of every pod
        "Toleration",  # not-ready and unreachable, added to every pod
        "PodCondition",  # the kubelet's conditions, the same for pods started together
    )
)
_REMEMBERED_MAX = 1024  # values per message and generation (``shapes.JsonMemo``)


def _shape_remembered(name: str, memo: shapes.JsonMemo, value: Any) -> Any:
    """``_shape_struct`` through ``memo`` (a fresh object, or ``value`` if shaping keeps it)."""
    if not isinstance(value, dict):
        return value
    key = memo.key(value)
    if key is None:
        return _shape_struct(name, value)
    shaped = memo.get(key)
    if shaped is shapes.UNCHANGED:
        return value
    if shaped is not None:
        return orjson.loads(shaped)
    _plan(name).apply(value)  # raises for a value that cannot be decoded: nothing remembered
    text = orjson.dumps(value)
    memo.put(key, shapes.UNCHANGED if text == key else text)
    return value


def _shape_wrapper(value: Any) -> Any:
    # Named string slices (ExtraValue, Verbs): null items are "".
    if isinstance(value, list):
        return ["" if v is None else v for v in value]
    return value


def _zero(name: str) -> Any:
    """The zero encoding of message ``name``, fresh (callers may mutate it)."""
    return _copy(_zero_template(name))


@functools.cache
def _zero_template(name: str) -> Any:
    # Computed on first use, not at plan time: slices and maps may nest their
    # own message (JSONSchemaProps.properties), which would recurse forever.
    if name in _SPECIAL_ZEROS:
        return _SPECIAL_ZEROS[name]
    if protobuf.message(name).wrapper:
        return []
    template: Object = {}
    _plan(name).apply(template)
    return template


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --- types with their own JSON form ------------------------------------------------------------


def _canonical_quantity(value: Any) -> str:
    if not isinstance(value, str | int | float):
        return quantity.from_json(value).canonical()  # raises: not a quantity
    # Keyed by type too: True == 1, but only the number is a quantity.
    kind: type = type(value)
    return _canonical_quantity_text(kind, value)


@functools.lru_cache(maxsize=4096)
def _canonical_quantity_text(_: type, value: Any) -> str:
    # Few distinct quantities are ever written (100m, 128Mi, ...); parsing is
    # the costliest part of shaping a Pod, so remember the answers.
    return quantity.from_json(value).canonical()


def _canonical_bytes(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    raw, bad = secrets.go_base64_decode(value)
    if bad is not None:
        raise ValueError(f"illegal base64 data at input byte {bad}")
    return base64.b64encode(raw).decode("ascii")


def _parse_time(value: str) -> datetime.datetime:
    """Go's ``time.Parse(time.RFC3339, ...)``, as far as kajitori needs it."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": not RFC 3339')
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        offset = datetime.timedelta(0)
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros,
            tzinfo=datetime.timezone(offset),
        )  # fmt: skip
    except ValueError as exc:
        raise ValueError(f'parsing time "{value}": {exc}') from None
    return moment.astimezone(datetime.UTC)


def _shape_time(value: Any, *, micro: bool) -> Any:
    if not isinstance(value, str):
        return value
    if micro and _is_canonical_micro(value):
        return value
    return _shape_time_text(value, micro)


# A MicroTime as ``times.format_micro_time`` writes it: UTC, six fractional
# digits, ASCII ones (``\d`` would match other scripts' digits, which the full
# path rewrites).
_CANONICAL_MICRO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _is_canonical_micro(value: str) -> bool:
    """Whether ``value`` is a MicroTime text that shaping gives back as it is.

    Every Event's ``eventTime`` (and a Lease's ``renewTime``) is a text never
    seen before, so ``_shape_time_text``'s cache misses for it, and parsing it
    and formatting it again cost more than the rest of the Event's shaping.
    In canonical spelling, its second (``_shape_time_text`` of the whole
    second, cached: the same few seconds come again and again) tells whether
    it is a valid instant in its canonical text and not Go's zero time; the
    six digits after it are then written back as they are.
    """
    if len(value) != 27 or _CANONICAL_MICRO.fullmatch(value) is None:
        return False
    second = value[:19] + "Z"
    try:
        return _shape_time_text(second, False) == second
    except ValueError:  # not a valid instant: the full path raises its message
        return False


@functools.lru_cache(maxsize=4096)
def _shape_time_text(value: str, micro: bool) -> str | None:
    # An object carries several times and most are of the last few seconds
    # (creationTimestamp, conditions, managedFields): parse each text once.
    moment = _parse_time(value)
    if moment == _GO_ZERO_TIME:
        return None  # Go's zero time encodes as null
    return times.format_micro_time(moment) if micro else times.format_time(moment)


_SPECIAL_SHAPERS: dict[str, _Shaper] = {
    protobuf.TIME: functools.partial(_shape_time, micro=False),
    protobuf.MICRO_TIME: functools.partial(_shape_time, micro=True),
    protobuf.QUANTITY: _canonical_quantity,
    protobuf.QUANTITY_VALUE: _canonical_quantity,
}
# Types whose JSON upstream keeps as sent: int vs string, embedded raw JSON.
_KEPT = frozenset({protobuf.INT_OR_STRING, protobuf.RAW_EXTENSION, protobuf.FIELDS_V1})
_SPECIAL_ZEROS: dict[str, Any] = {
    protobuf.TIME: None,
    protobuf.MICRO_TIME: None,
    protobuf.QUANTITY: "0",
    protobuf.QUANTITY_VALUE: "0",
    protobuf.INT_OR_STRING: 0,
    protobuf.RAW_EXTENSION: None,
    protobuf.FIELDS_V1: None,
}
