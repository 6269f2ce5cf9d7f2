"""Validation of Nodes (upstream ValidateNode / ValidateNodeUpdate).

Owns node name rules, taints, pod CIDRs and the fields that may only go from
unset to set (podCIDR(s), providerID).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _validate_taints(taints: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    seen: set[tuple[Any, Any]] = set()
    for i, taint in enumerate(taints or ()):
        taint = _dict(taint)
        item_path = path.index(i)
        key = taint.get("key") or ""
        errs.extend(common.qualified_name(key, item_path.child("key")))
        errs.extend(common.label_value(taint.get("value") or "", item_path.child("value")))
        effect = taint.get("effect")
        errs.extend(common.enum(effect, item_path.child("effect"), TAINT_EFFECTS))
        if (key, effect) in seen:
            errs.append(field.duplicate(item_path, {"key": key, "effect": effect}))
        seen.add((key, effect))
    return errs


def _validate_pod_cidrs(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    cidrs = spec.get("podCIDRs") or []
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            detail = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
            errs.append(field.invalid(path.child("podCIDRs").index(i), cidr, detail))
    if len(cidrs) > 2:
        errs.append(
            field.invalid(
                path.child("podCIDRs"),
                cidrs,
                "may specify no more than one CIDR for each IP family",
            )
        )
    return errs


def validate_node(node: Object) -> field.ErrorList:
    """ValidateNode."""
    errs = objectmeta.validate_object_meta(
        _dict(node.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    spec = _dict(node.get("spec"))
    path = field.Path("spec")
    errs.extend(_validate_taints(spec.get("taints"), path.child("taints")))
    errs.extend(_validate_pod_cidrs(spec, path))
    return errs


def validate_node_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateNodeUpdate: podCIDR(s) and providerID may only be set once."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(validate_node(new))
    new_spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    if old_spec.get("podCIDRs") and new_spec.get("podCIDRs") != old_spec.get("podCIDRs"):
        errs.append(
            field.forbidden(
                field.Path("spec", "podCIDRs"),
                'node updates may not change podCIDR except from "" to valid',
            )
        )
    if old_spec.get("providerID") and new_spec.get("providerID") != old_spec.get("providerID"):
        errs.append(
            field.forbidden(
                field.Path("spec", "providerID"),
                'node updates may not change providerID except from "" to valid',
            )
        )
    return errs
