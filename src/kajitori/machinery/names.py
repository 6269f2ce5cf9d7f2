"""Name and value syntax checks: DNS labels, qualified names, label values, ports.

Owns the string-level rules every resource validator relies on, and the exact
wording of their failures, because clients show these strings to people and
upstream's own tests compare them (upstream: apimachinery
``pkg/util/validation/validation.go``, ``pkg/api/validate/content``,
``pkg/api/validation/generic.go`` and apiserver ``pkg/storage/names``).

Every ``is_*`` check returns a list of detail strings; an empty list means the
value is valid. Callers wrap each detail in a ``field.invalid(...)``.

Two length wordings coexist upstream and both are kept: the older checks
(DNS names, config-map keys) say "characters", while label keys and values,
which moved to ``validate/content``, say "bytes". Lengths are counted in UTF-8
bytes, as Go's ``len`` does.

Patterns are applied with ``re.fullmatch`` because Python's ``$`` also matches
before a trailing newline, which Go's does not.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable

NameValidator = Callable[[str, bool], list[str]]
"""Upstream's ``ValidateNameFunc``: ``(name, prefix) -> details``.

``prefix`` is true when the value is a ``generateName`` that will have random
characters appended, so a trailing ``-`` is acceptable.
"""

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
_LABEL_KEY_NAME_MAX_LENGTH = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_US_FMT = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_US_FMT = _DNS1123_LABEL_US_FMT + "(\\." + _DNS1123_LABEL_US_FMT + ")*"
_DNS1123_SUBDOMAIN_US_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'_', '-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
_C_IDENTIFIER_MSG = (
    "a valid C identifier must start with alphabetic character or '_', "
    "followed by a string of alphanumeric characters or '_'"
)
_ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, "
    "'_', '-', or '.', and must not start with a digit"
)
_RELAXED_ENV_VAR_NAME_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
_PERCENT_FMT = "[0-9]+%"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
_HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"
_HTTP_HEADER_NAME_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_US_RE = re.compile(_DNS1123_SUBDOMAIN_US_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_CONFIG_MAP_KEY_RE = re.compile(_CONFIG_MAP_KEY_FMT)
_C_IDENTIFIER_RE = re.compile(_C_IDENTIFIER_FMT)
_ENV_VAR_NAME_RE = re.compile(_ENV_VAR_NAME_FMT)
_PERCENT_RE = re.compile(_PERCENT_FMT)
_HTTP_HEADER_NAME_RE = re.compile(_HTTP_HEADER_NAME_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_PORT_NAME_LETTER_RE = re.compile("[a-z]")

# apiserver's generateName: 63-character names, 5 random characters.
_MAX_NAME_LENGTH = 63
_RANDOM_LENGTH = 5
MAX_GENERATED_NAME_LENGTH = _MAX_NAME_LENGTH - _RANDOM_LENGTH
# Vowels are left out so generated names do not spell words.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# --- message builders -------------------------------------------------------


def max_len_error(length: int) -> str:
    """The "too long" detail of the older checks, counted in characters."""
    return f"must be no more than {length} characters"


def max_bytes_error(length: int) -> str:
    """The "too long" detail of the ``validate/content`` checks, counted in bytes."""
    return f"must be no more than {length} bytes"


def regex_error(message: str, pattern: str, *examples: str) -> str:
    """A regex failure detail, listing examples and the pattern as upstream does."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    # Upstream writes "'a', " per example and " or " between them, which yields
    # "(e.g. 'a',  or 'b', regex ...)": the odd comma and double space are kept.
    listed = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {listed}regex used for validation is '{pattern}')"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _byte_len(value: str) -> int:
    if value.isascii():  # a flag CPython keeps: no encoding for the usual name
        return len(value)
    return len(value.encode("utf-8", "surrogatepass"))


# --- DNS names ----------------------------------------------------------------


def is_dns1123_label(value: str) -> list[str]:
    """An RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain that is not a label can only be failing on dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """An RFC 1123 subdomain: dot-separated labels, at most 253 characters."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_subdomain_with_underscore(value: str) -> list[str]:
    """An RFC 1123 subdomain whose labels may also contain (and start with) '_'."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_US_RE.fullmatch(value):
        errs.append(
            regex_error(_DNS1123_SUBDOMAIN_US_MSG, _DNS1123_SUBDOMAIN_US_FMT, "example.com")
        )
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """An RFC 1035 label: like an RFC 1123 label but starting with a letter."""
    errs: list[str] = []
    if _byte_len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


# --- labels and keys --------------------------------------------------------------


def is_qualified_name(value: str) -> list[str]:
    """A label key: ``[prefix/]name``, prefix a DNS subdomain, name at most 63 bytes.

    Also the syntax of annotation keys, finalizers and condition types.
    """
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + msg for msg in _content_dns1123_subdomain(prefix))
    if not name:
        errs.append("name part " + empty_error())
    elif _byte_len(name) > _LABEL_KEY_NAME_MAX_LENGTH:
        errs.append("name part " + max_bytes_error(_LABEL_KEY_NAME_MAX_LENGTH))
    if not _LABEL_KEY_RE.fullmatch(name):
        errs.append(
            "name part "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def _content_dns1123_subdomain(value: str) -> list[str]:
    # validate/content's copy of the subdomain check, which counts bytes.
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_bytes_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_prefixed_qualified_name(value: str) -> list[str]:
    """A label key that must carry a domain prefix (``example.com/key``)."""
    errs = is_qualified_name(value)
    if errs:
        return errs
    if len(value.split("/")) != 2:
        return ["must include a prefix (e.g. 'example.com/key')"]
    return []


def is_valid_label_value(value: str) -> list[str]:
    """A label value: empty, or at most 63 bytes of alphanumerics, '-', '_', '.'."""
    errs: list[str] = []
    if _byte_len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_bytes_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


class PassMemo:
    """A pure text ``check`` that remembers the texts which passed it (at most ``limit``).

    For texts written over and over (data keys, an Event's namespace): a valid
    text stays valid, so it is not checked again. Only passes are remembered; a
    failing text is checked, and its problems reported, every time. Past the
    limit the memo starts over.
    """

    def __init__(self, check: Callable[[str], list[str]], limit: int) -> None:
        self.check = check
        self.limit = limit
        self.passed: set[str] = set()

    def __call__(self, value: str) -> list[str]:
        if value in self.passed:
            return []
        found = self.check(value)
        if not found:
            if len(self.passed) >= self.limit:
                self.passed.clear()
            self.passed.add(value)
        return found


def is_config_map_key(value: str) -> list[str]:
    """A ConfigMap or Secret data key: a file name, so never '.', '..' or '..x'."""
    # Most ConfigMaps and Secrets written carry the same few keys.
    return _CONFIG_MAP_KEYS(value)


def _config_map_key_problems(value: str) -> list[str]:
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_MAP_KEY_RE.fullmatch(value):
        errs.append(
            regex_error(
                _CONFIG_MAP_KEY_MSG, _CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"
            )
        )
    errs.extend(_has_chdir_prefix(value))
    return errs


_CONFIG_MAP_KEYS = PassMemo(_config_map_key_problems, 8192)


def _has_chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


# --- identifiers ----------------------------------------------------------------


def is_c_identifier(value: str) -> list[str]:
    if not _C_IDENTIFIER_RE.fullmatch(value):
        return [regex_error(_C_IDENTIFIER_MSG, _C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")]
    return []


def is_env_var_name(value: str) -> list[str]:
    """An environment variable name under the rules in force in 1.37.

    RelaxedEnvironmentVariableValidation is GA (locked on) since 1.34: any
    printable ASCII except '=' is accepted.
    """
    errs: list[str] = []
    if not value:
        errs.append("environment variable name " + empty_error())
    if any(ord(ch) > 0x7E or ord(ch) < 0x20 or ch == "=" for ch in value):
        errs.append(_RELAXED_ENV_VAR_NAME_MSG)
    return errs


def is_strict_env_var_name(value: str) -> list[str]:
    """The pre-1.34 environment variable rule (still upstream's ``IsEnvVarName``)."""
    errs: list[str] = []
    if not _ENV_VAR_NAME_RE.fullmatch(value):
        errs.append(
            regex_error(
                _ENV_VAR_NAME_MSG, _ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"
            )
        )
    errs.extend(_has_chdir_prefix(value))
    return errs


def is_http_header_name(value: str) -> list[str]:
    if not _HTTP_HEADER_NAME_RE.fullmatch(value):
        return [regex_error(_HTTP_HEADER_NAME_MSG, _HTTP_HEADER_NAME_FMT, "X-Header-Name")]
    return []


def is_valid_percent(value: str) -> list[str]:
    if not _PERCENT_RE.fullmatch(value):
        return [regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%")]
    return []


# --- numbers and ports ------------------------------------------------------------


def is_in_range(value: int, lo: int, hi: int) -> list[str]:
    return [] if lo <= value <= hi else [inclusive_range_error(lo, hi)]


def is_valid_port_num(port: int) -> list[str]:
    """A non-zero TCP/UDP port number."""
    return is_in_range(port, 1, 65535)


def is_valid_user_id(uid: int) -> list[str]:
    return is_in_range(uid, 0, 2**31 - 1)


def is_valid_group_id(gid: int) -> list[str]:
    return is_in_range(gid, 0, 2**31 - 1)


def is_valid_port_name(port: str) -> list[str]:
    """An IANA service name: at most 15 of [-a-z0-9], a letter, no '--', no edge '-'."""
    errs: list[str] = []
    if _byte_len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


# --- IP addresses -----------------------------------------------------------------

_SLOPPY_IPV4_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_BAD_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _parse_ip_sloppy(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Go's ParseIPSloppy: like net.ParseIP, but IPv4 octets may have leading zeros
    # (read as decimal). No zones, no brackets.
    if "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    if _SLOPPY_IPV4_RE.fullmatch(value):
        octets = [int(part) for part in value.split(".")]
        if all(octet <= 255 for octet in octets):
            return ipaddress.IPv4Address(".".join(map(str, octets)))
    return None


def _ip_string(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    # Go prints IPv4-mapped IPv6 addresses in dotted form.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.compressed


def _strict_ip_errors(value: str) -> list[str]:
    # What upstream's netip.ParseAddr pass adds once ParseIPSloppy accepted it.
    try:
        strict = ipaddress.ip_address(value)
    except ValueError:
        return ["must not have leading 0s"]
    if isinstance(strict, ipaddress.IPv6Address) and strict.ipv4_mapped is not None:
        return ["must not be an IPv4-mapped IPv6 address"]
    return []


def is_valid_ip(value: str) -> list[str]:
    """An IP address in strict, canonical form (upstream's ``IsValidIP``)."""
    ip = _parse_ip_sloppy(value)
    if ip is None:
        return [_BAD_IP]
    errs = _strict_ip_errors(value)
    if errs:
        return errs
    canonical = _ip_string(ip)
    if value != canonical:
        return [f'must be in canonical form ("{canonical}")']
    return []


def is_valid_ip_for_legacy_field(value: str) -> list[str]:
    """An IP for fields older than strict validation (``IsValidIPForLegacyField``
    with StrictIPCIDRValidation on): any spelling, but no leading 0s and no
    IPv4-mapped IPv6 addresses."""
    if _parse_ip_sloppy(value) is None:
        return [_BAD_IP]
    return _strict_ip_errors(value)


# --- name validators (ValidateNameFunc) ---------------------------------------------


def _mask_trailing_dash(name: str) -> str:
    # Upstream replaces the last TWO characters by "a" when the name ends in '-'
    # (it slices [:len-2]); kept as is, since it decides which prefixes pass.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """Names that must be DNS subdomains (most kinds)."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    """Names that must be DNS labels (e.g. namespaces)."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """Names that must be RFC 1035 labels (e.g. services)."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


validate_namespace_name: NameValidator = name_is_dns_label
validate_service_account_name: NameValidator = name_is_dns_subdomain


def is_path_segment_prefix(name: str) -> list[str]:
    """Content that can never appear in a REST path segment or storage key."""
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


def is_path_segment_name(name: str) -> list[str]:
    """A name usable as one path segment: not '.' or '..', no '/' or '%'.

    Empty names and length are deliberately not checked here, as upstream.
    """
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return is_path_segment_prefix(name)


def validate_path_segment_name(name: str, prefix: bool) -> list[str]:
    """The name rule of kinds whose names are only path segments (RBAC, ...)."""
    return is_path_segment_prefix(name) if prefix else is_path_segment_name(name)


# --- generateName ------------------------------------------------------------------


def simple_name_generator(base: str) -> str:
    """A name for ``generateName``: the base cut to 58 characters plus 5 random ones."""
    base = base[:MAX_GENERATED_NAME_LENGTH]
    # Upstream draws these from math/rand (a name, not a secret): one call, and
    # no urandom syscall per character.
    return base + "".join(random.choices(_NAME_ALPHABET, k=_RANDOM_LENGTH))
