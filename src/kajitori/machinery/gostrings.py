"""Bad values rendered as Go's ``%#v`` prints them in upstream's field errors.

Upstream reports a struct or slice that fails validation (an immutable
spec, a CIDR list) with ``%#v`` of its internal Go type, e.g.
``[]string{"10.0.0.0/24"}`` or ``networking.ParentReference{Group:"", ...}``.
``field.FieldError`` prints anything it cannot encode as JSON with ``repr``,
so a ``GoValue`` carries that text. Pointers print as an address upstream;
there is none here, so a fixed one stands in (``POINTER``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

POINTER = "0xc000000000"


class GoValue:
    """A bad value whose message text is ``text`` (Go's ``%#v``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def quote(value: Any) -> str:
    """Go's ``%q`` of a string (JSON's quoting for the text kubectl users see)."""
    return orjson.dumps(str(value) if value is not None else "").decode()


def string_slice(values: Sequence[Any] | None, type_name: str = "string") -> str:
    """``[]T{"a", "b"}``, or ``[]T(nil)`` for an absent list."""
    if values is None:
        return f"[]{type_name}(nil)"
    return f"[]{type_name}{{" + ", ".join(quote(v) for v in values) + "}"


def string_map(values: dict[str, Any] | None) -> str:
    """``map[string]string{"a":"b"}`` (Go sorts map keys), or ``(nil)``."""
    if values is None:
        return "map[string]string(nil)"
    items = (f"{quote(k)}:{quote(values[k])}" for k in sorted(values))
    return "map[string]string{" + ", ".join(items) + "}"


def pointer(value: Any, type_name: str) -> str:
    """A pointer field: ``(*T)(nil)`` or ``(*T)(0xc...)``."""
    return f"(*{type_name})({'nil' if value is None else POINTER})"


def struct(type_name: str, fields: Iterable[tuple[str, str]]) -> GoValue:
    """``pkg.Type{Field:value, ...}`` from already rendered field texts."""
    return GoValue(type_name + "{" + ", ".join(f"{k}:{v}" for k, v in fields) + "}")
