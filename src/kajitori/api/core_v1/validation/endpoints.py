"""Validation of Endpoints (upstream ValidateEndpoints / ValidateEndpointsUpdate).

Owns subset shape (each subset has addresses), address IPs (valid and not
special: unspecified, loopback, link-local), and port naming rules.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def validate_non_special_ip(ip: str, path: field.Path) -> field.ErrorList:
    """ValidateNonSpecialIP: endpoints may not point at unspecified, loopback or link-local IPs."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return field.ErrorList([field.invalid(path, ip, "must be a valid IP address")])
    if address.is_unspecified:
        return field.ErrorList([field.invalid(path, ip, f"may not be unspecified ({ip})")])
    if address.is_loopback:
        return field.ErrorList(
            [field.invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")]
        )
    if address.is_link_local:
        return field.ErrorList(
            [
                field.invalid(
                    path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
                )
            ]
        )
    if address.is_multicast:
        return field.ErrorList(
            [
                field.invalid(
                    path,
                    ip,
                    "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
                )
            ]
        )
    return field.ErrorList()


def _validate_address(address: Object, path: field.Path) -> field.ErrorList:
    ip = address.get("ip") or ""
    errs = common.ip_address(ip, path.child("ip"))
    if not errs:
        errs.extend(validate_non_special_ip(ip, path.child("ip")))
    if hostname := address.get("hostname"):
        errs.extend(common.dns1123_label(hostname, path.child("hostname")))
    if node_name := address.get("nodeName"):
        errs.extend(
            common.from_details(
                path.child("nodeName"), node_name, names.name_is_dns_subdomain(node_name, False)
            )
        )
    return errs


def _validate_port(port: Object, *, require_name: bool, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(field.required(path.child("name")))
    elif name:
        errs.extend(common.dns1123_label(name, path.child("name")))
    errs.extend(common.port_num(port.get("port"), path.child("port")))
    errs.extend(common.protocol(port.get("protocol"), path.child("protocol")))
    if port.get("appProtocol") is not None:
        errs.extend(common.qualified_name(port["appProtocol"], path.child("appProtocol")))
    return errs


def _validate_subsets(subsets: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, subset in enumerate(_items(subsets)):
        subset_path = path.index(i)
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            errs.append(
                field.required(subset_path, "must specify `addresses` or `notReadyAddresses`")
            )
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_items(subset.get(key))):
                errs.extend(_validate_address(address, subset_path.child(key).index(j)))
        ports = _items(subset.get("ports"))
        for j, port in enumerate(ports):
            errs.extend(
                _validate_port(
                    port, require_name=len(ports) > 1, path=subset_path.child("ports").index(j)
                )
            )
    return errs


def validate_endpoints(endpoints: Object) -> field.ErrorList:
    """ValidateEndpointsCreate."""
    errs = objectmeta.validate_object_meta(
        _dict(endpoints.get("metadata")),
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    errs.extend(_validate_subsets(endpoints.get("subsets"), field.Path("subsets")))
    return errs


def validate_endpoints_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(_validate_subsets(new.get("subsets"), field.Path("subsets")))
    return errs
