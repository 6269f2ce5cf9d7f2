"""Validation of Ingresses (upstream: ValidateIngressCreate/Update in pkg/apis/networking/validation).

Owns rules (host names, wildcard hosts, HTTP paths with a required
``pathType`` of Exact, Prefix or ImplementationSpecific), backends (service
name and port name-or-number, or a resource reference, never both), TLS hosts
and secret names, the class name, and the status load-balancer entries.
Service names are DNS-1035 labels (RelaxedServiceNameValidation is alpha and
off in 1.37); on update, values the stored object already had stay accepted
as upstream's ValidationOptions allow.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from kajitori.api import networking_v1
from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core_validation
from kajitori.machinery import field, names

Object = dict[str, Any]

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_WILDCARD_FMT = "\\*\\." + _LABEL + "(\\." + _LABEL + ")*"
_WILDCARD_RE = re.compile(_WILDCARD_FMT)
_WILDCARD_MSG = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    "alphanumeric character"
)


def _dicts(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > names.DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(names.max_len_error(names.DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _WILDCARD_RE.fullmatch(value):
        errs.append(names.regex_error(_WILDCARD_MSG, _WILDCARD_FMT, "*.example.com"))
    return errs


def _host_errors(host: str) -> list[str]:
    if "*" in host:
        return is_wildcard_dns1123_subdomain(host)
    return names.is_dns1123_subdomain(host)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _validate_resource_backend(ref: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    api_group = ref.get("apiGroup")
    if isinstance(api_group, str):
        errs.extend(core_validation.dns1123_subdomain(api_group, path.child("apiGroup")))
    for key in ("kind", "name"):
        value = ref.get(key) or ""
        if not value:
            errs.append(field.required(path.child(key)))
        else:
            errs.extend(
                core_validation.from_details(
                    path.child(key), value, names.is_path_segment_name(value)
                )
            )
    return errs


def _validate_service_backend(service: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    name_path = path.child("service", "name")
    name = service.get("name") or ""
    if not name:
        errs.append(field.required(name_path))
    else:
        errs.extend(
            core_validation.from_details(name_path, name, names.name_is_dns1035_label(name, False))
        )
    port = common.dict_at(service, "port")
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        errs.append(field.invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs.extend(
            core_validation.from_details(
                path.child("service", "port", "name"),
                port_name,
                names.is_valid_port_name(port_name),
            )
        )
    elif number:
        errs.extend(core_validation.port_num(number, path.child("service", "port", "number")))
    else:
        errs.append(field.required(path, "port name or number is required"))
    return errs


def validate_ingress_backend(backend: Object, path: field.Path) -> field.ErrorList:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return field.ErrorList(
            [field.invalid(path, "", "cannot set both resource and service backends")]
        )
    if resource is not None:
        return _validate_resource_backend(
            common.dict_at(backend, "resource"), path.child("resource")
        )
    if service is not None:
        return _validate_service_backend(common.dict_at(backend, "service"), path)
    return field.ErrorList([field.invalid(path, "", "resource or service backend is required")])


def _validate_path_value(value: str, path_type: str, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(field.invalid(path, value, "must be an absolute path"))
        return errs
    if not value.startswith("/"):
        errs.append(field.invalid(path, value, "must be an absolute path"))
    if value:
        for sequence in _INVALID_PATH_SEQUENCES:
            if sequence in value:
                errs.append(field.invalid(path, value, f"must not contain '{sequence}'"))
        for suffix in _INVALID_PATH_SUFFIXES:
            if value.endswith(suffix):
                errs.append(field.invalid(path, value, f"cannot end with '{suffix}'"))
    return errs


def validate_http_ingress_path(http_path: Object, path: field.Path) -> field.ErrorList:
    path_type = http_path.get("pathType")
    if path_type is None:
        return field.ErrorList(
            [field.required(path.child("pathType"), "pathType must be specified")]
        )
    if path_type in PATH_TYPES:
        errs = _validate_path_value(http_path.get("path") or "", path_type, path.child("path"))
    else:
        errs = field.ErrorList([field.not_supported(path.child("pathType"), path_type, PATH_TYPES)])
    errs.extend(
        validate_ingress_backend(common.dict_at(http_path, "backend"), path.child("backend"))
    )
    return errs


def _validate_rule_value(rule: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    http = rule.get("http")
    if not isinstance(http, dict):
        return errs
    paths = _dicts(http.get("paths"))
    if not paths:
        errs.append(field.required(path.child("http", "paths")))
    for i, http_path in enumerate(paths):
        errs.extend(validate_http_ingress_path(http_path, path.child("http", "paths").index(i)))
    return errs


def _validate_rules(
    rules: list[Object], path: field.Path, *, lenient_wildcards: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    for i, rule in enumerate(rules):
        host = rule.get("host") or ""
        host_path = path.index(i).child("host")
        if host and _is_ip(host):
            errs.append(field.invalid(host_path, host, "must be a DNS name, not an IP address"))
        errs.extend(
            core_validation.from_details(host_path, host, _host_errors(host)) if host else ()
        )
        if "*" not in host or not lenient_wildcards:
            errs.extend(_validate_rule_value(rule, path.index(i)))
    return errs


def _validate_tls(tls: list[Object], path: field.Path, *, lenient_secrets: bool) -> field.ErrorList:
    errs = field.ErrorList()
    for i, entry in enumerate(tls):
        for j, host in enumerate(entry.get("hosts") or []):
            host_path = path.index(i).child("hosts").index(j)
            errs.extend(core_validation.from_details(host_path, host, _host_errors(str(host))))
        secret = entry.get("secretName") or ""
        if secret and not lenient_secrets:
            errs.extend(
                core_validation.from_details(
                    path.index(i).child("secretName"),
                    secret,
                    names.name_is_dns_subdomain(secret, False),
                )
            )
    return errs


def validate_ingress_spec(
    spec: Object,
    path: field.Path,
    *,
    lenient_secrets: bool = False,
    lenient_wildcards: bool = False,
) -> field.ErrorList:
    errs = field.ErrorList()
    rules = _dicts(spec.get("rules"))
    default_backend = spec.get("defaultBackend")
    if not rules and default_backend is None:
        detail = "either `defaultBackend` or `rules` must be specified"
        errs.append(field.invalid(path, spec.get("rules"), detail))
    if default_backend is not None:
        errs.extend(
            validate_ingress_backend(
                common.dict_at(spec, "defaultBackend"), path.child("defaultBackend")
            )
        )
    errs.extend(_validate_rules(rules, path.child("rules"), lenient_wildcards=lenient_wildcards))
    errs.extend(
        _validate_tls(_dicts(spec.get("tls")), path.child("tls"), lenient_secrets=lenient_secrets)
    )
    class_name = spec.get("ingressClassName")
    if isinstance(class_name, str):
        errs.extend(
            core_validation.from_details(
                path.child("ingressClassName"),
                class_name,
                names.name_is_dns_subdomain(class_name, False),
            )
        )
    return errs


def _meta(obj: Object) -> field.ErrorList:
    return common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)


def validate_ingress(obj: Object) -> field.ErrorList:
    """``ValidateIngressCreate``: metadata, spec, and the class annotation agreeing with the spec."""
    errs = _meta(obj)
    spec = common.dict_at(obj, "spec")
    errs.extend(validate_ingress_spec(spec, field.Path("spec")))
    annotations = common.dict_at(obj, "metadata", "annotations")
    annotation = annotations.get(networking_v1.INGRESS_CLASS_ANNOTATION)
    class_name = spec.get("ingressClassName")
    if annotation is not None and class_name is not None and annotation != class_name:
        errs.append(
            field.invalid(
                field.Path("annotations").child(networking_v1.INGRESS_CLASS_ANNOTATION),
                annotation,
                "must match `ingressClassName` when both are specified",
            )
        )
    return errs


def _has_invalid_secret(spec: Object) -> bool:
    return any(
        entry.get("secretName") and names.name_is_dns_subdomain(str(entry["secretName"]), False)
        for entry in _dicts(spec.get("tls"))
    )


def _has_invalid_wildcard_rule(spec: Object) -> bool:
    return any(
        "*" in (rule.get("host") or "") and _validate_rule_value(rule, field.Path(""))
        for rule in _dicts(spec.get("rules"))
    )


def validate_ingress_update(new: Object, old: Object) -> field.ErrorList:
    old_spec = common.dict_at(old, "spec")
    errs = common.validate_meta_update(new, old)
    errs.extend(_meta(new))
    errs.extend(
        validate_ingress_spec(
            common.dict_at(new, "spec"),
            field.Path("spec"),
            lenient_secrets=_has_invalid_secret(old_spec),
            lenient_wildcards=_has_invalid_wildcard_rule(old_spec),
        )
    )
    return errs


def _validate_load_balancer(new: Object, old: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    old_ips = {
        entry.get("ip")
        for entry in _dicts(common.dict_at(old, "status", "loadBalancer").get("ingress"))
    }
    entries = _dicts(common.dict_at(new, "status", "loadBalancer").get("ingress"))
    for i, entry in enumerate(entries):
        entry_path = path.child("ingress").index(i)
        ip, hostname = entry.get("ip") or "", entry.get("hostname") or ""
        if ip and ip not in old_ips:
            details = names.is_valid_ip_for_legacy_field(ip)
            errs.extend(core_validation.from_details(entry_path.child("ip"), ip, details))
        if hostname:
            errs.extend(core_validation.dns1123_subdomain(hostname, entry_path.child("hostname")))
            if _is_ip(hostname):
                detail = "must be a DNS name, not an IP address"
                errs.append(field.invalid(entry_path.child("hostname"), hostname, detail))
    return errs


def validate_ingress_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(_validate_load_balancer(new, old, field.Path("status", "loadBalancer")))
    return errs
