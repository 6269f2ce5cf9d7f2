"""Validation of IngressClasses (upstream: ValidateIngressClass in pkg/apis/networking/validation).

Owns the controller name (required, at most 250 bytes, a domain-prefixed
path, immutable) and the parameters reference (kind and name required, scope
Cluster or Namespace with a namespace only for the latter).
"""

from __future__ import annotations

import re
from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core_validation
from kajitori.machinery import field, names

Object = dict[str, Any]

MAX_CONTROLLER_LENGTH = 250
SCOPES = ("Cluster", "Namespace")
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT)


def validate_domain_prefixed_path(value: str, path: field.Path) -> field.ErrorList:
    """``IsDomainPrefixedPath``: "<DNS subdomain>/<http path>", e.g. "acme.io/foo"."""
    if not value:
        return field.ErrorList([field.required(path)])
    host, sep, rest = value.partition("/")
    if not sep or not host or not rest:
        detail = 'must be a domain-prefixed path (such as "acme.io/foo")'
        return field.ErrorList([field.invalid(path, value, detail)])
    errs = core_validation.from_details(path, host, names.is_dns1123_subdomain(host))
    if not _HTTP_PATH_RE.fullmatch(rest):
        errs.append(field.invalid(path, rest, names.regex_error("Invalid path", _HTTP_PATH_FMT)))
    return errs


def _required_segment(params: Object, key: str, path: field.Path) -> field.ErrorList:
    value = params.get(key) or ""
    if not value:
        return field.ErrorList([field.required(path.child(key))])
    return core_validation.from_details(path.child(key), value, names.is_path_segment_name(value))


def _validate_scope(params: Object, path: field.Path) -> field.ErrorList:
    scope = params.get("scope")
    if scope is None:
        return field.ErrorList([field.required(path.child("scope"))])
    if scope not in SCOPES:
        return field.ErrorList([field.not_supported(path.child("scope"), scope, SCOPES)])
    errs = field.ErrorList()
    namespace = params.get("namespace")
    if scope == "Namespace":
        if namespace is None:
            detail = "`parameters.scope` is set to 'Namespace'"
            errs.append(field.required(path.child("namespace"), detail))
        else:
            details = names.validate_namespace_name(namespace, False)
            errs.extend(core_validation.from_details(path.child("namespace"), namespace, details))
    elif namespace is not None:
        errs.append(
            field.forbidden(path.child("namespace"), "`parameters.scope` is set to 'Cluster'")
        )
    return errs


def validate_parameters_reference(params: Any, path: field.Path) -> field.ErrorList:
    if not isinstance(params, dict):
        return field.ErrorList()
    errs = field.ErrorList()
    api_group = params.get("apiGroup")
    if isinstance(api_group, str):
        errs.extend(core_validation.dns1123_subdomain(api_group, path.child("apiGroup")))
    errs.extend(_required_segment(params, "kind", path))
    errs.extend(_required_segment(params, "name", path))
    errs.extend(_validate_scope(params, path))
    return errs


def _validate_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    controller = spec.get("controller") or ""
    if not controller:
        errs.append(field.required(path.child("controller")))
    else:
        if len(controller.encode()) > MAX_CONTROLLER_LENGTH:
            errs.append(field.too_long(path.child("controller"), "", MAX_CONTROLLER_LENGTH))
        errs.extend(validate_domain_prefixed_path(controller, path.child("controller")))
    errs.extend(validate_parameters_reference(spec.get("parameters"), path.child("parameters")))
    return errs


def validate_ingress_class(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=False, name_validator=common.name_is_dns_subdomain)
    errs.extend(_validate_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_ingress_class_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(
        common.validate_immutable(
            common.dict_at(new, "spec").get("controller"),
            common.dict_at(old, "spec").get("controller"),
            field.Path("spec", "controller"),
        )
    )
    errs.extend(validate_ingress_class(new))
    return errs
