"""Label selector parsing, matching and rendering, against upstream's tables."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.machinery import field, labels

VALUE_REGEX_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    "text",
    ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"],
)
def test_good_selectors_round_trip_without_spaces(text: str) -> None:
    """Upstream's TestSelectorParse good strings re-render without their spaces."""
    assert str(labels.parse_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["x=a||y=b", "x==a==b", "!x=a", "x<a"])
def test_bad_selectors_are_rejected(text: str) -> None:
    """Upstream's TestSelectorParse bad strings fail to parse."""
    with pytest.raises(labels.SelectorError):
        labels.parse_selector(text)


def test_parsing_is_deterministic_whatever_the_order() -> None:
    """Requirements are sorted by key, so order in the text does not matter."""
    assert (
        str(labels.parse_selector("x=a,a=x")) == str(labels.parse_selector("a=x,x=a")) == "a=x,x=a"
    )


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        pytest.param("\rx", "x", id="carriage-return"),
        pytest.param("this-is-a-dns.domain.com/key-with-dash", None, id="prefixed-exists"),
        pytest.param(
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            id="notin-dotted",
        ),
        pytest.param("foo  in\t (abc)", "foo in (abc)", id="tabs"),
        pytest.param("x notin\n (abc)", "x notin (abc)", id="newline"),
        pytest.param("x in (abc,)", "x in (,abc)", id="trailing-comma"),
        pytest.param("x in (abc,abc)", "x in (abc)", id="deduplicated"),
        pytest.param("x in ()", "x in ()", id="empty-set"),
        pytest.param("x in (a,,a,,a,,a,,)", "x in (,a)", id="many-commas"),
        pytest.param(
            "x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()", id="mixed"
        ),
        pytest.param("x notin ( )", "x notin ()", id="space-set"),
        pytest.param("x notin (, a)", "x notin (,a)", id="leading-comma"),
        pytest.param("a ", "a", id="trailing-space"),
        pytest.param("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)", id="keywords-as-values"),
        pytest.param("notin=in", "notin=in", id="keywords-exact"),
        pytest.param("x==a", "x==a", id="double-equals-kept"),
    ],
)
def test_set_based_selectors_parse_as_upstream(text: str, rendered: str | None) -> None:
    """Upstream's TestSetSelectorParser valid cases parse and render canonically."""
    assert str(labels.parse_selector(text)) == (rendered if rendered is not None else text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a in (b", "unable to parse requirement: found '', expected: ',' or ')'", id="unclosed"
        ),
        pytest.param("x,,y", "found ',', expected: identifier after ','", id="double-comma"),
        pytest.param(",x,y", "found ',', expected: !, identifier, or 'end of string'", id="lead"),
        pytest.param(
            "x nott in (y)",
            "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt",
            id="bad-operator",
        ),
        pytest.param("a in (xyz),", "found '', expected: identifier after ','", id="trailing"),
        pytest.param(
            "a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'", id="no-comma"
        ),
        pytest.param(
            "a in (xyz abc)",
            "unable to parse requirement: found 'abc', expected: ',' or ')'",
            id="space-in-set",
        ),
        pytest.param(
            "a notin(",
            "unable to parse requirement: found '', expected: ',', ')' or identifier",
            id="open",
        ),
        pytest.param(
            "a (",
            "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
            id="paren",
        ),
        pytest.param("(", "found '(', expected: !, identifier, or 'end of string'", id="opar"),
        pytest.param(
            "x in y", "unable to parse requirement: found 'y' expected: '('", id="no-paren"
        ),
        pytest.param(
            "a=(", "unable to parse requirement: found '(', expected: identifier", id="val"
        ),
        pytest.param("!x=a", "found '=', expected: ',' or 'end of string'", id="not-exists-eq"),
        pytest.param(
            "x<a",
            'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
            id="lt-not-integer",
        ),
        pytest.param(
            "a=b$",
            f'unable to parse requirement: values[0][a]: Invalid value: "b$": {VALUE_REGEX_MSG}',
            id="bad-value",
        ),
        pytest.param(
            "a$=b",
            'unable to parse requirement: <nil>: Invalid value: "a$": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            id="bad-key-nil-path",
        ),
    ],
)
def test_parse_errors_carry_upstreams_message(text: str, message: str) -> None:
    """Bad selectors fail with the text kube-apiserver puts in its 400 response."""
    with pytest.raises(labels.SelectorError) as caught:
        labels.parse_selector(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "have", "matches"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("z>1", {"z": "v2"}, False),
        ("x>1", {}, False),
        ("x notin ()", {"y": ""}, True),
        ("x in ()", {"y": "baz"}, False),
        ("x in ()", {"x": ""}, True),
        ("x!=a", {}, True),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
    ],
)
def test_selectors_match_label_sets_as_upstream(
    text: str, have: dict[str, str], matches: bool
) -> None:
    """Upstream's TestSelectorMatches and requirement matching cases."""
    assert labels.parse_selector(text).matches(have) is matches


def test_a_missing_label_map_matches_like_an_empty_one() -> None:
    """None labels behave as no labels."""
    assert labels.parse_selector("!x").matches(None)
    assert not labels.parse_selector("x").matches(None)


def test_everything_and_nothing_selectors() -> None:
    """Everything is empty and matches all; Nothing is not empty and matches none."""
    assert labels.EVERYTHING.empty and labels.EVERYTHING.matches({"x": "y"})
    assert not labels.NOTHING.empty and not labels.NOTHING.matches({})
    assert labels.parse_selector("").empty
    assert not labels.parse_selector("a").empty


@pytest.mark.parametrize(
    ("key", "op", "values", "message"),
    [
        pytest.param(
            "x1",
            "in",
            [],
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty",
            id="in-empty",
        ),
        pytest.param("x3", "in", ["foo"], None, id="in"),
        pytest.param(
            "x5",
            "=",
            ["bar", "foo"],
            'values: Invalid value: ["bar","foo"]: exact-match compatibility requires one single value',
            id="equals-two",
        ),
        pytest.param("x6", "exists", [], None, id="exists"),
        pytest.param(
            "x8",
            "exists",
            ["foo"],
            'values: Invalid value: ["foo"]: values set must be empty for exists and does not exist',
            id="exists-values",
        ),
        pytest.param("x11", "gt", ["1"], None, id="gt"),
        pytest.param(
            "x13",
            "gt",
            [],
            "values: Invalid value: []: for 'Gt', 'Lt' operators, exactly one value is required",
            id="gt-empty",
        ),
        pytest.param(
            "x16",
            "=",
            ["a" * 64],
            f'values[0][x16]: Invalid value: "{"a" * 64}": must be no more than 63 bytes',
            id="value-long",
        ),
        pytest.param(
            "x17",
            "=",
            ["a b"],
            f'values[0][x17]: Invalid value: "a b": {VALUE_REGEX_MSG}',
            id="space",
        ),
        pytest.param(
            "x18",
            "unsupportedOp",
            [],
            'operator: Unsupported value: "unsupportedOp": supported values: "in", "notin", "=", '
            '"==", "!=", "gt", "lt", "exists", "!"',
            id="operator",
        ),
        pytest.param(
            "a b",
            "gt",
            ["x"],
            "[key: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', "
            "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
            "'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), values[0]: Invalid value: \"x\": "
            "for 'Gt', 'Lt' operators, the value must be an integer]",
            id="aggregate",
        ),
    ],
)
def test_requirement_constructor_validates_as_upstream(
    key: str, op: str, values: list[str], message: str | None
) -> None:
    """NewRequirement's checks and aggregated messages (upstream's TestRequirementConstructor)."""
    if message is None:
        assert labels.new_requirement(key, op, values).key == key
        return
    with pytest.raises(labels.SelectorError) as caught:
        labels.new_requirement(key, op, values)
    assert caught.value.message == message


def test_requirements_render_as_upstream_to_string() -> None:
    """Upstream's TestToString cases render identically."""
    sel = labels.Selector(
        [
            labels.new_requirement("x", "notin", ["def", "abc"]),
            labels.new_requirement("y", "!=", ["jkl"]),
            labels.new_requirement("z", "!", []),
        ]
    )
    assert str(sel) == "x notin (abc,def),y!=jkl,!z"
    sel = labels.Selector(
        [labels.new_requirement("x", "gt", ["2"]), labels.new_requirement("y", "lt", ["8"])]
    )
    assert str(sel) == "x>2,y<8"


def test_requires_exact_match_reports_pinned_values() -> None:
    """RequiresExactMatch: = / == / single-valued in pin a value; others do not."""
    sel = labels.parse_selector("a=1,b in (2),c in (3,4),d!=5")
    assert [sel.requires_exact_match(k) for k in "abcde"] == ["1", "2", None, None, None]


def test_add_keeps_requirements_sorted() -> None:
    """Adding requirements keeps the canonical key order."""
    sel = labels.parse_selector("b=1").add(labels.new_requirement("a", "exists"))
    assert str(sel) == "a,b=1"


def test_label_selector_objects_convert_to_selectors() -> None:
    """LabelSelectorAsSelector: None is nothing, {} everything, content becomes requirements."""
    assert labels.selector_from_label_selector(None) is labels.NOTHING
    assert labels.selector_from_label_selector({}).empty
    sel = labels.selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "env", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
            ],
        }
    )
    assert str(sel) == "app=web,env,!legacy,tier in (a,b),zone notin (x)"
    assert sel.matches({"app": "web", "env": "", "tier": "a"})
    assert not sel.matches({"app": "web", "env": "", "tier": "a", "legacy": "1"})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
            id="operator",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
            id="in-without-values",
        ),
    ],
)
def test_invalid_label_selector_objects_raise(selector: dict[str, Any], message: str) -> None:
    """Conversion failures carry upstream's messages."""
    with pytest.raises(labels.SelectorError) as caught:
        labels.selector_from_label_selector(selector)
    assert caught.value.message == message


def test_format_label_selector_uses_none_and_error_placeholders() -> None:
    """FormatLabelSelector: canonical text, <none> when empty, <error> when invalid."""
    assert labels.format_label_selector({"matchLabels": {"a": "b"}}) == "a=b"
    assert labels.format_label_selector({}) == "<none>"
    assert labels.format_label_selector({"matchExpressions": [{"operator": "X"}]}) == "<error>"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({"matchLabels": {"app": "web"}}, [], id="valid"),
        pytest.param(None, [], id="none"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when "
                "`operator` is 'In' or 'NotIn'"
            ],
            id="in-needs-values",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            [
                "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when "
                "`operator` is 'Exists' or 'DoesNotExist'"
            ],
            id="exists-forbids-values",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            [
                'spec.selector.matchExpressions[0].operator: Invalid value: "Gt": not a valid '
                "selector operator"
            ],
            id="bad-operator",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x"]}]},
            [
                f'spec.selector.matchExpressions[0].values[0]: Invalid value: "-x": {VALUE_REGEX_MSG}'
            ],
            id="bad-value",
        ),
        pytest.param(
            {"matchLabels": {"k": "-x"}},
            [f'spec.selector.matchLabels: Invalid value: "-x": {VALUE_REGEX_MSG}'],
            id="bad-match-label",
        ),
    ],
)
def test_validate_label_selector_reports_field_errors(
    selector: dict[str, Any] | None, expected: list[str]
) -> None:
    """ValidateLabelSelector's field errors and wording."""
    errs = labels.validate_label_selector(selector, field.Path("spec", "selector"))
    assert [str(e) for e in errs] == expected


def test_invalid_label_values_can_be_tolerated_for_old_objects() -> None:
    """AllowInvalidLabelValueInSelector skips value checks (for persisted data)."""
    selector = {"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x"]}]}
    errs = labels.validate_label_selector(
        selector, field.Path("spec"), allow_invalid_label_value=True
    )
    assert errs == []


def test_selector_from_set_builds_equality_requirements() -> None:
    """SelectorFromSet: one '=' per label, sorted."""
    sel = labels.selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert labels.selector_from_set(None).empty
