"""What the three patch engines share: the error type and Go-flavoured rendering.

Upstream's patch code is Go operating on ``map[string]interface{}``; several of
its error messages print values with ``%v`` and name Go types. Clients show
those strings (``kubectl patch`` prints them verbatim for 400 and 500
answers), so ``go_value`` and ``go_type`` reproduce that rendering for
decoded JSON values instead of Python's ``repr``.

Decoded JSON here means: dict, list, str, bool, int, float, None. Upstream
decodes integers as int64 and everything else numeric as float64 before
patching, so ``int`` and ``float`` are distinct types here too (``1`` and
``1.0`` are different values to every comparison in this package), and
``bool`` is never a number.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

from kajitori.machinery import errors

#: The message every 422 from a failed JSON patch or an unprocessable
#: strategic merge patch carries; upstream builds these with
#: NewGenericServerResponse, which drops the detailed error text.
UNPROCESSABLE_MESSAGE = "the server rejected our request due to an error in our request"


class PatchError(Exception):
    """A patch that cannot be applied; ``code`` is the HTTP status upstream answers with.

    ``message`` is upstream's error text (what its patch library returns).
    ``to_status_error`` renders the ``metav1.Status`` kube-apiserver sends for
    it; see the package docstring for the mapping.
    """

    def __init__(self, message: str, *, code: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message

    def to_status_error(self) -> errors.StatusError:
        """The error the PATCH handler answers with, as upstream renders it."""
        if self.code == 400:
            return errors.bad_request(self.message)
        if self.code == 413:
            return errors.request_entity_too_large(self.message)
        if self.code == 422:
            # Upstream keeps only the generic text; the detail is lost on the wire.
            return errors.StatusError(422, "Invalid", UNPROCESSABLE_MESSAGE, empty_details=True)
        # A plain Go error reaching the handler: 500 with reason Unknown ("").
        return errors.StatusError(500, "", self.message)


def deep_copy(value: Any) -> Any:
    """Copy decoded JSON (much faster than ``copy.deepcopy`` for this shape)."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


# Go type names of what a JSON decode gives, bool before int (a bool is an int
# to ``isinstance``); anything else decodes as Go's nil.
_GO_TYPES: dict[type, str] = {
    dict: "map[string]interface {}",
    list: "[]interface {}",
    bool: "bool",
    int: "int64",
    float: "float64",
    str: "string",
    type(None): "<nil>",
}


def go_type(value: Any) -> str:
    """The Go type name upstream's decoder would give this value."""
    known = _GO_TYPES.get(type(value))  # the exact types: nearly every call
    if known is not None:
        return known
    for kind, name in _GO_TYPES.items():
        if isinstance(value, kind):
            return name
    return "<nil>"


def same_value(a: Any, b: Any) -> bool:
    """Go's ``==`` on two decoded scalars: equal type and equal value."""
    return type(a) is type(b) and a == b


def hash_key(value: Any) -> Any:
    """A hashable stand-in for a decoded value that respects ``same_value``."""
    kind = type(value)
    if kind is str:  # merge keys are nearly always names
        return ("str", value)
    if isinstance(value, dict | list):
        return ("composite", go_value(value))
    return (kind.__name__, value)


def go_value(value: Any) -> str:
    """Render a decoded JSON value as Go's ``%v`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value))
        return f"map[{items}]"
    return str(value)


def _go_float(value: float) -> str:
    # %v of a float64 is %g with the shortest digits; fmt switches to the
    # exponent form when the decimal exponent is < -4 or >= 6 (hence 1e+06).
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exp = decimal.Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    point = len(digit_tuple) + int(exp)  # digits before the decimal point
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        body = f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits
        return f"{sign}{body}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"
