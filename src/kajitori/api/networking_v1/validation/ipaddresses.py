"""Validation of IPAddresses (upstream: ValidateIPAddress in pkg/apis/networking/validation).

Owns: the name is the IP address itself, in strict canonical form
(upstream's ``IsValidIP``); ``spec.parentRef`` is required, with a
DNS-subdomain group when set (the core group of Services is empty), a
required resource and name, and an optional namespace, each usable as a
path segment. The parentRef never changes; upstream prints the new one as
Go's ``%#v`` in that error.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core
from kajitori.machinery import field, gostrings, names

Object = dict[str, Any]


def validate_ip_address_name(name: str, prefix: bool) -> list[str]:
    """ValidateIPAddressName: generateName has no meaning here, so ``prefix`` is ignored."""
    return names.is_valid_ip(name)


def _validate_parent_ref(ref: Any, path: field.Path) -> field.ErrorList:
    if not isinstance(ref, dict):
        return field.ErrorList([field.required(path)])
    errs = field.ErrorList()
    group = str(ref.get("group") or "")
    if group:
        errs.extend(core.dns1123_subdomain(group, path.child("group")))
    for key in ("resource", "name"):
        value = str(ref.get(key) or "")
        if not value:
            errs.append(field.required(path.child(key)))
        else:
            errs.extend(
                core.from_details(path.child(key), value, names.is_path_segment_name(value))
            )
    namespace = str(ref.get("namespace") or "")
    if namespace:
        errs.extend(
            core.from_details(
                path.child("namespace"), namespace, names.is_path_segment_name(namespace)
            )
        )
    return errs


def validate_ip_address(obj: Object) -> field.ErrorList:
    """ValidateIPAddress."""
    errs = common.validate_meta(obj, namespaced=False, name_validator=validate_ip_address_name)
    parent = common.dict_at(obj, "spec").get("parentRef")
    errs.extend(_validate_parent_ref(parent, field.Path("spec", "parentRef")))
    return errs


def _go_parent_ref(ref: Any) -> Any:
    if not isinstance(ref, dict):
        return None
    return gostrings.struct(
        "networking.ParentReference",
        (
            (k.capitalize(), gostrings.quote(ref.get(k)))
            for k in ("group", "resource", "namespace", "name")
        ),
    )


def _set_fields(ref: Any) -> Object | None:
    # Go compares the structs: an empty group and an absent one are the same.
    return {k: v for k, v in ref.items() if v} if isinstance(ref, dict) else None


def validate_ip_address_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateIPAddressUpdate: metadata, and a parentRef that never changes."""
    errs = common.validate_meta_update(new, old)
    new_ref = common.dict_at(new, "spec").get("parentRef")
    if _set_fields(new_ref) != _set_fields(common.dict_at(old, "spec").get("parentRef")):
        errs.append(
            field.invalid(
                field.Path("spec", "parentRef"), _go_parent_ref(new_ref), common.IMMUTABLE
            )
        )
    return errs
