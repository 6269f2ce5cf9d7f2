"""Resource quantities: parsing, rounding, canonical text and arithmetic, as upstream."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kajitori.machinery import quantity
from kajitori.machinery.quantity import Format, Quantity, QuantityError, parse_quantity

BIN, DEC, EXP = Format.BINARY_SI, Format.DECIMAL_SI, Format.DECIMAL_EXPONENT


def dec(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(scale)


# Upstream's TestQuantityParse table: input -> (exact value, format).
PARSE_TABLE = [
    ("0", dec(0, 0), DEC),
    ("0n", dec(0, 0), DEC),
    ("0u", dec(0, 0), DEC),
    ("0m", dec(0, 0), DEC),
    ("0Ki", dec(0, 0), BIN),
    ("0k", dec(0, 0), DEC),
    ("0Mi", dec(0, 0), BIN),
    ("0M", dec(0, 0), DEC),
    ("0Gi", dec(0, 0), BIN),
    ("0Ti", dec(0, 0), BIN),
    ("1", dec(1, 0), DEC),
    ("1Ki", dec(1024, 0), BIN),
    ("8Ki", dec(8 * 1024, 0), BIN),
    ("7Mi", dec(7 * 1024**2, 0), BIN),
    ("6Gi", dec(6 * 1024**3, 0), BIN),
    ("5Ti", dec(5 * 1024**4, 0), BIN),
    ("4Pi", dec(4 * 1024**5, 0), BIN),
    ("3Ei", dec(3 * 1024**6, 0), BIN),
    ("10Ti", dec(10 * 1024**4, 0), BIN),
    ("100Ti", dec(100 * 1024**4, 0), BIN),
    ("5n", dec(5, -9), DEC),
    ("4u", dec(4, -6), DEC),
    ("3m", dec(3, -3), DEC),
    ("9", dec(9, 0), DEC),
    ("8k", dec(8, 3), DEC),
    ("50k", dec(5, 4), DEC),
    ("7M", dec(7, 6), DEC),
    ("6G", dec(6, 9), DEC),
    ("5T", dec(5, 12), DEC),
    ("40T", dec(4, 13), DEC),
    ("300T", dec(3, 14), DEC),
    ("2P", dec(2, 15), DEC),
    ("1E", dec(1, 18), DEC),
    ("1E-3", dec(1, -3), EXP),
    ("1e3", dec(1, 3), EXP),
    ("1E6", dec(1, 6), EXP),
    ("1e9", dec(1, 9), EXP),
    ("1E12", dec(1, 12), EXP),
    ("1e15", dec(1, 15), EXP),
    ("1E18", dec(1, 18), EXP),
    ("1e14", dec(1, 14), EXP),
    ("1e13", dec(1, 13), EXP),
    ("100.035k", dec(100035, 0), DEC),
    ("0.001", dec(1, -3), DEC),
    ("0.0005k", dec(5, -1), DEC),
    ("0.005", dec(5, -3), DEC),
    ("0.05", dec(5, -2), DEC),
    ("0.5", dec(5, -1), DEC),
    ("0.00050k", dec(5, -1), DEC),
    ("0.00500", dec(5, -3), DEC),
    ("0.05000", dec(5, -2), DEC),
    ("0.50000", dec(5, -1), DEC),
    ("0.5e0", dec(5, -1), EXP),
    ("0.5e-1", dec(5, -2), EXP),
    ("0.5e-2", dec(5, -3), EXP),
    ("10.035M", dec(10035, 3), DEC),
    ("1.2e3", dec(12, 2), EXP),
    ("1.3E+6", dec(13, 5), EXP),
    ("1.40e9", dec(14, 8), EXP),
    ("1.53E12", dec(153, 10), EXP),
    ("1.6e15", dec(16, 14), EXP),
    ("1.7E18", dec(17, 17), EXP),
    ("9.01", dec(901, -2), DEC),
    ("8.1k", dec(81, 2), DEC),
    ("7.123456M", dec(7123456, 0), DEC),
    ("6.987654321G", dec(6987654321, 0), DEC),
    ("5.444T", dec(5444, 9), DEC),
    ("40.1T", dec(401, 11), DEC),
    ("300.2T", dec(3002, 11), DEC),
    ("2.5P", dec(25, 14), DEC),
    ("1.01E", dec(101, 16), DEC),
    ("3.001n", dec(4, -9), DEC),
    ("1.1E-9", dec(2, -9), EXP),
    ("0.0000000001", dec(1, -9), DEC),
    ("0.0000000005", dec(1, -9), DEC),
    ("0.00000000050", dec(1, -9), DEC),
    ("0.5e-9", dec(1, -9), EXP),
    ("0.9n", dec(1, -9), DEC),
    ("0.00000012345", dec(124, -9), DEC),
    ("0.00000012354", dec(124, -9), DEC),
    ("9Ei", dec(2**63 - 1, 0), BIN),
    ("9223372036854775807Ki", dec(2**63 - 1, 0), BIN),
    ("12E", dec(12, 18), DEC),
    ("100.035Ki", dec(10243584, -2), BIN),
    ("0.5Mi", dec(512 * 1024, 0), BIN),
    ("0.05Gi", dec(536870912, -1), BIN),
    ("0.025Ti", dec(274877906944, -1), BIN),
    ("0.000000000001Ki", dec(2, -9), DEC),
    (".001", dec(1, -3), DEC),
    (".0001k", dec(100, -3), DEC),
    ("1.", dec(1, 0), DEC),
    ("1.G", dec(1, 9), DEC),
]


@pytest.mark.parametrize(("text", "value", "fmt"), PARSE_TABLE, ids=[t[0] for t in PARSE_TABLE])
def test_parse_gives_upstreams_exact_value_and_format(
    text: str, value: Decimal, fmt: Format
) -> None:
    """Upstream's TestQuantityParse: exact value (nano-rounded up, binary capped) and format."""
    q = parse_quantity(text)
    assert (q.number, q.format) == (value, fmt)


@pytest.mark.parametrize(("text", "value", "fmt"), PARSE_TABLE, ids=[t[0] for t in PARSE_TABLE])
def test_signs_negate_and_rounding_is_away_from_zero(
    text: str, value: Decimal, fmt: Format
) -> None:
    """A leading '-' negates the same magnitude; '+' changes nothing."""
    assert parse_quantity("-" + text).number == -value
    assert parse_quantity("-" + text).format == fmt
    assert parse_quantity("+" + text).number == value


@pytest.mark.parametrize(
    "text",
    ["1.1.M", "1+1.0M", "0.1am", "aoeu", " 1", "1 ", ""],
)
def test_malformed_quantities_report_the_regular_expression(text: str) -> None:
    """Shape errors carry upstream's ErrFormatWrong message."""
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert caught.value.message == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


@pytest.mark.parametrize("text", ["0.1mi", ".5i", "1i", "-3.01i", "-3.01e-", "1e", "1ee3"])
def test_unknown_suffixes_report_the_suffix_error(text: str) -> None:
    """Suffix errors carry upstream's ErrSuffix message."""
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert caught.value.message == "unable to parse quantity's suffix"


def test_quantity_errors_are_value_errors() -> None:
    """Callers may catch the parse failure as ValueError."""
    with pytest.raises(ValueError, match="quantities must match"):
        parse_quantity("x")


@pytest.mark.parametrize(
    ("number", "fmt", "expected", "alternate"),
    [
        (dec(1024**3, 0), BIN, "1Gi", "1024Mi"),
        (dec(300 * 1024**2, 0), BIN, "300Mi", "307200Ki"),
        (dec(6 * 1024, 0), BIN, "6Ki", ""),
        (dec(1001 * 1024**3, 0), BIN, "1001Gi", "1025024Mi"),
        (dec(1024**4, 0), BIN, "1Ti", "1024Gi"),
        (dec(5, 0), BIN, "5", "5000m"),
        (dec(500, -3), BIN, "500m", "0.5"),
        (dec(1, 9), DEC, "1G", "1000M"),
        (dec(1000, 6), DEC, "1G", "0.001T"),
        (dec(1000000, 3), DEC, "1G", ""),
        (dec(1, -3), DEC, "1m", "1000u"),
        (dec(80, -3), DEC, "80m", ""),
        (dec(1080, -3), DEC, "1080m", "1.08"),
        (dec(108, -2), DEC, "1080m", "1080000000n"),
        (dec(10800, -4), DEC, "1080m", ""),
        (dec(300, 6), DEC, "300M", ""),
        (dec(1, 12), DEC, "1T", ""),
        (dec(1234567, 6), DEC, "1234567M", ""),
        (dec(1234567, -3), BIN, "1234567m", ""),
        (dec(3, 3), DEC, "3k", ""),
        (dec(1025, 0), BIN, "1025", ""),
        (dec(0, 0), DEC, "0", ""),
        (dec(0, 0), BIN, "0", ""),
        (dec(1, 9), EXP, "1e9", ".001e12"),
        (dec(1, -3), EXP, "1e-3", "0.001e0"),
        (dec(1, -9), EXP, "1e-9", "1000e-12"),
        (dec(80, -3), EXP, "80e-3", ""),
        (dec(300, 6), EXP, "300e6", ""),
        (dec(1, 12), EXP, "1e12", ""),
        (dec(1, 3), EXP, "1e3", ""),
        (dec(3, 3), EXP, "3e3", ""),
        (dec(0, 0), EXP, "0", "00"),
        (dec(1, -9), DEC, "1n", ""),
        (dec(80, -9), DEC, "80n", ""),
        (dec(1080, -9), DEC, "1080n", ""),
        (dec(108, -8), DEC, "1080n", ""),
        (dec(10800, -10), DEC, "1080n", ""),
        (dec(1, -6), DEC, "1u", ""),
        (dec(80, -6), DEC, "80u", ""),
        (dec(1080, -6), DEC, "1080u", ""),
    ],
)
def test_canonical_strings_match_upstream(
    number: Decimal, fmt: Format, expected: str, alternate: str
) -> None:
    """Upstream's TestQuantityString: canonical form, negation, and alternate spellings."""
    assert Quantity(number, fmt).canonical() == expected
    assert parse_quantity(expected).canonical() == expected
    if number != 0:
        assert Quantity(-number, fmt).canonical() == "-" + expected
    if alternate:
        assert parse_quantity(alternate).canonical() == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Ki", "1Ki"),
        ("1Mi", "1Mi"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        # The brief's examples.
        ("1000m", "1"),
        ("1.5Gi", "1536Mi"),
        ("0.1", "100m"),
        ("1.3E+6", "1300e3"),
        ("1e100", "10e99"),
        ("1e-100", "1e-9"),
        ("0.5Mi", "512Ki"),
        ("100.035Ki", "102435840m"),
    ],
)
def test_parse_then_emit_canonicalizes(text: str, expected: str) -> None:
    """Upstream's TestQuantityParseEmit, both signs."""
    assert parse_quantity(text).canonical() == expected
    assert parse_quantity("-" + text).canonical() == "-" + expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("+1", id="plus"),
        pytest.param("01", id="leading-zero"),
        pytest.param("1E3", id="capital-exponent"),
        pytest.param("1.", id="trailing-dot"),
        pytest.param("1025Ki", id="odd-binary"),
    ],
)
def test_input_already_in_short_form_is_kept_verbatim(text: str) -> None:
    """Upstream keeps the typed text when its int64 fast path deems it canonical."""
    assert str(parse_quantity(text)) == text


def test_values_past_the_largest_suffix_lose_their_suffix_as_upstream() -> None:
    """Upstream quirk: 1000E has no decimal suffix and renders as its bare mantissa."""
    q = parse_quantity("1000E")
    assert q.number == dec(1, 21)
    assert q.canonical() == "1"


@pytest.mark.parametrize(
    ("text", "value", "milli"),
    [
        ("1", 1, 1000),
        ("1500m", 2, 1500),
        ("1.0001", 2, 1001),
        ("100m", 1, 100),
        ("1Ki", 1024, 1024000),
        ("5n", 1, 1),
        ("0", 0, 0),
        ("-1500m", -2, -1500),
    ],
)
def test_value_and_milli_value_round_away_from_zero(text: str, value: int, milli: int) -> None:
    """Value()/MilliValue() round up, as upstream's int64 path does."""
    q = parse_quantity(text)
    assert (q.value(), q.milli_value()) == (value, milli)


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1", "1000m", 0),
        ("1Ki", "1024", 0),
        ("1G", "1Gi", -1),
        ("100m", "0.1", 0),
        ("2", "1999m", 1),
        ("-1", "0", -1),
    ],
)
def test_comparison_is_by_value(left: str, right: str, expected: int) -> None:
    """Cmp/Equal compare exact values regardless of format."""
    a, b = parse_quantity(left), parse_quantity(right)
    assert a.cmp(b) == expected
    assert (a == b) is (expected == 0)
    assert (a < b) is (expected < 0)
    if expected == 0:
        assert hash(a) == hash(b)


@pytest.mark.parametrize(
    ("left", "right", "total", "difference"),
    [
        ("1", "500m", "1500m", "500m"),
        ("1Gi", "512Mi", "1536Mi", "512Mi"),
        ("0", "1Ki", "1Ki", "-1Ki"),
        ("10", "1Ki", "1034", "-1014"),
        ("100m", "100m", "200m", "0"),
    ],
)
def test_addition_and_subtraction_keep_the_left_format(
    left: str, right: str, total: str, difference: str
) -> None:
    """Add/Sub are exact; a zero left side adopts the right side's format (upstream)."""
    a, b = parse_quantity(left), parse_quantity(right)
    assert (a + b).canonical() == total
    assert (a - b).canonical() == difference


def test_multiplication_and_negation() -> None:
    """Mul and Neg are exact and keep the format."""
    q = parse_quantity("1.5Gi")
    assert q.mul(2).canonical() == "3Gi"
    assert (-q).canonical() == "-1536Mi"


def test_round_up_reports_whether_it_was_exact() -> None:
    """RoundUp(scale): rounds away from zero and reports exactness."""
    rounded, exact = parse_quantity("1001m").round_up(0)
    assert (rounded.canonical(), exact) == ("2", False)
    rounded, exact = parse_quantity("2").round_up(-3)
    assert (rounded.canonical(), exact) == ("2", True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(" 100m ", "100m", id="trimmed-string"),
        pytest.param(2, "2", id="int"),
        pytest.param(0.5, "500m", id="float"),
        pytest.param(1e-7, "100e-9", id="float-exponent"),
    ],
)
def test_json_values_decode_like_unmarshal_json(raw: str | float, expected: str) -> None:
    """UnmarshalJSON trims strings and accepts JSON numbers."""
    assert quantity.from_json(raw).canonical() == expected


def test_json_non_scalars_are_rejected() -> None:
    """Booleans and objects are not quantities."""
    with pytest.raises(QuantityError):
        quantity.from_json(True)
    with pytest.raises(QuantityError):
        quantity.from_json({"a": 1})


def test_from_milli_builds_thousandths() -> None:
    """NewMilliQuantity equivalent."""
    assert Quantity.from_milli(1500).canonical() == "1500m"
    assert Quantity.from_milli(2000).canonical() == "2"
