"""Field selector parsing, escaping, matching and allow-lists, against upstream."""

from __future__ import annotations

import pytest

from kajitori.machinery import fields


@pytest.mark.parametrize("text", ["x=a,y=b,z=c", "", "x!=a,y=b", "x=a||y\\=b", "x=a\\=\\=b"])
def test_good_field_selectors_round_trip(text: str) -> None:
    """Upstream's TestSelectorParse good strings re-render unchanged."""
    assert str(fields.parse_field_selector(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "x=a||y=b", "invalid field selector: unescaped character in value: 61", id="eq-in-value"
        ),
        pytest.param(
            "x==a==b", "invalid field selector: unescaped character in value: 61", id="double"
        ),
        pytest.param("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'", id="bare-term"),
        pytest.param(
            "x in (a)", "invalid selector: 'x in (a)'; can't understand 'x in (a)'", id="set-based"
        ),
        pytest.param("x", "invalid selector: 'x'; can't understand 'x'", id="exists"),
        pytest.param("k=\\a", "invalid field selector: invalid escape sequence: \\a", id="escape"),
        pytest.param("k=\\", "invalid field selector: invalid escape sequence: \\", id="orphan"),
    ],
)
def test_bad_field_selectors_fail_with_upstreams_message(text: str, message: str) -> None:
    """Upstream's bad strings fail, with the message a 400 carries."""
    with pytest.raises(fields.SelectorError) as caught:
        fields.parse_field_selector(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("", ""),
        ("a", "a"),
        ("=", "\\="),
        (",", "\\,"),
        ("\\", "\\\\"),
        ("\\=\\,\\", "\\\\\\=\\\\\\,\\\\"),
    ],
)
def test_values_escape_and_unescape_symmetrically(raw: str, escaped: str) -> None:
    """Upstream's TestEscapeValue pairs."""
    assert fields.escape_value(raw) == escaped
    assert fields.unescape_value(escaped) == raw


@pytest.mark.parametrize("value", ["\\", "\\\\\\", "\\a"])
def test_invalid_escape_sequences_are_rejected(value: str) -> None:
    """Orphan or unknown escapes fail as upstream's InvalidEscapeSequence."""
    with pytest.raises(fields.SelectorError, match="invalid escape sequence"):
        fields.unescape_value(value)


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        pytest.param(
            "a=avalue,b==bvalue,c!=cvalue",
            [("a", "=", "avalue"), ("b", "=", "bvalue"), ("c", "!=", "cvalue")],
            id="ops",
        ),
        pytest.param("k=\\,,k2=v2", [("k2", "=", "v2"), ("k", "=", ",")], id="escaped-comma"),
        pytest.param("k=\\\\,k2=v2", [("k2", "=", "v2"), ("k", "=", "\\")], id="escaped-backslash"),
        pytest.param("a=a,", [("a", "=", "a")], id="trailing-comma"),
        pytest.param(",a=a", [("a", "=", "a")], id="leading-comma"),
        pytest.param("함=수,목=록", [("목", "=", "록"), ("함", "=", "수")], id="multibyte-sorted"),
        pytest.param("spec.nodeName=", [("spec.nodeName", "=", "")], id="empty-value"),
        pytest.param("=", [], id="empty-term-is-everything"),
        pytest.param("z=1,a=2", [("a", "=", "2"), ("z", "=", "1")], id="sorted"),
    ],
)
def test_requirements_are_split_and_unescaped(
    text: str, requirements: list[tuple[str, str, str]]
) -> None:
    """Terms split on unescaped commas, at the first operator, sorted by text as upstream."""
    got = fields.parse_field_selector(text).requirements
    assert [(r.field, r.operator, r.value) for r in got] == requirements


@pytest.mark.parametrize(
    ("text", "have", "matches"),
    [
        ("", {"a": "b"}, True),
        ("metadata.name=x", {"metadata.name": "x"}, True),
        ("metadata.name==x", {"metadata.name": "x"}, True),
        ("metadata.name=x", {"metadata.name": "y"}, False),
        ("metadata.name!=x", {"metadata.name": "y"}, True),
        ("spec.nodeName=", {}, True),
        ("spec.nodeName!=", {}, False),
        (
            "status.phase!=Running,spec.nodeName=n1",
            {"status.phase": "Pending", "spec.nodeName": "n1"},
            True,
        ),
        (
            "status.phase!=Running,spec.nodeName=n1",
            {"status.phase": "Running", "spec.nodeName": "n1"},
            False,
        ),
    ],
)
def test_field_selectors_match_field_sets(text: str, have: dict[str, str], matches: bool) -> None:
    """Matching treats a missing field as the empty string."""
    assert fields.parse_field_selector(text).matches(have) is matches


def test_requires_exact_match_only_for_equality_terms() -> None:
    """RequiresExactMatch: '=' pins a value, '!=' does not."""
    sel = fields.parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert sel.requires_exact_match("spec.nodeName") == "n1"
    assert sel.requires_exact_match("status.phase") is None


def test_empty_selector_is_everything() -> None:
    """An empty selector is empty and matches anything."""
    assert fields.parse_field_selector("").empty
    assert fields.EVERYTHING.matches({"x": "y"})


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        pytest.param(True, "field label not supported: spec.foo", id="registered-kind"),
        pytest.param(
            False,
            '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"',
            id="default-conversion",
        ),
    ],
)
def test_unsupported_field_labels_are_refused(registered: bool, message: str) -> None:
    """Fields outside the kind's allow-list fail with the message upstream returns."""
    sel = fields.parse_field_selector("metadata.name=a,spec.foo=b")
    with pytest.raises(fields.SelectorError) as caught:
        fields.check_supported(sel, {"metadata.name", "metadata.namespace"}, registered=registered)
    assert caught.value.message == message


def test_supported_field_labels_pass() -> None:
    """Selectors within the allow-list pass the check."""
    sel = fields.parse_field_selector("metadata.name=a,spec.nodeName=n")
    fields.check_supported(sel, {"metadata.name", "spec.nodeName"})
