"""Validation of NetworkPolicies (upstream: ValidateNetworkPolicy in pkg/apis/networking/validation).

Owns ports (protocol, port number or name, endPort ranges), peers (exactly
one kind when ipBlock is used), ipBlock CIDRs and ``policyTypes``. CIDRs
already stored in the old object are accepted unchanged on update, as
upstream's ``AllowCIDRsEvenIfInvalid``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from typing import Any, TypeGuard

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, names

Object = dict[str, Any]

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
_BAD_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _dicts(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_network_policy_port(port: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        errs.append(field.not_supported(path.child("protocol"), protocol, PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        if end is not None:
            detail = "may not be specified when `port` is not specified"
            errs.append(field.invalid(path.child("endPort"), end, detail))
    elif _is_int(number):
        for msg in names.is_valid_port_num(number):
            errs.append(field.invalid(path.child("port"), number, msg))
        if _is_int(end):
            if end < number:
                detail = "must be greater than or equal to `port`"
                errs.append(field.invalid(path.child("endPort"), end, detail))
            for msg in names.is_valid_port_num(end):
                errs.append(field.invalid(path.child("endPort"), end, msg))
    else:
        if end is not None:
            detail = "may not be specified when `port` is non-numeric"
            errs.append(field.invalid(path.child("endPort"), end, detail))
        for msg in names.is_valid_port_name(str(number)):
            errs.append(field.invalid(path.child("port"), number, msg))
    return errs


def _parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _validate_cidr(value: Any, path: field.Path, allowed: Collection[str]) -> field.ErrorList:
    if value in allowed or _parse_cidr(str(value)) is not None:
        return field.ErrorList()
    return field.ErrorList([field.invalid(path, value, _BAD_CIDR)])


def validate_ip_block(block: Object, path: field.Path, allowed: Collection[str]) -> field.ErrorList:
    cidr = block.get("cidr") or ""
    if not cidr:
        return field.ErrorList([field.required(path.child("cidr"))])
    errs = _validate_cidr(cidr, path.child("cidr"), allowed)
    network = _parse_cidr(cidr)
    if network is None:
        return errs
    for i, text in enumerate(block.get("except") or []):
        except_path = path.child("except").index(i)
        errs.extend(_validate_cidr(text, except_path, allowed))
        excepted = _parse_cidr(str(text))
        if excepted is None:
            continue
        inside = excepted.version == network.version and excepted.network_address in network
        if not inside or network.prefixlen >= excepted.prefixlen:
            errs.append(field.invalid(except_path, text, "must be a strict subset of `cidr`"))
    return errs


def validate_network_policy_peer(
    peer: Object, path: field.Path, *, allowed_cidrs: Collection[str], allow_invalid: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            errs.extend(
                common.validate_label_selector(
                    peer[key], path.child(key), allow_invalid_label_value=allow_invalid
                )
            )
    block = peer.get("ipBlock")
    if block is not None:
        count += 1
        errs.extend(
            validate_ip_block(common.dict_at(peer, "ipBlock"), path.child("ipBlock"), allowed_cidrs)
        )
    if count == 0:
        errs.append(field.required(path, "must specify a peer"))
    elif count > 1 and block is not None:
        errs.append(field.forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def _validate_rules(
    spec: Object, path: field.Path, *, allowed_cidrs: Collection[str], allow_invalid: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(_dicts(spec.get(direction))):
            rule_path = path.child(direction).index(i)
            for j, port in enumerate(_dicts(rule.get("ports"))):
                errs.extend(validate_network_policy_port(port, rule_path.child("ports").index(j)))
            for j, peer in enumerate(_dicts(rule.get(peers_key))):
                errs.extend(
                    validate_network_policy_peer(
                        peer,
                        rule_path.child(peers_key).index(j),
                        allowed_cidrs=allowed_cidrs,
                        allow_invalid=allow_invalid,
                    )
                )
    return errs


def _validate_policy_types(types: Any, path: field.Path) -> field.ErrorList:
    types = types if isinstance(types, list) else []
    if len(types) > len(POLICY_TYPES):
        return field.ErrorList(
            [field.invalid(path, types, "may not specify more than two policyTypes")]
        )
    return field.ErrorList(
        field.not_supported(path.index(i), value, POLICY_TYPES)
        for i, value in enumerate(types)
        if value not in POLICY_TYPES
    )


def validate_network_policy_spec(
    spec: Object,
    path: field.Path,
    *,
    allowed_cidrs: Collection[str] = (),
    allow_invalid_label_value: bool = False,
) -> field.ErrorList:
    errs = common.validate_label_selector(
        spec.get("podSelector"),
        path.child("podSelector"),
        allow_invalid_label_value=allow_invalid_label_value,
    )
    errs.extend(
        _validate_rules(
            spec, path, allowed_cidrs=allowed_cidrs, allow_invalid=allow_invalid_label_value
        )
    )
    errs.extend(_validate_policy_types(spec.get("policyTypes"), path.child("policyTypes")))
    return errs


def validate_network_policy(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_network_policy_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def _stored_cidrs(spec: Object) -> set[str]:
    cidrs: set[str] = set()
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for rule in _dicts(spec.get(direction)):
            for peer in _dicts(rule.get(peers_key)):
                block = common.dict_at(peer, "ipBlock")
                if block.get("cidr"):
                    cidrs.add(str(block["cidr"]))
                cidrs.update(str(text) for text in block.get("except") or [])
    return cidrs


def validate_network_policy_update(new: Object, old: Object) -> field.ErrorList:
    old_spec = common.dict_at(old, "spec")
    errs = common.validate_meta_update(new, old)
    errs.extend(
        validate_network_policy_spec(
            common.dict_at(new, "spec"),
            field.Path("spec"),
            allowed_cidrs=_stored_cidrs(old_spec),
            allow_invalid_label_value=not common.selector_is_valid(old_spec.get("podSelector")),
        )
    )
    return errs
