"""Validation of EndpointSlices (upstream: pkg/apis/discovery/validation).

Owns the address type (required, immutable), per-type address syntax, the
size limits (1000 endpoints, 1..100 addresses each, 100 ports, 16 topology
labels) and port naming. ``deprecatedTopology`` is reported at upstream's
internal name ``topology``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core_validation
from kajitori.api.core_v1.validation import endpoints as core_endpoints
from kajitori.machinery import field, names

Object = dict[str, Any]

# Sorted, as upstream lists a sets.String.
ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
# "IP" was only ever valid in v1alpha1; stored slices may still carry it.
DEPRECATED_ADDRESS_TYPES = ("IP",)
PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_TOPOLOGY_LABELS = 16
MAX_ADDRESSES = 100
MAX_PORTS = 100
MAX_ENDPOINTS = 1000


def _items(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    # Go treats an IPv4-mapped IPv6 address as IPv4 (To4() != nil).
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _validate_ipv4(value: str, path: field.Path) -> field.ErrorList:
    if isinstance(_parse_ip(value), ipaddress.IPv4Address):
        return field.ErrorList()
    return field.ErrorList([field.invalid(path, value, "must be a valid IPv4 address")])


def _validate_ipv6(value: str, path: field.Path) -> field.ErrorList:
    if isinstance(_parse_ip(value), ipaddress.IPv6Address):
        return field.ErrorList()
    return field.ErrorList([field.invalid(path, value, "must be a valid IPv6 address")])


def validate_fully_qualified_domain_name(name: str, path: field.Path) -> field.ErrorList:
    """``IsFullyQualifiedDomainName``: a subdomain of at least two labels (trailing '.' ok)."""
    if not name:
        return field.ErrorList([field.required(path)])
    name = name.removesuffix(".")
    errs = names.is_dns1123_subdomain(name)
    if errs:
        return field.ErrorList([field.invalid(path, name, ",".join(errs))])
    labels = name.split(".")
    if len(labels) < 2:
        detail = "should be a domain with at least two segments separated by dots"
        return field.ErrorList([field.invalid(path, name, detail)])
    for label in labels:
        errs = names.is_dns1123_label(label)
        if errs:
            return field.ErrorList([field.invalid(path, label, ",".join(errs))])
    return field.ErrorList()


def _validate_address(address: Any, address_type: str, path: field.Path) -> field.ErrorList:
    value = address if isinstance(address, str) else ""
    errs = field.ErrorList()
    # Unknown types fall through unvalidated, as upstream.
    if address_type == "IP":
        errs.extend(core_validation.ip_address(value, path))
    elif address_type in ("IPv4", "IPv6"):
        check = _validate_ipv4 if address_type == "IPv4" else _validate_ipv6
        errs.extend(check(value, path))
        errs.extend(core_endpoints.validate_non_special_ip(value, path))
    elif address_type == "FQDN":
        errs.extend(validate_fully_qualified_domain_name(value, path))
    return errs


def _validate_endpoint(endpoint: Object, address_type: str, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    addresses = endpoint.get("addresses") or []
    addresses_path = path.child("addresses")
    if not addresses:
        errs.append(field.required(addresses_path, "must contain at least 1 address"))
    elif len(addresses) > MAX_ADDRESSES:
        errs.append(field.too_many(addresses_path, len(addresses), MAX_ADDRESSES))
    for i, address in enumerate(addresses):
        errs.extend(_validate_address(address, address_type, addresses_path.index(i)))
    topology = endpoint.get("deprecatedTopology")
    topology_path = path.child("topology")
    if isinstance(topology, dict) and len(topology) > MAX_TOPOLOGY_LABELS:
        errs.append(field.too_many(topology_path, len(topology), MAX_TOPOLOGY_LABELS))
    errs.extend(common.validate_labels(topology, topology_path))
    hostname = endpoint.get("hostname")
    if isinstance(hostname, str):
        errs.extend(core_validation.dns1123_label(hostname, path.child("hostname")))
    return errs


def _validate_endpoints(endpoints: Any, address_type: str, path: field.Path) -> field.ErrorList:
    items = _items(endpoints)
    if len(items) > MAX_ENDPOINTS:
        return field.ErrorList([field.too_many(path, len(items), MAX_ENDPOINTS)])
    errs = field.ErrorList()
    for i, endpoint in enumerate(items):
        errs.extend(_validate_endpoint(endpoint, address_type, path.index(i)))
    return errs


def _validate_port(port: Object, path: field.Path, seen: set[str]) -> field.ErrorList:
    errs = field.ErrorList()
    name = port.get("name") or ""
    if name:
        errs.extend(core_validation.dns1123_label(name, path.child("name")))
    if name in seen:
        errs.append(field.duplicate(path.child("name"), name))
    seen.add(name)
    protocol = port.get("protocol")
    if protocol is None:
        errs.append(field.required(path.child("protocol")))
    elif protocol not in PORT_PROTOCOLS:
        errs.append(field.not_supported(path.child("protocol"), protocol, PORT_PROTOCOLS))
    app_protocol = port.get("appProtocol")
    if isinstance(app_protocol, str):
        errs.extend(core_validation.qualified_name(app_protocol, path.child("appProtocol")))
    return errs


def _validate_ports(ports: Any, path: field.Path) -> field.ErrorList:
    items = _items(ports)
    if len(items) > MAX_PORTS:
        return field.ErrorList([field.too_many(path, len(items), MAX_PORTS)])
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, port in enumerate(items):
        errs.extend(_validate_port(port, path.index(i), seen))
    return errs


def _validate_address_type(address_type: Any, supported: tuple[str, ...]) -> field.ErrorList:
    path = field.Path("addressType")
    if not address_type:
        return field.ErrorList([field.required(path)])
    if address_type not in supported:
        return field.ErrorList([field.not_supported(path, address_type, supported)])
    return field.ErrorList()


def _validate(obj: Object, supported: tuple[str, ...]) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    address_type = obj.get("addressType") or ""
    errs.extend(_validate_address_type(address_type, supported))
    errs.extend(_validate_endpoints(obj.get("endpoints"), address_type, field.Path("endpoints")))
    errs.extend(_validate_ports(obj.get("ports"), field.Path("ports")))
    return errs


def validate_endpoint_slice(obj: Object) -> field.ErrorList:
    return _validate(obj, ADDRESS_TYPES)


def validate_endpoint_slice_update(new: Object, old: Object) -> field.ErrorList:
    """The new slice (the deprecated "IP" type tolerated), addressType immutable, metadata."""
    supported = tuple(sorted(ADDRESS_TYPES + DEPRECATED_ADDRESS_TYPES))
    errs = _validate(new, supported)
    errs.extend(
        common.validate_immutable(
            new.get("addressType"), old.get("addressType"), field.Path("addressType")
        )
    )
    errs.extend(common.validate_meta_update(new, old))
    return errs
