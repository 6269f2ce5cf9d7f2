"""Field selectors: parse, match, render and check against a kind's allow-list.

Owns the ``fieldSelector`` query syntax (upstream: apimachinery
``pkg/fields/selector.go``, and ``pkg/runtime/conversion.go`` for the default
allow-list). Accepted syntax, comma-separated terms that must all hold::

    field=value    field==value    field!=value

In values, ``\\``, ``,`` and ``=`` must be escaped with a backslash; a term is
split at the first ``!=``, ``==`` or ``=``, so field names cannot contain
them. A missing field reads as the empty string when matching.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

FieldOperator = Literal["=", "==", "!="]


class SelectorError(ValueError):
    """A field selector that cannot be parsed or is not supported; ``message`` is upstream's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``field op value`` term. ``operator`` is "=" or "!=" ("==" parses as "=")."""

    field: str
    operator: FieldOperator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return not equal if self.operator == "!=" else equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


class FieldSelector:
    """An AND of field requirements; with none it matches everything and is empty."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, name: str) -> str | None:
        """The value ``name`` must equal, if an ``=`` term pins it."""
        for r in self.requirements:
            if r.field == name and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)


EVERYTHING = FieldSelector()


def escape_value(value: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` so the value survives a round trip."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(value: str) -> str:
    """Undo ``escape_value``; unescaped ``,``/``=`` and stray ``\\`` are errors."""
    if not any(ch in value for ch in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Upstream prints the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    # Split on commas that are not escaped.
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, FieldOperator, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                operator: FieldOperator = "!=" if op == "!=" else "="
                return term[:i], operator, term[i + len(op) :]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a ``fieldSelector`` string; raise ``SelectorError`` with upstream's message.

    Terms come out sorted by their text, as upstream sorts them before parsing.
    """
    requirements: list[Requirement] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, operator, rhs = split
        value = unescape_value(rhs)
        # Upstream's Transform turns a term with no field and no value into
        # "everything", which then drops out of the AND.
        if lhs or value:
            requirements.append(Requirement(lhs, operator, value))
    return FieldSelector(requirements)


def default_field_label_error(label: str) -> str:
    """What kinds without their own field-label conversion say for other fields."""
    return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def check_supported(
    selector: FieldSelector,
    supported: Collection[str],
    *,
    registered: bool = True,
) -> None:
    """Refuse fields outside ``supported`` with the message kube-apiserver returns (400).

    ``registered`` kinds have their own conversion function upstream and say
    ``field label not supported: <name>``; others fall back to the metadata-only
    default and its longer message.
    """
    for r in selector.requirements:
        if r.field in supported:
            continue
        if registered:
            raise SelectorError(f"field label not supported: {r.field}")
        raise SelectorError(default_field_label_error(r.field))
