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

``signature`` is conservative: objects holding lists (whose ownership and
unknown fields depend on item values such as list-map keys) or integers
outside int32 (whose Go type check depends on the value) get no signature,
and every check then runs in full as before. Key order is part of the
shape, because the checks report the *first* problem in key order.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

_INT32 = 1 << 31


class _NoShape(Exception):
    pass


def signature(value: dict[str, Any]) -> Hashable | None:
    """A hashable shape of ``value`` (keys, nesting, scalar types), or None (see module)."""
    try:
        return _dict_shape(value)
    except _NoShape:
        return None


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
