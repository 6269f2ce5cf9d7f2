"""Field paths and field errors: the vocabulary of validation.

Validation functions return an ``ErrorList`` instead of raising, so that one
request reports every problem at once (upstream: apimachinery
``pkg/util/validation/field``). Each ``FieldError`` renders exactly as upstream
does, because clients show these strings to people and tests compare them:

    metadata.name: Invalid value: "Bad": a lowercase RFC 1123 subdomain must ...

``Path`` builds the dotted/indexed field names (``spec.containers[0].image``,
``data[key]``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson


class Path:
    """An immutable field path such as ``spec.template.spec.containers[2].name``."""

    __slots__ = ("_text",)

    def __init__(self, *names: str) -> None:
        self._text = ".".join(names)

    @classmethod
    def _raw(cls, text: str) -> Path:
        path = cls.__new__(cls)
        path._text = text
        return path

    def child(self, name: str, *more: str) -> Path:
        text = f"{self._text}.{name}" if self._text else name
        for extra in more:
            text = f"{text}.{extra}"
        return Path._raw(text)

    def index(self, i: int) -> Path:
        return Path._raw(f"{self._text}[{i}]")

    def key(self, k: str) -> Path:
        return Path._raw(f"{self._text}[{k}]")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Path({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Path) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


class ErrorType(enum.Enum):
    """Upstream's field.ErrorType: the value is the cause reason, the label the text."""

    NOT_FOUND = ("FieldValueNotFound", "Not found")
    REQUIRED = ("FieldValueRequired", "Required value")
    DUPLICATE = ("FieldValueDuplicate", "Duplicate value")
    INVALID = ("FieldValueInvalid", "Invalid value")
    NOT_SUPPORTED = ("FieldValueNotSupported", "Unsupported value")
    FORBIDDEN = ("FieldValueForbidden", "Forbidden")
    TOO_LONG = ("FieldValueTooLong", "Too long")
    TOO_MANY = ("FieldValueTooMany", "Too many")
    INTERNAL = ("InternalError", "Internal error")
    TYPE_INVALID = ("FieldValueTypeInvalid", "Invalid value")

    @property
    def reason(self) -> str:
        return self.value[0]

    @property
    def label(self) -> str:
        return self.value[1]


# Error types whose rendering omits the offending value, as upstream's ErrorBody.
_VALUELESS = {ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG, ErrorType.INTERNAL}

_OMIT = object()


def _format_value(value: Any) -> str:
    """Render a bad value the way Go's ``%#v``/``%q`` does in upstream messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field, rendered as upstream's ``field.Error``."""

    type: ErrorType
    field: str
    bad_value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        """The message without the field name (what a StatusCause carries)."""
        text = self.type.label
        if self.type not in _VALUELESS and self.bad_value is not _OMIT:
            text = f"{text}: {_format_value(self.bad_value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()


class ErrorList(list[FieldError]):
    """A list of field errors; empty means valid."""

    def extend_all(self, *lists: Iterable[FieldError]) -> ErrorList:
        for errors in lists:
            self.extend(errors)
        return self


def _path(p: Path | str) -> str:
    return str(p)


def required(p: Path | str, detail: str = "") -> FieldError:
    return FieldError(ErrorType.REQUIRED, _path(p), detail=detail)


def invalid(p: Path | str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.INVALID, _path(p), value, detail)


def forbidden(p: Path | str, detail: str = "") -> FieldError:
    return FieldError(ErrorType.FORBIDDEN, _path(p), detail=detail)


def duplicate(p: Path | str, value: Any) -> FieldError:
    return FieldError(ErrorType.DUPLICATE, _path(p), value)


def not_found(p: Path | str, value: Any) -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, _path(p), value)


def type_invalid(p: Path | str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.TYPE_INVALID, _path(p), value, detail)


def not_supported(p: Path | str, value: Any, valid_values: Iterable[str]) -> FieldError:
    quoted = ", ".join(orjson.dumps(v).decode() for v in valid_values)
    detail = f"supported values: {quoted}" if quoted else ""
    return FieldError(ErrorType.NOT_SUPPORTED, _path(p), value, detail)


def too_long(p: Path | str, value: Any, max_length: int) -> FieldError:
    detail = f"may not be more than {max_length} bytes" if max_length >= 0 else ""
    return FieldError(ErrorType.TOO_LONG, _path(p), value, detail)


def too_many(p: Path | str, actual: int, max_items: int) -> FieldError:
    return FieldError(ErrorType.TOO_MANY, _path(p), actual, f"must have at most {max_items} items")


def internal(p: Path | str, detail: str) -> FieldError:
    return FieldError(ErrorType.INTERNAL, _path(p), detail=detail)
