"""Validation of ServiceCIDRs (upstream: ValidateServiceCIDR in pkg/apis/networking/validation).

Owns: a DNS-subdomain name; ``spec.cidrs`` holds one CIDR, or two of
different families, each in strict canonical form (upstream's
``IsValidCIDR``: no leading zeros, no IPv4-mapped IPv6, no host bits, and
spelled as Go prints it). On update the list may not change, except that
a single-stack ServiceCIDR may gain a second CIDR of the other family
(upstream's single- to dual-stack upgrade, kubernetes#131261). The status
endpoint checks metadata only, as upstream.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, gostrings, names

Object = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

BAD_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_NOT_DUAL = (
    "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"
)
_SLOPPY_IPV4 = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")


def _sloppy_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Go's ParseIPSloppy: IPv4 octets may carry leading zeros (read as decimal).
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _SLOPPY_IPV4.fullmatch(text):
        octets = [int(part) for part in text.split(".")]
        if all(octet <= 255 for octet in octets):
            return ipaddress.IPv4Address(".".join(map(str, octets)))
    return None


def parse_cidr_sloppy(value: str) -> Network | None:
    """netutils.ParseCIDRSloppy: the network of ``value`` (host bits dropped), or None."""
    address, slash, bits = value.partition("/")
    ip = _sloppy_address(address)
    if not slash or ip is None or not bits.isascii() or not bits.isdigit():
        return None
    if int(bits) > ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{int(bits)}", strict=False)


def _strict_problem(value: str) -> str | None:
    # What upstream's netip.ParsePrefix pass finds once the sloppy parse succeeded.
    address, _, bits = value.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "must not have leading 0s in IP or prefix length"
    if len(bits) > 1 and bits.startswith("0"):
        return "must not have leading 0s in IP or prefix length"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "must not have an IPv4-mapped IPv6 address"
    if ipaddress.ip_network(value, strict=False).network_address != ip:
        return "must not have bits set beyond the prefix length"
    return None


def is_valid_cidr(value: str, path: field.Path) -> field.ErrorList:
    """Upstream's strict ``IsValidCIDR`` for fields added since 1.33."""
    network = parse_cidr_sloppy(value)
    if network is None:
        return field.ErrorList([field.invalid(path, value, BAD_CIDR)])
    problem = _strict_problem(value)
    if problem is not None:
        return field.ErrorList([field.invalid(path, value, problem)])
    canonical = f"{network.network_address.compressed}/{network.prefixlen}"
    if value != canonical:
        return field.ErrorList(
            [field.invalid(path, value, f'must be in canonical form ("{canonical}")')]
        )
    return field.ErrorList()


def _go_spec(cidrs: list[Any]) -> gostrings.GoValue:
    return gostrings.struct(
        "networking.ServiceCIDRSpec", (("CIDRs", gostrings.string_slice(cidrs)),)
    )


def _is_dual_stack(cidrs: list[Any]) -> bool:
    networks = [parse_cidr_sloppy(str(c)) for c in cidrs]
    if any(n is None for n in networks):
        return False
    return {n.version for n in networks if n is not None} == {4, 6}


def _cidrs(obj: Object) -> list[Any]:
    cidrs = common.dict_at(obj, "spec").get("cidrs")
    return list(cidrs) if isinstance(cidrs, list) else []


def validate_service_cidr(obj: Object) -> field.ErrorList:
    """ValidateServiceCIDR."""
    errs = common.validate_meta(obj, namespaced=False, name_validator=names.name_is_dns_subdomain)
    path = field.Path("spec", "cidrs")
    cidrs = _cidrs(obj)
    if not cidrs:
        errs.append(field.required(path, "at least one CIDR required"))
        return errs
    if len(cidrs) > 2:
        errs.append(field.invalid(path, _go_spec(cidrs), "may only hold up to 2 values"))
        return errs
    if len(cidrs) == 2 and not _is_dual_stack(cidrs):
        errs.append(field.invalid(path, _go_spec(cidrs), _NOT_DUAL))
        return errs
    for i, cidr in enumerate(cidrs):
        errs.extend(is_valid_cidr(str(cidr), path.index(i)))
    return errs


def validate_service_cidr_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateServiceCIDRUpdate: CIDRs stay, or one more of the other family is added."""
    errs = common.validate_meta_update(new, old)
    path = field.Path("spec", "cidrs")
    new_cidrs, old_cidrs = _cidrs(new), _cidrs(old)
    if len(new_cidrs) == len(old_cidrs):
        for i, (was, now) in enumerate(zip(old_cidrs, new_cidrs, strict=True)):
            if was != now:
                errs.append(field.invalid(path.index(i), now, common.IMMUTABLE))
    elif len(old_cidrs) == 1 and len(new_cidrs) == 2:
        if new_cidrs[0] != old_cidrs[0]:
            errs.append(field.invalid(path.index(0), new_cidrs[0], common.IMMUTABLE))
        errs.extend(validate_service_cidr(new))
    else:
        shown = gostrings.GoValue(gostrings.string_slice(new_cidrs or None))
        errs.append(field.invalid(path, shown, common.IMMUTABLE))
    return errs


def validate_service_cidr_status_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateServiceCIDRStatusUpdate: metadata only (conditions are not checked upstream)."""
    return common.validate_meta_update(new, old)
