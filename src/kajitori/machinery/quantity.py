"""Resource quantities (``100m``, ``1.5Gi``, ``1e3``): exact parsing and canonical text.

Owns ``resource.Quantity`` semantics (upstream: apimachinery
``pkg/api/resource/quantity.go``, ``amount.go``, ``suffix.go``): resource
requests and limits, quotas and capacities are compared and summed through
this type, and the API serves the canonical string, so both the value and its
rendering must agree with kube-apiserver.

Accepted input: an optional sign, digits with an optional ``.``, then one
suffix, either

- binary SI: ``Ki Mi Gi Ti Pi Ei`` (powers of 1024),
- decimal SI: ``n u m`` (none) ``k M G T P E`` (powers of 1000),
- a decimal exponent: ``e3``, ``E-6``, ``e+9``.

Values are exact (``decimal.Decimal`` with unlimited precision), rounded up
(away from zero) to nano units, and binary-SI values are capped at 2**63-1, as
upstream. The format remembers which kind of suffix was given, and
``canonical()`` renders in that family: ``1000m`` -> ``1``, ``1.5Gi`` ->
``1536Mi``, ``0.1`` -> ``100m``. When the input is already written the way
upstream would keep it, the original text is returned unchanged, including
upstream's quirks (``+1`` and ``01`` stay as typed).
"""

from __future__ import annotations

import decimal
import enum
import functools
from dataclasses import dataclass

SPLIT_RE_STRING = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_WRONG_MESSAGE = f"quantities must match the regular expression '{SPLIT_RE_STRING}'"
NUMERIC_MESSAGE = "unable to parse numeric part of quantity"
SUFFIX_MESSAGE = "unable to parse quantity's suffix"

MAX_ALLOWED = 2**63 - 1
_NANO = -9
_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")

# Unlimited precision: every operation here is exact (upstream uses inf.Dec).
_CTX = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    rounding=decimal.ROUND_UP,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


class QuantityError(ValueError):
    """A quantity that cannot be parsed; ``message`` is upstream's error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Format(enum.StrEnum):
    """How a quantity is rendered; upstream's ``resource.Format`` values."""

    DECIMAL_EXPONENT = "DecimalExponent"
    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"


_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9}
_DECIMAL_SUFFIXES |= {"T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {e: s for s, e in _BINARY_SUFFIXES.items()}


@dataclass(frozen=True, slots=True)
class _Parts:
    positive: bool
    value: str  # the numeric text, sign included, as upstream slices it
    num: str  # integer digits without leading zeros ("0" when none)
    denom: str  # fraction digits
    suffix: str


def _scan(text: str, pos: int, allowed: frozenset[str]) -> int:
    while pos < len(text) and text[pos] in allowed:
        pos += 1
    return pos


def _split(text: str) -> _Parts:
    """Port of upstream's ``parseQuantityString``."""
    positive = True
    pos = 0
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    pos = _scan(text, pos, frozenset("0"))
    if pos == len(text):
        return _Parts(positive, "0", "0", "", "")
    end = _scan(text, pos, _DIGITS)
    num = text[pos:end] or "0"
    if end == len(text):
        return _Parts(positive, text, num, "", "")
    pos, denom = end, ""
    if text[pos] == ".":
        end = _scan(text, pos + 1, _DIGITS)
        denom = text[pos + 1 : end]
        pos = end
        if pos == len(text):
            return _Parts(positive, text, num, denom, "")
    value = text[:pos]
    end = _scan(text, pos, _SUFFIX_CHARS)
    if end < len(text) and text[end] in "+-":
        end += 1
    end = _scan(text, end, _DIGITS)
    if end != len(text):
        raise QuantityError(FORMAT_WRONG_MESSAGE)
    return _Parts(positive, value, num, denom, text[pos:])


def _int32(value: int) -> int:
    # Upstream narrows the parsed exponent to int32, wrapping on overflow.
    return (value + 2**31) % 2**32 - 2**31


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """``(base, exponent, format)`` for a suffix, as upstream's suffixer."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        # More than 19 digits cannot fit upstream's int64 anyway.
        if body and len(body) <= 19 and all(ch in _DIGITS for ch in body):
            parsed = int(digits)
            if -(2**63) <= parsed < 2**63:
                return 10, _int32(parsed), Format.DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_MESSAGE)


def _fast_path(parts: _Parts, exponent: int, fmt: Format) -> tuple[bool, bool]:
    """``(fast, keep)``: whether upstream's int64 fast path applies (the value is
    exact, no rounding or capping), and whether it keeps the input text as the
    canonical string."""
    shifted = parts.num + parts.denom
    if fmt is Format.BINARY_SI:
        precision = 15 - len(parts.num) - (exponent * 3 // 10) - 1
        if exponent < 0 or parts.denom or precision < 0:
            return False, False
        return True, int(shifted) & 0x07 != 0
    precision = 18 - len(shifted)
    scale = exponent - len(parts.denom)
    if precision < 0 or scale < _NANO:
        return False, False
    return True, scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _exponent(number: decimal.Decimal) -> int:
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int), "quantities are always finite"
    return exponent


def _exact_value(parts: _Parts, base: int, exponent: int, *, fast: bool) -> decimal.Decimal:
    # Only the slow path parses the numeric text itself, and fails on "." or "";
    # the fast path reads the digits, so "Ki" and "." are zero there.
    if not fast and not any(ch in _DIGITS for ch in parts.value):
        raise QuantityError(NUMERIC_MESSAGE)
    amount = decimal.Decimal(f"{parts.num}.{parts.denom or '0'}")
    if base == 10:
        return amount.scaleb(exponent, _CTX)
    return _CTX.multiply(amount, decimal.Decimal(2**exponent))


def _normalize(
    amount: decimal.Decimal, fmt: Format, *, exact: bool
) -> tuple[decimal.Decimal, Format]:
    # Upstream's slow path, on the magnitude: round up to nanos, cap binary SI,
    # and render sub-unit binary values as decimal.
    if not exact and amount != 0 and _exponent(amount) < _NANO:
        amount = amount.quantize(decimal.Decimal("1e-9"), rounding=decimal.ROUND_UP, context=_CTX)
    if fmt is Format.BINARY_SI and not exact:
        if amount > MAX_ALLOWED:
            amount = decimal.Decimal(MAX_ALLOWED)
        if 0 < amount < 1:
            fmt = Format.DECIMAL_SI
    return amount, fmt


def parse_quantity(text: str | int | float) -> Quantity:
    """Parse a quantity exactly as upstream's ``ParseQuantity`` (no whitespace allowed).

    Numbers are converted to their text first. Raises ``QuantityError`` with
    upstream's message.
    """
    if isinstance(text, bool):
        text = "true" if text else "false"
    elif isinstance(text, int | float):
        text = repr(text)
    if not text:
        raise QuantityError(FORMAT_WRONG_MESSAGE)
    if text == "0":
        return Quantity(decimal.Decimal(0), Format.DECIMAL_SI, text="0")
    parts = _split(text)
    base, exponent, fmt = _interpret(parts.suffix)
    fast, keep = _fast_path(parts, exponent, fmt)
    amount = _exact_value(parts, base, exponent, fast=fast)
    amount, fmt = _normalize(amount, fmt, exact=fast)
    if not parts.positive:
        amount = -amount
    return Quantity(amount, fmt, text=text if keep else None)


def from_json(value: object) -> Quantity:
    """Decode a quantity from its JSON form: a string (trimmed) or a number."""
    if isinstance(value, str):
        return parse_quantity(value.strip())
    if isinstance(value, int | float):
        return parse_quantity(value)
    raise QuantityError(FORMAT_WRONG_MESSAGE)


def _strip_factors(n: int, factor: int) -> tuple[int, int]:
    times = 0
    while n != 0 and n % factor == 0:
        n //= factor
        times += 1
    return n, times


@functools.total_ordering
class Quantity:
    """An exact quantity with the format it renders in. Immutable.

    Equality and ordering compare values only (``1Ki == 1024``), as upstream's
    ``Cmp``/``Equal``.
    """

    __slots__ = ("_text", "format", "number")

    def __init__(
        self,
        number: decimal.Decimal | int = 0,
        format: Format = Format.DECIMAL_SI,  # noqa: A002 - upstream's field name
        *,
        text: str | None = None,
    ) -> None:
        self.number = decimal.Decimal(number)
        self.format = format
        self._text = text

    @classmethod
    def from_milli(cls, milli: int, format: Format = Format.DECIMAL_SI) -> Quantity:  # noqa: A002
        return cls(decimal.Decimal(milli).scaleb(-3, _CTX), format)

    # --- rendering ------------------------------------------------------------

    def canonical(self) -> str:
        """Upstream's ``String()``: the kept input text or the canonical form."""
        if self._text is not None:
            return self._text
        number, suffix = self._canonical_parts()
        return number + suffix

    def _canonical_parts(self) -> tuple[str, str]:
        if self.number == 0:
            return "0", ""
        fmt = self.format
        if fmt is Format.BINARY_SI:
            rounded = self.number.to_integral_value(rounding=decimal.ROUND_UP, context=_CTX)
            if -1024 < self.number < 1024 or rounded != self.number:
                fmt = Format.DECIMAL_SI
            else:
                mantissa, times = _strip_factors(abs(int(rounded)), 1024)
                sign = "-" if rounded < 0 else ""
                # Past Ei there is no suffix; upstream prints the bare mantissa.
                return sign + str(mantissa), _BINARY_BY_EXPONENT.get(times * 10, "")
        return self._decimal_parts(fmt)

    def _decimal_parts(self, fmt: Format) -> tuple[str, str]:
        sign, digits, exponent = self.number.as_tuple()
        text = "".join(map(str, digits)).rstrip("0")
        exponent = int(exponent) + len(digits) - len(text)
        padding = exponent % 3
        text, exponent = text + "0" * padding, exponent - padding
        number = ("-" if sign else "") + text
        if fmt is Format.DECIMAL_EXPONENT:
            return number, f"e{exponent}" if exponent else ""
        # Past E (10**18) there is no suffix; upstream prints the bare digits.
        return number, _DECIMAL_BY_EXPONENT.get(exponent, "")

    def __str__(self) -> str:
        return self.canonical()

    def __repr__(self) -> str:
        return f"Quantity({self.canonical()!r}, {self.format.value})"

    # --- values ---------------------------------------------------------------

    def scaled_value(self, scale: int) -> int:
        """The value in units of 10**scale, rounded away from zero."""
        shifted = self.number.scaleb(-scale, _CTX)
        return int(shifted.to_integral_value(rounding=decimal.ROUND_UP, context=_CTX))

    def value(self) -> int:
        """Whole units, rounded up (``Value()``): ``1500m`` -> 2."""
        return self.scaled_value(0)

    def milli_value(self) -> int:
        """Thousandths, rounded up (``MilliValue()``): ``1.0001`` -> 1001."""
        return self.scaled_value(-3)

    def as_approximate_float(self) -> float:
        return float(self.number)

    def round_up(self, scale: int) -> tuple[Quantity, bool]:
        """Rounded up to a multiple of 10**scale, and whether that was exact."""
        step = decimal.Decimal(1).scaleb(scale, _CTX)
        if _exponent(self.number) >= scale:
            return self, True
        rounded = self.number.quantize(step, rounding=decimal.ROUND_UP, context=_CTX)
        return Quantity(rounded, self.format), rounded == self.number

    @property
    def is_zero(self) -> bool:
        return self.number == 0

    def sign(self) -> int:
        return (self.number > 0) - (self.number < 0)

    # --- arithmetic -------------------------------------------------------------

    def add(self, other: Quantity) -> Quantity:
        """Sum; a zero left side takes the right side's format, as upstream."""
        fmt = other.format if self.is_zero else self.format
        return Quantity(_CTX.add(self.number, other.number), fmt)

    def sub(self, other: Quantity) -> Quantity:
        fmt = other.format if self.is_zero else self.format
        return Quantity(_CTX.subtract(self.number, other.number), fmt)

    def mul(self, factor: int) -> Quantity:
        return Quantity(_CTX.multiply(self.number, decimal.Decimal(factor)), self.format)

    def neg(self) -> Quantity:
        return Quantity(-self.number, self.format)

    def __add__(self, other: Quantity) -> Quantity:
        return self.add(other)

    def __sub__(self, other: Quantity) -> Quantity:
        return self.sub(other)

    def __neg__(self) -> Quantity:
        return self.neg()

    def cmp(self, other: Quantity) -> int:
        return (self.number > other.number) - (self.number < other.number)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.number == other.number

    def __lt__(self, other: Quantity) -> bool:
        return self.number < other.number

    def __hash__(self) -> int:
        return hash(self.number)
