"""Kubernetes' CEL extension libraries, as functions for the ``cel`` package.

Upstream's CRD environment (k8s.io/apiserver/pkg/cel/library plus cel-go's
``ext`` strings and sets) adds lists, regex, urls, quantity, ip/cidr, semver
and format functions to standard CEL. The Rust-backed ``cel`` package only
lets us register plain functions, called with the receiver as the first
argument (``x.f(a)`` is ``f(x, a)``), and its values are CEL's own: a function
cannot return a new type. So:

* opaque upstream types (Quantity, URL, IP, CIDR, Semver, Format) travel as
  small tagged maps ``{"@kj": <type>, ...}``; each keeps a canonical form so
  CEL's ``==`` on them compares values as upstream's ``Equal`` does
  (``quantity('1') == quantity('1000m')``);
* one name may serve several upstream overloads (``indexOf`` on strings and on
  lists, ``isLessThan`` on quantities and semvers): each function dispatches
  on its receiver;
* a function refuses bad input by raising ``ValueError``; the evaluator turns
  the library's wrapped message back into upstream's ``<error> evaluating rule``.

``FUNCTIONS`` is the table registered in every evaluation context.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from kajitori.machinery import names
from kajitori.machinery import quantity as quantities

_TAG = "@kj"
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_MAX_INT = 2**63 - 1


def _tagged(value: Any, kind: str) -> bool:
    return isinstance(value, dict) and value.get(_TAG) == kind


def _need(value: Any, kind: str, function: str) -> dict[str, Any]:
    if not _tagged(value, kind):
        raise ValueError(f"no such overload: {function}")
    result: dict[str, Any] = value
    return result


# ----- lists -------------------------------------------------------------------------------


def _comparable(items: list[Any], function: str) -> list[Any]:
    if any(isinstance(x, dict | list) and not _tagged(x, "quantity") for x in items):
        raise ValueError(f"no such overload: {function}")
    return [_quantity(x["value"]) if _tagged(x, "quantity") else x for x in items]


def is_sorted(items: list[Any]) -> bool:
    values = _comparable(items, "isSorted")
    return all(a <= b for a, b in itertools.pairwise(values))


def sum_(items: list[Any]) -> Any:
    if items and all(_tagged(x, "quantity") for x in items):
        total = quantities.Quantity(0)
        for x in items:
            total = total + _quantity(x["value"])
        return _quantity_value(total)
    total_number: Any = 0
    for x in items:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise ValueError("no such overload: sum")
        total_number = total_number + x
    return total_number


def _extreme(items: list[Any], function: str, pick: Callable[[list[Any]], Any]) -> Any:
    if not items:
        raise ValueError(f"{function}(list) argument must not be empty")
    values = _comparable(items, function)
    chosen = pick(values)
    return items[values.index(chosen)]


def min_(items: list[Any]) -> Any:
    return _extreme(items, "min", min)


def max_(items: list[Any]) -> Any:
    return _extreme(items, "max", max)


def index_of(target: Any, item: Any, offset: int = 0) -> int:
    if isinstance(target, str):
        return _string_index(target, item, offset)
    for i, x in enumerate(target):
        if x == item and type(x) is type(item):
            return i
    return -1


def last_index_of(target: Any, item: Any, offset: int | None = None) -> int:
    if isinstance(target, str):
        return _string_last_index(target, item, offset)
    for i in range(len(target) - 1, -1, -1):
        if target[i] == item and type(target[i]) is type(item):
            return i
    return -1


# ----- strings (cel-go ext.Strings) ----------------------------------------------------------


def char_at(s: str, index: int) -> str:
    if index < 0 or index > len(s):
        raise ValueError(f"index out of range: {index}")
    return s[index : index + 1]


def _string_index(s: str, sub: str, offset: int) -> int:
    if offset < 0 or offset > len(s):
        raise ValueError(f"index out of range: {offset}")
    return s.find(sub, offset)


def _string_last_index(s: str, sub: str, offset: int | None) -> int:
    if offset is None:
        return s.rfind(sub)
    if offset < 0 or offset > len(s):
        raise ValueError(f"index out of range: {offset}")
    return s.rfind(sub, 0, offset + len(sub))


def substring(s: str, start: int, end: int | None = None) -> str:
    stop = len(s) if end is None else end
    if start < 0 or start > len(s):
        raise ValueError(f"index out of range: {start}")
    if stop < 0 or stop > len(s):
        raise ValueError(f"index out of range: {stop}")
    if start > stop:
        raise ValueError(f"invalid substring range. start: {start}, end: {stop}")
    return s[start:stop]


def replace(s: str, old: str, new: str, limit: int = -1) -> str:
    return s.replace(old, new, limit)


def split(s: str, sep: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    if sep == "":
        chars = list(s)
        if 0 < limit < len(chars):
            return [*chars[: limit - 1], "".join(chars[limit - 1 :])]
        return chars
    return s.split(sep, limit - 1 if limit > 0 else -1)


def join(items: list[Any], sep: str = "") -> str:
    if not all(isinstance(x, str) for x in items):
        raise ValueError("no such overload: join")
    return sep.join(items)


def lower_ascii(s: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in s)


def upper_ascii(s: str) -> str:
    return "".join(c.upper() if c.isascii() else c for c in s)


def trim(s: str) -> str:
    return s.strip()


def reverse(value: Any) -> Any:
    return value[::-1]


def quote(s: str) -> str:
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a",
               "\b": "\\b", "\f": "\\f", "\v": "\\v"}  # fmt: skip
    return '"' + "".join(escapes.get(c, c) for c in s) + '"'


_VERB = re.compile(r"%(?:\.(\d+))?([sdfeboxX%])")


def format_(template: str, args: list[Any]) -> str:
    """cel-go's ``string.format(list)``: %s %d %f %e %b %o %x %X and %.Nf."""
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        precision, verb = match.group(1), match.group(2)
        if verb == "%":
            return "%"
        try:
            value = next(values)
        except StopIteration:
            raise ValueError(
                f"index {len(args)} out of range"
            ) from None  # cel-go: not enough arguments
        return _format_one(value, verb, precision)

    return _VERB.sub(one, template)


def _format_one(value: Any, verb: str, precision: str | None) -> str:
    if verb == "s":
        return _to_string(value)
    if verb == "d":
        return str(int(value))
    if verb in "fe":
        digits = 6 if precision is None else int(precision)
        return f"{float(value):.{digits}{verb}}"
    spec = {"b": "b", "o": "o", "x": "x", "X": "X"}[verb]
    if isinstance(value, str) and verb in "xX":
        text = value.encode().hex()
        return text.upper() if verb == "X" else text
    return format(int(value), spec)


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_to_string(x) for x in value) + "]"
    if isinstance(value, dict):
        if _TAG in value:
            return str(value.get("value", ""))
        pairs = ", ".join(f"{_to_string(k)}: {_to_string(v)}" for k, v in value.items())
        return "{" + pairs + "}"
    if value is None:
        return "null"
    return str(value)


# ----- regex ---------------------------------------------------------------------------------


def find(s: str, pattern: str) -> str:
    match = _regex(pattern).search(s)
    return match.group(0) if match else ""


def find_all(s: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    found = [m.group(0) for m in _regex(pattern).finditer(s)]
    return found if limit < 0 else found[:limit]


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"error parsing regexp: {exc}") from None


# ----- quantity ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _quantity(text: str) -> quantities.Quantity:
    """Parsed once per text: rules parse the same few quantities on every object."""
    return quantities.parse_quantity(text)


def _quantity_value(q: quantities.Quantity) -> dict[str, Any]:
    return {_TAG: "quantity", "value": q.canonical()}


def quantity(text: str) -> dict[str, Any]:
    try:
        return _quantity_value(_quantity(text))
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def is_quantity(text: str) -> bool:
    try:
        _quantity(text)
    except ValueError:
        return False
    return True


def _as_quantity(value: Any, function: str) -> quantities.Quantity:
    if isinstance(value, int) and not isinstance(value, bool):
        return quantities.Quantity(value)
    return _quantity(_need(value, "quantity", function)["value"])


def sign(q: Any) -> int:
    return _as_quantity(q, "sign").sign()


def is_integer(q: Any) -> bool:
    number = _as_quantity(q, "isInteger").number
    return number == number.to_integral_value() and abs(number) <= _MAX_INT


def as_integer(q: Any) -> int:
    number = _as_quantity(q, "asInteger").number
    if number != number.to_integral_value() or abs(number) > _MAX_INT:
        raise ValueError("cannot convert value to integer")
    return int(number)


def as_approximate_float(q: Any) -> float:
    return _as_quantity(q, "asApproximateFloat").as_approximate_float()


def add(q: Any, other: Any) -> dict[str, Any]:
    return _quantity_value(_as_quantity(q, "add") + _as_quantity(other, "add"))


def sub(q: Any, other: Any) -> dict[str, Any]:
    return _quantity_value(_as_quantity(q, "sub") - _as_quantity(other, "sub"))


def compare_to(a: Any, b: Any) -> int:
    if _tagged(a, "semver"):
        return _semver_cmp(a, _need(b, "semver", "compareTo"))
    return _as_quantity(a, "compareTo").cmp(_as_quantity(b, "compareTo"))


def is_less_than(a: Any, b: Any) -> bool:
    return compare_to(a, b) < 0


def is_greater_than(a: Any, b: Any) -> bool:
    return compare_to(a, b) > 0


# ----- urls ----------------------------------------------------------------------------------


def url(text: str) -> dict[str, Any]:
    parsed = _parse_url(text)
    if parsed is None:
        raise ValueError(f"URL parse error during conversion from string: {text!r}")
    return {_TAG: "url", "value": text}


def _parse_url(text: str) -> urllib.parse.SplitResult | None:
    """Go's url.ParseRequestURI: an absolute URL or an absolute path, no fragment."""
    if not text or "#" in text or any(c in text for c in " \t\n"):
        return None
    try:
        parsed = urllib.parse.urlsplit(text)
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return None
    if not parsed.scheme and not text.startswith("/"):
        return None
    return parsed


def is_url(text: str) -> bool:
    return _parse_url(text) is not None


def _url_parts(value: Any, function: str) -> urllib.parse.SplitResult:
    parsed = _parse_url(_need(value, "url", function)["value"])
    assert parsed is not None
    return parsed


def get_scheme(value: Any) -> str:
    return _url_parts(value, "getScheme").scheme


def get_host(value: Any) -> str:
    return _url_parts(value, "getHost").netloc.rsplit("@", 1)[-1]


def get_hostname(value: Any) -> str:
    host = get_host(value)
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if ":" in host else host


def get_port(value: Any) -> str:
    host = get_host(value)
    tail = host.rsplit("]", 1)[-1]
    return tail.rsplit(":", 1)[1] if ":" in tail else ""


def get_escaped_path(value: Any) -> str:
    return _url_parts(value, "getEscapedPath").path


def get_query(value: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(_url_parts(value, "getQuery").query, keep_blank_values=True)


# ----- ip and cidr ---------------------------------------------------------------------------


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:  # zones are refused upstream
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return None  # upstream refuses IPv4-mapped IPv6 addresses
    return address


def ip(value: Any) -> dict[str, Any]:
    if _tagged(value, "cidr"):
        return {_TAG: "ip", "value": str(ipaddress.ip_interface(value["value"]).ip)}
    address = _parse_ip(value)
    if address is None:
        raise ValueError(f"IP Address {value!r} parse error during conversion from string")
    return {_TAG: "ip", "value": str(address)}


def is_ip(text: str) -> bool:
    return _parse_ip(text) is not None


def _ip_of(value: Any, function: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(_need(value, "ip", function)["value"])


def is_canonical(text: str) -> bool:
    address = _parse_ip(text)
    if address is None:
        raise ValueError(f"IP Address {text!r} parse error during conversion from string")
    return str(address) == text


def family(value: Any) -> int:
    return _ip_of(value, "family").version


def is_unspecified(value: Any) -> bool:
    return _ip_of(value, "isUnspecified").is_unspecified


def is_loopback(value: Any) -> bool:
    return _ip_of(value, "isLoopback").is_loopback


def is_link_local_multicast(value: Any) -> bool:
    address = _ip_of(value, "isLinkLocalMulticast")
    if address.version == 4:
        return address in ipaddress.ip_network("224.0.0.0/24")
    return address.is_multicast and (int(address) >> 112) & 0xF == 2


def is_link_local_unicast(value: Any) -> bool:
    address = _ip_of(value, "isLinkLocalUnicast")
    return address.is_link_local and not address.is_multicast


def is_global_unicast(value: Any) -> bool:
    address = _ip_of(value, "isGlobalUnicast")
    broadcast = address.version == 4 and str(address) == "255.255.255.255"
    return not (
        address.is_unspecified or address.is_loopback or address.is_multicast
        or address.is_link_local or broadcast
    )  # fmt: skip


def _parse_cidr(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    if "/" not in text or "%" in text:
        return None
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        return None
    if _parse_ip(str(interface.ip)) is None or str(interface.ip) != text.split("/")[0].lower():
        return None
    return interface


def cidr(text: str) -> dict[str, Any]:
    interface = _parse_cidr(text)
    if interface is None:
        raise ValueError(f"network address {text!r} parse error during conversion from string")
    return {_TAG: "cidr", "value": str(interface)}


def is_cidr(text: str) -> bool:
    return _parse_cidr(text) is not None


def _network(value: Any, function: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_interface(_need(value, "cidr", function)["value"]).network


def contains_ip(value: Any, other: Any) -> bool:
    address = _ip_of(ip(other) if isinstance(other, str) else other, "containsIP")
    return address in _network(value, "containsIP")


def contains_cidr(value: Any, other: Any) -> bool:
    inner = _network(cidr(other) if isinstance(other, str) else other, "containsCIDR")
    outer = _network(value, "containsCIDR")
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def masked(value: Any) -> dict[str, Any]:
    return {_TAG: "cidr", "value": str(_network(value, "masked"))}


def prefix_length(value: Any) -> int:
    return _network(value, "prefixLength").prefixlen


# ----- semver --------------------------------------------------------------------------------


def _semver_text(text: str, normalize: bool) -> str | None:
    if normalize:
        # upstream's normalisation: "v" prefix, missing minor/patch, leading zeros
        text = text.removeprefix("v")
        cut = min((i for i in (text.find("-"), text.find("+")) if i >= 0), default=len(text))
        parts = text[:cut].split(".")
        parts += ["0"] * (3 - len(parts))
        text = ".".join(str(int(p)) if p.isdigit() else p for p in parts) + text[cut:]
    return text if _SEMVER.match(text) else None


def semver(text: str, normalize: bool = False) -> dict[str, Any]:
    parsed = _semver_text(text, normalize)
    if parsed is None:
        raise ValueError(f"Semver {text!r} parse error during conversion from string")
    return {_TAG: "semver", "value": parsed}


def is_semver(text: str, normalize: bool = False) -> bool:
    return _semver_text(text, normalize) is not None


def _semver_parts(value: Any, function: str) -> tuple[int, int, int, str]:
    match = _SEMVER.match(_need(value, "semver", function)["value"])
    assert match is not None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) or ""


def major(value: Any) -> int:
    return _semver_parts(value, "major")[0]


def minor(value: Any) -> int:
    return _semver_parts(value, "minor")[1]


def patch(value: Any) -> int:
    return _semver_parts(value, "patch")[2]


def _semver_cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
    pa, pb = _semver_parts(a, "compareTo"), _semver_parts(b, "compareTo")
    if pa[:3] != pb[:3]:
        return -1 if pa[:3] < pb[:3] else 1
    return _prerelease_cmp(pa[3], pb[3])


def _prerelease_cmp(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a or not b:
        return 1 if not a else -1  # a release sorts after its pre-releases
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return -1 if len(a.split(".")) < len(b.split(".")) else 1


# ----- format (k8s.io/apiserver/pkg/cel/library/format.go) -------------------------------------


def _uuid_problems(value: str) -> list[str]:
    try:
        uuid.UUID(value)
    except ValueError:
        return ["does not match the UUID format"]
    return []


def _uri_problems(value: str) -> list[str]:
    return [] if is_url(value) else ["invalid URI"]


def _regex_problems(pattern: str, message: str) -> Callable[[str], list[str]]:
    compiled = re.compile(pattern)
    return lambda value: [] if compiled.fullmatch(value) else [message]


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """``*Prefix`` formats: a trailing dash is allowed, as for generateName."""
    return lambda value: check(value[:-1] if value.endswith("-") else value)


_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": names.is_dns1123_label,
    "dns1123Subdomain": names.is_dns1123_subdomain,
    "dns1035Label": names.is_dns1035_label,
    "qualifiedName": names.is_qualified_name,
    "dns1123LabelPrefix": _prefix(names.is_dns1123_label),
    "dns1123SubdomainPrefix": _prefix(names.is_dns1123_subdomain),
    "dns1035LabelPrefix": _prefix(names.is_dns1035_label),
    "labelValue": names.is_valid_label_value,
    "uri": _uri_problems,
    "uuid": _uuid_problems,
    "byte": _regex_problems(
        r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", "invalid base64"
    ),
    "date": _regex_problems(r"\d{4}-\d{2}-\d{2}", "invalid date"),
    "datetime": _regex_problems(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", "invalid datetime"
    ),
}


def _format_value(name: str) -> dict[str, Any]:
    return {_TAG: "format", "value": name}


def format_named(name: str) -> Any:
    optional = _optional_type()
    return optional.of(_format_value(name)) if name in _FORMATS else optional.none()


def validate(fmt: Any, value: str) -> Any:
    problems = _FORMATS[_need(fmt, "format", "validate")["value"]](value)
    optional = _optional_type()
    return optional.of(problems) if problems else optional.none()


def _optional_type() -> Any:
    import cel  # already imported by the evaluator; the package is heavy to import eagerly

    return cel.OptionalValue


# ----- optional field selection (rewritten from ``.?name`` and ``[?key]``) ---------------------


def opt_select(target: Any, key: Any) -> Any:
    """``target.?key``: optional.of(field) when present, optional.none() otherwise."""
    optional = _optional_type()
    if isinstance(target, optional):
        if not target.has_value():
            return target
        target = target.value()
    if isinstance(target, dict) and key in target:
        return optional.of(target[key])
    if isinstance(target, list) and isinstance(key, int) and -1 < key < len(target):
        return optional.of(target[key])
    return optional.none()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # lists
    "isSorted": is_sorted, "sum": sum_, "min": min_, "max": max_,
    "indexOf": index_of, "lastIndexOf": last_index_of,
    # strings
    "charAt": char_at, "substring": substring, "replace": replace, "split": split,
    "join": join, "lowerAscii": lower_ascii, "upperAscii": upper_ascii, "trim": trim,
    "reverse": reverse, "strings.quote": quote, "format": format_,
    # sets
    "sets.contains": lambda a, b: all(x in a for x in b),
    "sets.equivalent": lambda a, b: all(x in b for x in a) and all(x in a for x in b),
    "sets.intersects": lambda a, b: any(x in b for x in a),
    # regex
    "find": find, "findAll": find_all,
    # quantity
    "quantity": quantity, "isQuantity": is_quantity, "sign": sign, "isInteger": is_integer,
    "asInteger": as_integer, "asApproximateFloat": as_approximate_float, "add": add, "sub": sub,
    "compareTo": compare_to, "isLessThan": is_less_than, "isGreaterThan": is_greater_than,
    # urls
    "url": url, "isURL": is_url, "getScheme": get_scheme, "getHost": get_host,
    "getHostname": get_hostname, "getPort": get_port, "getEscapedPath": get_escaped_path,
    "getQuery": get_query,
    # ip and cidr
    "ip": ip, "isIP": is_ip, "ip.isCanonical": is_canonical, "family": family,
    "isUnspecified": is_unspecified, "isLoopback": is_loopback,
    "isLinkLocalMulticast": is_link_local_multicast, "isLinkLocalUnicast": is_link_local_unicast,
    "isGlobalUnicast": is_global_unicast, "cidr": cidr, "isCIDR": is_cidr,
    "containsIP": contains_ip, "containsCIDR": contains_cidr, "masked": masked,
    "prefixLength": prefix_length,
    # semver
    "semver": semver, "isSemver": is_semver, "major": major, "minor": minor, "patch": patch,
    # format
    **{f"format.{name}": (lambda n=name: _format_value(n)) for name in _FORMATS},
    "format.named": format_named, "validate": validate,
    # optional selection
    "kjOptSelect": opt_select,
}  # fmt: skip
