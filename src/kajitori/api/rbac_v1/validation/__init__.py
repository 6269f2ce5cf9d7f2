"""Validation of rbac.authorization.k8s.io/v1 objects, one module per resource.

This package module holds what the four kinds share (upstream:
pkg/apis/rbac/validation): the name rule, policy rules and binding
subjects/roleRef. It imports none of the resource modules.
"""

from __future__ import annotations

from typing import Any

from kajitori.api import rbac_v1
from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, names

Object = dict[str, Any]

SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def validate_rbac_name(name: str, prefix: bool) -> list[str]:
    """``ValidateRBACName``: names only need to be path segments (prefix is ignored)."""
    return names.is_path_segment_name(name)


def validate_meta(obj: Object, *, namespaced: bool) -> field.ErrorList:
    return common.validate_meta(obj, namespaced=namespaced, name_validator=validate_rbac_name)


def validate_policy_rule(rule: Object, path: field.Path, *, namespaced: bool) -> field.ErrorList:
    """``ValidatePolicyRule``: verbs, and resources or (cluster-only) non-resource URLs."""
    errs = field.ErrorList()
    if not rule.get("verbs"):
        errs.append(field.required(path.child("verbs"), "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs")
    if urls:
        if namespaced:
            detail = "namespaced rules cannot apply to non-resource URLs"
            errs.append(field.invalid(path.child("nonResourceURLs"), urls, detail))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            detail = "rules cannot apply to both regular resources and non-resource URLs"
            errs.append(field.invalid(path.child("nonResourceURLs"), urls, detail))
        return errs
    if not rule.get("apiGroups"):
        detail = "resource rules must supply at least one api group"
        errs.append(field.required(path.child("apiGroups"), detail))
    if not rule.get("resources"):
        detail = "resource rules must supply at least one resource"
        errs.append(field.required(path.child("resources"), detail))
    return errs


def validate_rules(rules: Any, *, namespaced: bool) -> field.ErrorList:
    errs = field.ErrorList()
    for i, rule in enumerate(rules or []):
        rule = rule if isinstance(rule, dict) else {}
        errs.extend(validate_policy_rule(rule, field.Path("rules").index(i), namespaced=namespaced))
    return errs


def validate_role_ref(role_ref: Object, kinds: tuple[str, ...]) -> field.ErrorList:
    path = field.Path("roleRef")
    errs = field.ErrorList()
    api_group = role_ref.get("apiGroup") or ""
    if api_group != rbac_v1.GROUP_NAME:
        errs.append(field.not_supported(path.child("apiGroup"), api_group, [rbac_v1.GROUP_NAME]))
    kind = role_ref.get("kind") or ""
    if kind not in kinds:
        errs.append(field.not_supported(path.child("kind"), kind, kinds))
    name = role_ref.get("name") or ""
    if not name:
        errs.append(field.required(path.child("name")))
    else:
        for msg in validate_rbac_name(name, False):
            errs.append(field.invalid(path.child("name"), name, msg))
    return errs


def validate_subject(subject: Object, path: field.Path, *, namespaced: bool) -> field.ErrorList:
    """``ValidateRoleBindingSubject``; cluster bindings need a ServiceAccount's namespace."""
    errs = field.ErrorList()
    name = subject.get("name") or ""
    api_group = subject.get("apiGroup") or ""
    if not name:
        errs.append(field.required(path.child("name")))
    kind = subject.get("kind") or ""
    if kind == "ServiceAccount":
        if name:
            for msg in names.validate_service_account_name(name, False):
                errs.append(field.invalid(path.child("name"), name, msg))
        if api_group:
            errs.append(field.not_supported(path.child("apiGroup"), api_group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(field.required(path.child("namespace")))
    elif kind in ("User", "Group"):
        if api_group != rbac_v1.GROUP_NAME:
            errs.append(
                field.not_supported(path.child("apiGroup"), api_group, [rbac_v1.GROUP_NAME])
            )
    else:
        errs.append(field.not_supported(path.child("kind"), kind, SUBJECT_KINDS))
    return errs


def validate_binding(obj: Object, *, namespaced: bool, kinds: tuple[str, ...]) -> field.ErrorList:
    """What RoleBindings and ClusterRoleBindings share: metadata, roleRef, subjects."""
    errs = validate_meta(obj, namespaced=namespaced)
    errs.extend(validate_role_ref(common.dict_at(obj, "roleRef"), kinds))
    for i, subject in enumerate(obj.get("subjects") or []):
        subject = subject if isinstance(subject, dict) else {}
        errs.extend(
            validate_subject(subject, field.Path("subjects").index(i), namespaced=namespaced)
        )
    return errs


def validate_binding_update(
    new: Object, old: Object, *, namespaced: bool, kinds: tuple[str, ...]
) -> field.ErrorList:
    errs = validate_binding(new, namespaced=namespaced, kinds=kinds)
    errs.extend(common.validate_meta_update(new, old))
    new_ref, old_ref = common.dict_at(new, "roleRef"), common.dict_at(old, "roleRef")
    if new_ref != old_ref:
        errs.append(field.invalid(field.Path("roleRef"), new_ref, "cannot change roleRef"))
    return errs
