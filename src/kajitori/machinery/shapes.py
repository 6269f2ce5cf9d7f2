"""Shapes of JSON objects, so that checks which depend only on shape run once per shape.

Owns ``signature`` and ``ShapeMemo``. Several steps of a write walk the
whole object against its kind's schema although their answer depends only
on the object's *shape* (which keys sit where, and the JSON type of each
scalar), not on its values: the Go type check of a body
(``api.typecheck``), finding unknown fields (``api.pruning``) and the
fields a create gives its manager (``machinery.fieldmanager``). Writes of
one kind mostly share a handful of shapes (a controller or a client writes
the same structure with other names and values), so the write path
remembers, per schema, which shapes a check has already passed and skips
the walk for them.

``signature`` is conservative: objects holding lists (whose ownership
depends on item values such as list-map keys) or integers outside int32
(whose Go type check depends on the value) get no signature, and every check
then runs in full as before. ``body_signature`` also describes lists (each
item's shape, in order): the type check and unknown-field pruning read a
list item by item through the one item schema, so for them a list's shape is
the shapes of its items, and pods and workloads (which all hold lists) share
shapes too. Key order is part of the shape, because the checks report the
*first* problem in key order.

``JsonMemo`` is the value-level companion: answers of a pure function by the
value's exact JSON text (Go shaping, pod defaulting, the pod validators'
"passed" verdicts), ``UNCHANGED`` standing for "gave its input back"
(decision 0057).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Hashable
from typing import Any

import orjson

_INT32 = 1 << 31


class _NoShape(Exception):
    pass


def signature(value: dict[str, Any]) -> Hashable | None:
    """A hashable shape of ``value`` (keys, nesting, scalar types), or None (see module)."""
    try:
        return _dict_shape(value)
    except _NoShape:
        return None


def body_signature(value: dict[str, Any]) -> Hashable | None:
    """``signature`` that also describes lists; for checks blind to item values (see module).

    The content of ``metadata.managedFields[].fieldsV1`` is left out: its keys
    name list items by value (``k:{"name":"kube-api-access-x7k2p"}``), so it
    would give every pod a shape of its own, and both checks that use this
    signature skip it (FieldsV1 has its own decoder in Go, and its schema is
    a free-form object with nothing to prune).
    """
    try:
        meta = value.get("metadata")
        if type(meta) is dict and type(meta.get("managedFields")) is list:
            return (_top_shape({**value, "metadata": _opaque_fields_v1(meta)}),)
        return _top_shape(value)
    except _NoShape:
        return None


def _top_shape(value: dict[str, Any]) -> tuple[Any, ...]:
    """``_body_shape`` of a whole body, its ``spec`` through ``_SPEC_SHAPES``."""
    out: list[Any] = []
    for key, item in value.items():
        out.append(key)
        if key == "spec" and type(item) is dict and item:
            out.append(_spec_shape(item))
        else:
            out.append(_value_shape(item))
    return tuple(out)


def _spec_shape(spec: dict[str, Any]) -> tuple[Any, ...]:
    key = JsonMemo.key(spec)
    if key is None:
        return _body_shape(spec)
    shape: tuple[Any, ...] | None = _SPEC_SHAPES.get(key)
    if shape is None:
        shape = _body_shape(spec)  # _NoShape: nothing remembered
        # Specs that differ only in values (a workload's pods) share one tuple.
        if len(_SPEC_SHAPE_TUPLES) >= _SPEC_SHAPE_TUPLES_MAX:
            _SPEC_SHAPE_TUPLES.clear()
        shape = _SPEC_SHAPE_TUPLES.setdefault(shape, shape)
        _SPEC_SHAPES.put(key, shape)
    return shape


class _Opaque:
    """Stands for a value whose content is not part of the shape (see ``body_signature``)."""

    __slots__ = ()


# Its own type, so no JSON value's code equals it; a signature holding it is
# wrapped once more (above) so that it never equals one without it.
_OPAQUE: Any = _Opaque()


def _opaque_fields_v1(meta: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {**entry, "fieldsV1": _OPAQUE} if type(entry) is dict and "fieldsV1" in entry else entry
        for entry in meta["managedFields"]
    ]
    return {**meta, "managedFields": entries}


def _dict_shape(value: dict[str, Any]) -> tuple[Any, ...]:
    # Flat pairs (key, code): a nested dict's code is its own tuple.
    out: list[Any] = []
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            code: Any = "s"
        elif kind is dict:
            code = _dict_shape(item) if item else "{}"
        elif kind is bool:
            code = "b"
        elif item is None:
            code = "n"
        elif kind is int:
            if not -_INT32 <= item < _INT32:
                raise _NoShape
            code = "i"
        elif kind is float:
            code = "f"
        else:  # lists, and anything that is not plain JSON
            raise _NoShape
        out.append(key)
        out.append(code)
    return tuple(out)


def _body_shape(value: dict[str, Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for key, item in value.items():
        out.append(key)
        out.append(_value_shape(item))
    return tuple(out)


# A list's code is a tuple starting with this int: a map's code is a tuple of
# (key, code) pairs whose first element is a string key, so the two never meet.
_LIST = 0


def _value_shape(item: Any) -> Any:
    kind = type(item)
    if kind is str:
        return "s"
    if kind is dict:
        return _body_shape(item) if item else "{}"
    if kind is list:
        return (_LIST, *map(_value_shape, item))
    if kind is bool:
        return "b"
    if item is None:
        return "n"
    if kind is int:
        if not -_INT32 <= item < _INT32:
            raise _NoShape
        return "i"
    if kind is float:
        return "f"
    if item is _OPAQUE:
        return item
    raise _NoShape  # anything that is not plain JSON


class _Unchanged:
    """The answer "the function gave its input back as it was" (see ``JsonMemo``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


# A remembered answer that costs no copy of the value: a caller that finds it
# keeps the value it holds (equal text, so the same answer).
UNCHANGED: Any = _Unchanged()


class JsonMemo:
    """Answers of a pure function of a JSON value, by the value's JSON text; bounded.

    The text includes key order, so equal texts are the same input. ``key``
    is None for a value that is not plain JSON (an integer beyond 64 bits,
    a key that is not a string): such a value is never remembered.

    ``digest``: entries are held under a 16-byte BLAKE2b digest of the text
    rather than the text, for memos of large values (a pod spec's text is
    ~3 KB) that should remember thousands; two texts sharing a digest is a
    2^-128 chance. Answers may be ``UNCHANGED``, which also costs no copy.

    Two generations: when ``limit`` entries are held, they become the old
    generation (the one before is dropped) and an answer found there moves
    back. The recently used values survive a turnover, where starting over
    forgot them all (a pod's spec comes back in its next status write).
    """

    def __init__(self, limit: int = 1024, *, digest: bool = False) -> None:
        self._limit = limit
        self._digest = digest
        self._seen: dict[bytes, Any] = {}
        self._old: dict[bytes, Any] = {}
        _JSON_MEMOS.add(self)

    @staticmethod
    def key(value: Any) -> bytes | None:
        try:
            return orjson.dumps(value)
        except TypeError:
            return None

    def _held(self, key: bytes) -> bytes:
        return hashlib.blake2b(key, digest_size=16).digest() if self._digest else key

    def get(self, key: bytes) -> Any:
        """The remembered answer, or None."""
        held = self._held(key)
        answer = self._seen.get(held)
        if answer is None and self._old:
            answer = self._old.pop(held, None)
            if answer is not None:
                self._put(held, answer)
        return answer

    def put(self, key: bytes, answer: Any) -> None:
        self._put(self._held(key), answer)

    def _put(self, held: bytes, answer: Any) -> None:
        if len(self._seen) >= self._limit:
            self._old = self._seen
            self._seen = {}
        self._seen[held] = answer

    def clear(self) -> None:
        self._seen.clear()
        self._old.clear()


_JSON_MEMOS: weakref.WeakSet[JsonMemo] = weakref.WeakSet()


def clear_json_memos() -> None:
    """Forget every ``JsonMemo``'s answers: the next calls take the full path (tests pin them)."""
    for memo in list(_JSON_MEMOS):
        memo.clear()


class ShapeMemo:
    """What a check answered for each (schema, shape) pair it has seen; bounded.

    Keys hold the schema's ``id`` and the entry keeps the schema itself, so a
    schema freed and another allocated at its address is never confused
    with it. When ``limit`` entries are held the memo starts over.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._seen: dict[tuple[int, Hashable], tuple[object, Any]] = {}

    def get(self, schema: object, shape: Hashable | None) -> Any:
        """The remembered answer, or None (also for an object without a shape)."""
        if shape is None:
            return None
        hit = self._seen.get((id(schema), shape))
        if hit is None or hit[0] is not schema:
            return None
        return hit[1]

    def put(self, schema: object, shape: Hashable | None, answer: Any) -> None:
        """Remember ``answer`` (not None) for this schema and shape."""
        if shape is None or answer is None:
            return
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[(id(schema), shape)] = (schema, answer)


# The shapes of recent specs. A spec is most of a pod's or a workload's body,
# and every pod of a ReplicaSet is created with its template's spec; a shape
# is a pure function of the JSON text (keys, their order, scalar types, int32
# range), and an immutable tuple, so it is shared. Held by digest, so that a
# pod's spec is still known when its status writes come back after thousands
# of other pods' writes (the tuples themselves are shared through
# ``_SPEC_SHAPE_TUPLES``).
_SPEC_SHAPES = JsonMemo(16384, digest=True)
_SPEC_SHAPE_TUPLES: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_SPEC_SHAPE_TUPLES_MAX = 1024
