"""Name and value syntax checks, against upstream's tables and messages."""

from __future__ import annotations

import pytest

from kajitori.machinery import names

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
KEY_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

GOOD_LABELS = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a"]
GOOD_LABELS += ["1--a--b--2", "a" * 63]
BAD_LABELS = ["", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_"]
BAD_LABELS += ["_a", "a_b", "1_", "_1", "1_2", ".", "a.", ".a", "a.b", "1.", ".1", "1.2", " "]
BAD_LABELS += ["a ", " a", "a b", "1 ", " 1", "1 2", "a" * 64, "a\n"]


@pytest.mark.parametrize("value", GOOD_LABELS)
def test_dns1123_label_accepts_upstream_good_values(value: str) -> None:
    """Upstream's good DNS-1123 labels pass."""
    assert names.is_dns1123_label(value) == []


@pytest.mark.parametrize("value", BAD_LABELS)
def test_dns1123_label_rejects_upstream_bad_values(value: str) -> None:
    """Upstream's bad DNS-1123 labels fail (including a trailing newline)."""
    assert names.is_dns1123_label(value) != []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Bad_Name", [LABEL_MSG], id="regex"),
        pytest.param("a.b", ["must not contain dots"], id="dots"),
        pytest.param("a" * 64, ["must be no more than 63 characters"], id="length"),
        pytest.param(
            "a" * 63 + ".b",
            ["must be no more than 63 characters", "must not contain dots"],
            id="both",
        ),
    ],
)
def test_dns1123_label_messages_match_upstream(value: str, expected: list[str]) -> None:
    """DNS-1123 label failures carry upstream's exact details."""
    assert names.is_dns1123_label(value) == expected


GOOD_SUBDOMAINS = [*GOOD_LABELS, "a.a", "a--1--2--b.a", "0.1", "a.b.c.d.e", "11.22.33.44.55"]
GOOD_SUBDOMAINS += ["a" * 253]
BAD_SUBDOMAINS = ["", "A", "aBc", "-", "a-", "-a", "_", "a_b", ".", "a.", ".a", "a..b", "1..2"]
BAD_SUBDOMAINS += ["a b", "A.a", "ab.A", "a@b", "a,b", "a;b", "a:b", "a%b", "a?b", "a$b"]
BAD_SUBDOMAINS += ["a" * 254]


@pytest.mark.parametrize("value", GOOD_SUBDOMAINS)
def test_dns1123_subdomain_accepts_upstream_good_values(value: str) -> None:
    """Upstream's good DNS-1123 subdomains pass."""
    assert names.is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", BAD_SUBDOMAINS)
def test_dns1123_subdomain_rejects_upstream_bad_values(value: str) -> None:
    """Upstream's bad DNS-1123 subdomains fail."""
    assert names.is_dns1123_subdomain(value) != []


def test_dns1123_subdomain_message_matches_upstream_for_bad_name() -> None:
    """The detail for "Bad_Name" is upstream's, word for word."""
    assert names.is_dns1123_subdomain("Bad_Name") == [SUBDOMAIN_MSG]


def test_dns1123_subdomain_too_long_reports_characters() -> None:
    """Over-long subdomains report the 253-character limit first."""
    assert names.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("a--1--2--b", True, id="dashes"),
        pytest.param("a" * 63, True, id="max"),
        pytest.param("0", False, id="digit-start"),
        pytest.param("1-a", False, id="digit-dash"),
        pytest.param("a.b", False, id="dot"),
        pytest.param("a" * 64, False, id="too-long"),
    ],
)
def test_dns1035_label_requires_a_leading_letter(value: str, valid: bool) -> None:
    """RFC 1035 labels follow upstream's good/bad table."""
    assert (names.is_dns1035_label(value) == []) is valid


def test_dns1035_label_message_matches_upstream() -> None:
    """The RFC 1035 detail is upstream's."""
    assert names.is_dns1035_label("1abc") == [DNS1035_MSG]


@pytest.mark.parametrize(
    "value",
    [
        "simple",
        "now-with-dashes",
        "1-starts-with-num",
        "1234",
        "simple/simple",
        "now-with-dashes/simple",
        "now-with-dashes/now-with-dashes",
        "now.with.dots/simple",
        "now-with.dashes-and.dots/simple",
        "1-num.2-num/3-num",
        "1234/5678",
        "1.2.3.4/5678",
        "Uppercase_Is_OK_123",
        "example.com/Uppercase_Is_OK_123",
        "requests.storage-foo",
        "a" * 63,
        "a" * 253 + "/" + "b" * 63,
    ],
)
def test_qualified_name_accepts_upstream_good_values(value: str) -> None:
    """Upstream's good qualified names pass."""
    assert names.is_qualified_name(value) == []


@pytest.mark.parametrize(
    "value",
    [
        "nospecialchars%^=@",
        "cantendwithadash-",
        "-cantstartwithadash-",
        "only/one/slash",
        "Example.com/abc",
        "example_com/abc",
        "example.com/",
        "/simple",
        "a" * 64,
        "a" * 254 + "/abc",
    ],
)
def test_qualified_name_rejects_upstream_bad_values(value: str) -> None:
    """Upstream's bad qualified names fail."""
    assert names.is_qualified_name(value) != []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("a$b", [KEY_NAME_MSG], id="name"),
        pytest.param("/abc", ["prefix part must be non-empty"], id="empty-prefix"),
        pytest.param("abc/", ["name part must be non-empty", KEY_NAME_MSG], id="empty-name"),
        pytest.param(
            "a" * 64, ["name part must be no more than 63 bytes"], id="name-too-long-in-bytes"
        ),
        pytest.param(
            "Example.com/abc",
            ["prefix part " + SUBDOMAIN_MSG],
            id="bad-prefix",
        ),
        pytest.param(
            "a/b/c",
            [
                "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name', "
                " or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
                "[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
                "'example.com/MyName')"
            ],
            id="two-slashes",
        ),
    ],
)
def test_qualified_name_messages_match_upstream(value: str, expected: list[str]) -> None:
    """Qualified-name failures carry upstream's exact details."""
    assert names.is_qualified_name(value) == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("", True, id="empty"),
        pytest.param("simple", True, id="simple"),
        pytest.param("now_with.dots-and_underscores", True, id="mixed"),
        pytest.param("1234", True, id="digits"),
        pytest.param("Uppercase_Is_OK_123", True, id="upper"),
        pytest.param("a" * 63, True, id="max"),
        pytest.param("nospecialchars%^=@", False, id="special"),
        pytest.param("Tama-nui-te-rā.is.Māori.sun", False, id="non-ascii"),
        pytest.param("\\backslashes\\are\\bad", False, id="backslash"),
        pytest.param("-starts-with-dash", False, id="dash"),
        pytest.param("ends-with-dash-", False, id="end-dash"),
        pytest.param(".starts.with.dot", False, id="dot"),
        pytest.param("a" * 64, False, id="too-long"),
    ],
)
def test_label_value_follows_upstream_table(value: str, valid: bool) -> None:
    """Label values follow upstream's good/bad table."""
    assert (names.is_valid_label_value(value) == []) is valid


def test_label_value_messages_match_upstream() -> None:
    """Label value details are upstream's, with the length in bytes."""
    assert names.is_valid_label_value("-x") == [LABEL_VALUE_MSG]
    assert names.is_valid_label_value("a" * 64) == ["must be no more than 63 bytes"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("good-key_1.txt", [], id="good"),
        pytest.param(".dotfile", [], id="dotfile"),
        pytest.param(".", ["must not be '.'"], id="dot"),
        pytest.param("..", ["must not be '..'"], id="dotdot"),
        pytest.param("..x", ["must not start with '..'"], id="dotdot-prefix"),
        pytest.param(
            "a/b",
            [
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                "'[-._a-zA-Z0-9]+')"
            ],
            id="slash",
        ),
        pytest.param("a" * 254, ["must be no more than 253 characters"], id="too-long"),
    ],
)
def test_config_map_key_follows_upstream(value: str, expected: list[str]) -> None:
    """ConfigMap and Secret keys follow upstream's rule and wording."""
    assert names.is_config_map_key(value) == expected


@pytest.mark.parametrize(
    ("port", "valid"),
    [(1, True), (2, True), (1000, True), (65535, True), (0, False), (-1, False), (65536, False)],
)
def test_port_numbers_must_be_between_1_and_65535(port: int, valid: bool) -> None:
    """Port numbers follow upstream's table and range message."""
    expected = [] if valid else ["must be between 1 and 65535, inclusive"]
    assert names.is_valid_port_num(port) == expected


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param("telnet", [], id="good"),
        pytest.param("re-mail-ck", [], id="dashes"),
        pytest.param("pop3", [], id="digit"),
        pytest.param("a", [], id="one"),
        pytest.param("a-1", [], id="mixed"),
        pytest.param("1-a", [], id="digit-start"),
        pytest.param("a-1-b-2-c-3-d-4", [], id="max"),
        pytest.param("a-1-b-2-c-3-d-4-", None, id="end-dash-long"),
        pytest.param("", None, id="empty"),
        pytest.param("-telnet", ["must not begin or end with a hyphen"], id="dash-start"),
        pytest.param("telnet--", None, id="double"),
        pytest.param("12345", ["must contain at least one letter (a-z)"], id="no-letter"),
        pytest.param("tel net", None, id="space"),
        pytest.param("TELNET", None, id="upper"),
        pytest.param("a--b", ["must not contain consecutive hyphens"], id="consecutive"),
        pytest.param("a" * 16, ["must be no more than 15 characters"], id="long"),
    ],
)
def test_port_names_follow_iana_service_name_rules(port: str, expected: list[str] | None) -> None:
    """Port names follow upstream's table; listed cases also match its wording."""
    got = names.is_valid_port_name(port)
    if expected is None:
        assert got != []
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("A", True, id="letter"),
        pytest.param("my.env-name", True, id="dots"),
        pytest.param("1-starts-with-digit", True, id="digit-start"),
        pytest.param("has space", True, id="space"),
        pytest.param("", False, id="empty"),
        pytest.param("a=b", False, id="equals"),
        pytest.param("tab\there", False, id="control"),
        pytest.param("naïve", False, id="non-ascii"),
    ],
)
def test_env_var_names_use_the_relaxed_ga_rule(value: str, valid: bool) -> None:
    """Env var names accept any printable ASCII but '=' (RelaxedEnvironmentVariableValidation)."""
    assert (names.is_env_var_name(value) == []) is valid


def test_env_var_name_messages_match_upstream() -> None:
    """Relaxed env var failures carry upstream's two details."""
    assert names.is_env_var_name("") == ["environment variable name must be non-empty"]
    assert names.is_env_var_name("a=b") == [
        "a valid environment variable name must consist only of printable ASCII characters other than '='"
    ]


@pytest.mark.parametrize(
    ("value", "valid"),
    [("_x", True), ("Abc_1", True), ("1x", False), ("a-b", False), ("", False)],
)
def test_c_identifiers_follow_upstream(value: str, valid: bool) -> None:
    """C identifiers start with a letter or '_' and contain only [A-Za-z0-9_]."""
    assert (names.is_c_identifier(value) == []) is valid


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1.2.3.4", [], id="ipv4"),
        pytest.param("2001:db8::ffff", [], id="ipv6"),
        pytest.param("::1", [], id="loopback6"),
        pytest.param("::", [], id="unspecified6"),
        pytest.param(
            "1.2.3", ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"], id="short"
        ),
        pytest.param(
            "fe80::1%eth0",
            ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"],
            id="zone",
        ),
        pytest.param("001.002.003.004", ["must not have leading 0s"], id="leading-zeros"),
        pytest.param(
            "::ffff:1.2.3.4", ["must not be an IPv4-mapped IPv6 address"], id="ipv4-mapped"
        ),
        pytest.param(
            "2001:DB8::FFFF", ['must be in canonical form ("2001:db8::ffff")'], id="uppercase"
        ),
        pytest.param(
            "2001:db8:0:0:0:0:0:1", ['must be in canonical form ("2001:db8::1")'], id="expanded"
        ),
    ],
)
def test_ip_addresses_are_validated_strictly(value: str, expected: list[str]) -> None:
    """IsValidIP: parseable, no leading zeros, no v4-mapped, canonical."""
    assert names.is_valid_ip(value) == expected


def test_legacy_ip_fields_accept_non_canonical_spellings() -> None:
    """Legacy IP fields accept non-canonical forms but still refuse leading zeros."""
    assert names.is_valid_ip_for_legacy_field("2001:DB8::FFFF") == []
    assert names.is_valid_ip_for_legacy_field("010.0.0.1") == ["must not have leading 0s"]


@pytest.mark.parametrize(
    ("validator", "name", "prefix", "valid"),
    [
        pytest.param(names.name_is_dns_subdomain, "foo-", True, True, id="subdomain-prefix-dash"),
        pytest.param(names.name_is_dns_subdomain, "foo-", False, False, id="subdomain-name-dash"),
        pytest.param(names.name_is_dns_subdomain, "foo.bar", False, True, id="subdomain-dots"),
        pytest.param(names.name_is_dns_subdomain, "-", True, False, id="lone-dash"),
        pytest.param(names.name_is_dns_label, "ns-", True, True, id="label-prefix-dash"),
        pytest.param(names.name_is_dns_label, "a.b", False, False, id="label-dots"),
        pytest.param(names.name_is_dns1035_label, "svc-", True, True, id="1035-prefix"),
        pytest.param(names.name_is_dns1035_label, "1svc", False, False, id="1035-digit"),
        # Upstream masks the LAST TWO characters: "a.-" becomes "a" and passes.
        pytest.param(names.name_is_dns_subdomain, "a.-", True, True, id="mask-drops-two"),
        pytest.param(names.name_is_dns_subdomain, "ab-", True, True, id="mask-ab"),
    ],
)
def test_name_validators_allow_a_trailing_dash_only_for_generate_name(
    validator: names.NameValidator, name: str, prefix: bool, valid: bool
) -> None:
    """ValidateNameFunc semantics: prefix=True masks a trailing '-' as upstream does."""
    assert (validator(name, prefix) == []) is valid


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        pytest.param("system:admin", False, [], id="colon"),
        pytest.param("", False, [], id="empty-unchecked"),
        pytest.param(".", False, ["may not be '.'"], id="dot"),
        pytest.param("..", False, ["may not be '..'"], id="dotdot"),
        pytest.param(".", True, [], id="dot-prefix"),
        pytest.param("a/b", False, ["may not contain '/'"], id="slash"),
        pytest.param("a%b", True, ["may not contain '%'"], id="percent"),
        pytest.param("a/%", False, ["may not contain '/'", "may not contain '%'"], id="both"),
    ],
)
def test_path_segment_names_forbid_dots_slashes_and_percents(
    name: str, prefix: bool, expected: list[str]
) -> None:
    """ValidatePathSegmentName: '.', '..' banned as names; '/' and '%' anywhere."""
    assert names.validate_path_segment_name(name, prefix) == expected


def test_generated_names_append_five_characters_from_upstream_alphabet() -> None:
    """generateName appends 5 characters from the vowel-free alphabet."""
    name = names.simple_name_generator("web-")
    assert name.startswith("web-")
    assert len(name) == 9
    assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_generated_names_cut_the_base_to_58_characters() -> None:
    """A long base is cut so the generated name is 63 characters."""
    name = names.simple_name_generator("x" * 80)
    assert name[:58] == "x" * 58
    assert len(name) == 63
    assert names.name_is_dns_label(name, False) == []


def test_generated_names_differ_between_calls() -> None:
    """Random suffixes make repeated generation produce different names."""
    assert len({names.simple_name_generator("a-") for _ in range(20)}) > 1


@pytest.mark.parametrize(
    ("value", "valid"), [("1%", True), ("93%", True), ("1", False), ("%", False), ("1.5%", False)]
)
def test_percent_strings_are_digits_and_a_percent_sign(value: str, valid: bool) -> None:
    """Percent strings follow upstream's regex."""
    assert (names.is_valid_percent(value) == []) is valid
