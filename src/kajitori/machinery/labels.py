"""Label selectors: parse, validate, match and render them as upstream does.

Owns the ``labelSelector`` query syntax and ``metav1.LabelSelector`` objects
(upstream: apimachinery ``pkg/labels/selector.go`` and
``pkg/apis/meta/v1/helpers.go``). The parser is a port of upstream's
lexer/parser, because its error strings reach clients verbatim in 400
responses (``unable to parse requirement: found '', expected: ',' or ')'``)
and its quirks decide what parses at all.

Accepted syntax, comma-separated requirements that must all hold::

    key            key exists              !key        key does not exist
    key=value      key==value              key!=value  (empty value allowed)
    key in (a,b)   key notin (a,b)         key>1       key<1 (integers)

A selector renders canonically with ``str()``: requirements sorted by key,
set values sorted, ``key in (a,b)``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kajitori.machinery import field, names


class SelectorError(ValueError):
    """A selector that cannot be parsed or built; ``message`` is upstream's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Operator(enum.StrEnum):
    """``selection.Operator``: the values are upstream's spellings."""

    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    IN = "in"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    EXISTS = "exists"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# Upstream's order, which its "supported values" and "expected:" messages show.
_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")
_VALID_OPERATORS = (*_BINARY_OPERATORS, "exists", "!")
_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``; None where it fails."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _quote(value: Any) -> str:
    return orjson.dumps(value).decode()


def _aggregate(errors: Sequence[str]) -> str:
    # utilerrors.Aggregate: one message alone, several deduplicated in brackets.
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``key <op> values`` term; build it with ``new_requirement``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        return self._matches_numeric(labels)

    def _matches_numeric(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels or len(self.values) != 1:
            return False
        have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if self.operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        text = ("!" if op is Operator.DOES_NOT_EXIST else "") + self.key
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            return text
        spelled = {
            Operator.EQUALS: "=",
            Operator.DOUBLE_EQUALS: "==",
            Operator.NOT_EQUALS: "!=",
            Operator.IN: " in ",
            Operator.NOT_IN: " notin ",
            Operator.GREATER_THAN: ">",
            Operator.LESS_THAN: "<",
        }[op]
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            values = f"({values})"
        return text + spelled + values


def _check_values(op: str, values: Sequence[str], *, shown: str) -> list[str]:
    if op in ("in", "notin"):
        if not values:
            return [
                f"values: Invalid value: {shown}: for 'in', 'notin' operators, "
                "values set can't be empty"
            ]
        return []
    if op in ("=", "==", "!="):
        if len(values) != 1:
            return [
                f"values: Invalid value: {shown}: exact-match compatibility requires one single value"
            ]
        return []
    if op in ("exists", "!"):
        if values:
            return [
                f"values: Invalid value: {shown}: values set must be empty for exists and "
                "does not exist"
            ]
        return []
    if op in ("gt", "lt"):
        return _check_numeric_values(values, shown=shown)
    supported = ", ".join(_quote(o) for o in _VALID_OPERATORS)
    return [f"operator: Unsupported value: {_quote(op)}: supported values: {supported}"]


def _check_numeric_values(values: Sequence[str], *, shown: str) -> list[str]:
    errs: list[str] = []
    if len(values) != 1:
        errs.append(
            f"values: Invalid value: {shown}: for 'Gt', 'Lt' operators, "
            "exactly one value is required"
        )
    for i, value in enumerate(values):
        if _parse_int64(value) is None:
            errs.append(
                f"values[{i}]: Invalid value: {_quote(value)}: for 'Gt', 'Lt' operators, "
                "the value must be an integer"
            )
    return errs


def _key_error(key: str, path: str) -> str | None:
    msgs = names.is_qualified_name(key)
    return f"{path}: Invalid value: {_quote(key)}: {'; '.join(msgs)}" if msgs else None


def new_requirement(key: str, operator: str, values: Iterable[str] | None = ()) -> Requirement:
    """Upstream's ``NewRequirement``: validate and build one requirement.

    Raises ``SelectorError`` whose message aggregates every problem found.
    ``values=None`` is Go's nil slice, which error messages render as null.
    """
    vals = list(values or ())
    shown = _quote(None if values is None else vals)
    errs: list[str] = []
    if (err := _key_error(key, "key")) is not None:
        errs.append(err)
    errs.extend(_check_values(operator, vals, shown=shown))
    for i, value in enumerate(vals):
        msgs = names.is_valid_label_value(value)
        if msgs:
            errs.append(f"values[{i}][{key}]: Invalid value: {_quote(value)}: {'; '.join(msgs)}")
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, Operator(operator), tuple(vals))


class Selector:
    """An AND of requirements, or the selector that matches nothing.

    ``Selector()`` with no requirements matches everything and is ``empty``.
    """

    __slots__ = ("_nothing", "requirements")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self._nothing = nothing

    @property
    def empty(self) -> bool:
        """True when nothing is required (so everything matches)."""
        return not self._nothing and not self.requirements

    @property
    def matches_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)

    def add(self, *requirements: Requirement) -> Selector:
        if self._nothing:
            return self
        return Selector((*self.requirements, *requirements))

    def requires_exact_match(self, label: str) -> str | None:
        """The single value ``label`` must have, if the selector pins it."""
        for r in self.requirements:
            if r.key == label:
                exact = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                if r.operator in exact and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return "" if self._nothing else ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "Selector(<nothing>)" if self._nothing else f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return (self._nothing, self.requirements) == (other._nothing, other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


# --- lexer ------------------------------------------------------------------------


class _Token(enum.IntEnum):
    ERROR = 0
    END = 1
    CLOSE_PAR = 2
    COMMA = 3
    DOES_NOT_EXIST = 4
    DOUBLE_EQUALS = 5
    EQUALS = 6
    GREATER_THAN = 7
    IDENTIFIER = 8
    IN = 9
    LESS_THAN = 10
    NOT_EQUALS = 11
    NOT_IN = 12
    OPEN_PAR = 13


_KEYWORDS = {
    ")": _Token.CLOSE_PAR,
    ",": _Token.COMMA,
    "!": _Token.DOES_NOT_EXIST,
    "==": _Token.DOUBLE_EQUALS,
    "=": _Token.EQUALS,
    ">": _Token.GREATER_THAN,
    "in": _Token.IN,
    "<": _Token.LESS_THAN,
    "!=": _Token.NOT_EQUALS,
    "notin": _Token.NOT_IN,
    "(": _Token.OPEN_PAR,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
# Upstream's reader returns byte 0 at end of input, so a NUL in the text also
# reads as "end"; the port keeps that.
_EOF = "\0"


class _Lexer:
    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0

    def _read(self) -> str:
        if self._pos < len(self._text):
            ch = self._text[self._pos]
            self._pos += 1
            return ch
        return _EOF

    def _unread(self) -> None:
        self._pos -= 1

    def lex(self) -> tuple[_Token, str]:
        ch = self._read()
        while ch in _WHITESPACE:
            ch = self._read()
        if ch == _EOF:
            return _Token.END, ""
        self._unread()
        return self._scan_special() if ch in _SPECIAL else self._scan_identifier()

    def _scan_identifier(self) -> tuple[_Token, str]:
        buffer: list[str] = []
        while True:
            ch = self._read()
            if ch == _EOF:
                break
            if ch in _SPECIAL or ch in _WHITESPACE:
                self._unread()
                break
            buffer.append(ch)
        text = "".join(buffer)
        return _KEYWORDS.get(text, _Token.IDENTIFIER), text

    def _scan_special(self) -> tuple[_Token, str]:
        # Longest run of special characters that is still a known operator.
        buffer = ""
        last: tuple[_Token, str] | None = None
        while True:
            ch = self._read()
            if ch == _EOF:
                break
            if ch not in _SPECIAL:
                self._unread()
                break
            buffer += ch
            if buffer in _KEYWORDS:
                last = (_KEYWORDS[buffer], buffer)
            elif last is not None:
                self._unread()
                break
        if last is None:
            return _Token.ERROR, f"error expected: keyword found '{buffer}'"
        return last


# --- parser -----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        lexer = _Lexer(text)
        self._items: list[tuple[_Token, str]] = []
        while True:
            item = lexer.lex()
            self._items.append(item)
            if item[0] is _Token.END:
                break
        self._position = 0

    def _lookahead(self, values: bool) -> tuple[_Token, str]:
        return self._as_context(self._items[self._position], values)

    def _consume(self, values: bool) -> tuple[_Token, str]:
        self._position += 1
        return self._as_context(self._items[self._position - 1], values)

    @staticmethod
    def _as_context(item: tuple[_Token, str], values: bool) -> tuple[_Token, str]:
        # Where values are expected, "in" and "notin" are ordinary words.
        tok, lit = item
        if values and tok in (_Token.IN, _Token.NOT_IN):
            return _Token.IDENTIFIER, lit
        return tok, lit

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._lookahead(values=True)
            if tok is _Token.END:
                return requirements
            if tok not in (_Token.IDENTIFIER, _Token.DOES_NOT_EXIST):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._parse_requirement())
            except SelectorError as err:
                raise SelectorError(f"unable to parse requirement: {err.message}") from None
            tok, lit = self._consume(values=True)
            if tok is _Token.END:
                return requirements
            if tok is not _Token.COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._lookahead(values=True)
            if tok not in (_Token.IDENTIFIER, _Token.DOES_NOT_EXIST):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def _parse_requirement(self) -> Requirement:
        key, operator = self._parse_key_and_infer_operator()
        if operator is not None:
            return new_requirement(key, operator)
        operator = self._parse_operator()
        if operator in ("in", "notin"):
            values = self._parse_values()
        else:
            values = self._parse_exact_value()
        return new_requirement(key, operator, sorted(values))

    def _parse_key_and_infer_operator(self) -> tuple[str, str | None]:
        operator: str | None = None
        tok, lit = self._consume(values=True)
        if tok is _Token.DOES_NOT_EXIST:
            operator = "!"
            tok, lit = self._consume(values=True)
        if tok is not _Token.IDENTIFIER:
            raise SelectorError(f"found '{lit}', expected: identifier")
        # Upstream validates with a nil field path, hence the literal "<nil>".
        if (err := _key_error(lit, "<nil>")) is not None:
            raise SelectorError(err)
        if self._lookahead(values=True)[0] in (_Token.END, _Token.COMMA):
            operator = operator or "exists"
        # "!key=value" stays a does-not-exist requirement; the "=" that follows
        # then fails as "expected: ',' or 'end of string'", as upstream.
        return lit, operator

    def _parse_operator(self) -> str:
        tok, lit = self._consume(values=False)
        operator = {
            _Token.IN: "in",
            _Token.EQUALS: "=",
            _Token.DOUBLE_EQUALS: "==",
            _Token.GREATER_THAN: "gt",
            _Token.LESS_THAN: "lt",
            _Token.NOT_IN: "notin",
            _Token.NOT_EQUALS: "!=",
        }.get(tok)
        if operator is None:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return operator

    def _parse_values(self) -> set[str]:
        tok, lit = self._consume(values=True)
        if tok is not _Token.OPEN_PAR:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self._lookahead(values=True)
        if tok in (_Token.IDENTIFIER, _Token.COMMA):
            values = self._parse_identifiers_list()
            if self._consume(values=True)[0] is not _Token.CLOSE_PAR:
                # Upstream reports the token seen before the list, not the bad one.
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok is _Token.CLOSE_PAR:
            self._consume(values=True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def _parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._consume(values=True)
            if tok is _Token.IDENTIFIER:
                values.add(lit)
                tok2, lit2 = self._lookahead(values=True)
                if tok2 is _Token.CLOSE_PAR:
                    return values
                if tok2 is not _Token.COMMA:
                    raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            elif tok is _Token.COMMA:
                # Empty entries: "(,a", "a,,b" and "a,)" all contribute "".
                if not values:
                    values.add("")
                tok2 = self._lookahead(values=True)[0]
                if tok2 is _Token.CLOSE_PAR:
                    values.add("")
                    return values
                if tok2 is _Token.COMMA:
                    values.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def _parse_exact_value(self) -> set[str]:
        if self._lookahead(values=True)[0] in (_Token.END, _Token.COMMA):
            return {""}
        tok, lit = self._consume(values=True)
        if tok is _Token.IDENTIFIER:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_selector(text: str) -> Selector:
    """Parse a ``labelSelector`` string; raise ``SelectorError`` with upstream's message."""
    return Selector(_Parser(text).parse())


# --- metav1.LabelSelector -------------------------------------------------------------

_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """Equality requirements for every label, without validation (``SelectorFromSet``)."""
    items = (labels or {}).items()
    return Selector(Requirement(k, Operator.EQUALS, (v,)) for k, v in items)


def selector_from_label_selector(selector: Mapping[str, Any] | None) -> Selector:
    """Upstream's ``LabelSelectorAsSelector``.

    None selects nothing; an empty selector selects everything. Invalid content
    raises ``SelectorError`` with upstream's message.
    """
    if selector is None:
        return NOTHING
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [new_requirement(k, "=", [v]) for k, v in match_labels.items()]
    for expression in expressions:
        operator = expression.get("operator") or ""
        if operator not in _EXPRESSION_OPERATORS:
            raise SelectorError(f"{_quote(operator)} is not a valid label selector operator")
        values = expression.get("values") or None
        requirements.append(
            new_requirement(expression.get("key") or "", _EXPRESSION_OPERATORS[operator], values)
        )
    return Selector(requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """Upstream's ``FormatLabelSelector``: the canonical string, ``<none>`` or ``<error>``."""
    try:
        text = str(selector_from_label_selector(selector))
    except SelectorError:
        return "<error>"
    return text or "<none>"


def validate_label_selector_requirement(
    requirement: Mapping[str, Any],
    path: field.Path,
    *,
    allow_invalid_label_value: bool = False,
    allow_unknown_operator: bool = False,
) -> field.ErrorList:
    """One ``matchExpressions`` entry (``ValidateLabelSelectorRequirement``)."""
    errs = field.ErrorList()
    operator = requirement.get("operator") or ""
    values = list(requirement.get("values") or [])
    if operator in ("In", "NotIn"):
        if not values:
            errs.append(
                field.required(
                    path.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                field.forbidden(
                    path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif not allow_unknown_operator:
        errs.append(
            field.invalid(path.child("operator"), operator, "not a valid selector operator")
        )
    key = requirement.get("key") or ""
    errs.extend(field.invalid(path.child("key"), key, msg) for msg in names.is_qualified_name(key))
    if not allow_invalid_label_value:
        for i, value in enumerate(values):
            errs.extend(
                field.invalid(path.child("values").index(i), value, msg)
                for msg in names.is_valid_label_value(value)
            )
    return errs


def validate_label_selector(
    selector: Mapping[str, Any] | None,
    path: field.Path,
    *,
    allow_invalid_label_value: bool = False,
    allow_unknown_operator: bool = False,
) -> field.ErrorList:
    """A ``metav1.LabelSelector`` in a spec (``ValidateLabelSelector``); None is valid."""
    errs = field.ErrorList()
    if selector is None:
        return errs
    match_labels = selector.get("matchLabels") or {}
    label_path = path.child("matchLabels")
    for key, value in match_labels.items():
        errs.extend(field.invalid(label_path, key, m) for m in names.is_qualified_name(key))
        errs.extend(field.invalid(label_path, value, m) for m in names.is_valid_label_value(value))
    for i, expression in enumerate(selector.get("matchExpressions") or []):
        errs.extend(
            validate_label_selector_requirement(
                expression,
                path.child("matchExpressions").index(i),
                allow_invalid_label_value=allow_invalid_label_value,
                allow_unknown_operator=allow_unknown_operator,
            )
        )
    return errs
