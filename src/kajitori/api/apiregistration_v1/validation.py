"""Validation of APIServices (upstream: kube-aggregator apis/apiregistration/validation).

Owns what an APIService must satisfy: a name that is a path segment and
exactly ``<spec.version>.<spec.group>``; a group that is a DNS subdomain (only
``v1`` may leave it empty: the legacy core group); a version that is a DNS-1035
label; ``groupPriorityMinimum`` in 1..20000 and ``versionPriority`` in 1..1000;
a local APIService (no ``spec.service``) carries neither ``caBundle`` nor
``insecureSkipTLSVerify``; a remote one names its Service's namespace, name
and a valid port, and does not both skip verification and give a CA bundle.
Status updates may only hold conditions whose status is True, False or Unknown.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

_CONDITION_STATUSES = ("True", "False", "Unknown")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _name_validator(required: str) -> names.NameValidator:
    def validate(name: str, prefix: bool) -> list[str]:
        problems = names.is_path_segment_name(name)
        if problems:
            return problems
        if name != required:
            return [f'must be `spec.version+"."+spec.group`: "{required}"']
        return []

    return validate


def _ca_bundle_length(raw: Any) -> int:
    """Bytes in ``caBundle`` (wire form is base64, as a Go []byte)."""
    if not raw or not isinstance(raw, str):
        return 0
    try:
        return len(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        return len(raw)


def validate_api_service(obj: Object) -> field.ErrorList:
    """ValidateAPIService."""
    spec = _dict(obj.get("spec"))
    group = str(spec.get("group") or "")
    version = str(spec.get("version") or "")
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=_name_validator(f"{version}.{group}"),
        path=field.Path("metadata"),
    )
    path = field.Path("spec")
    if not group and version != "v1":
        errs.append(
            field.required(
                path.child("group"), "only v1 may have an empty group and it better be legacy kube"
            )
        )
    if group:
        for message in names.is_dns1123_subdomain(group):
            errs.append(field.invalid(path.child("group"), group, message))
    for message in names.is_dns1035_label(version):
        errs.append(field.invalid(path.child("version"), version, message))
    group_priority = _int(spec.get("groupPriorityMinimum"))
    if not 0 < group_priority <= 20000:
        errs.append(
            field.invalid(
                path.child("groupPriorityMinimum"),
                group_priority,
                "must be positive and less than 20000",
            )
        )
    version_priority = _int(spec.get("versionPriority"))
    if not 0 < version_priority <= 1000:
        errs.append(
            field.invalid(
                path.child("versionPriority"),
                version_priority,
                "must be positive and less than 1000",
            )
        )
    errs.extend(_validate_service(spec, path))
    return errs


def _validate_service(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    ca_bytes = _ca_bundle_length(spec.get("caBundle"))
    skip_verify = spec.get("insecureSkipTLSVerify") is True
    service = spec.get("service")
    if not isinstance(service, dict):
        if ca_bytes:
            errs.append(
                field.invalid(
                    path.child("caBundle"),
                    f"{ca_bytes} bytes",
                    "local APIServices may not have a caBundle",
                )
            )
        if skip_verify:
            errs.append(
                field.invalid(
                    path.child("insecureSkipTLSVerify"),
                    True,
                    "local APIServices may not have insecureSkipTLSVerify",
                )
            )
        return errs
    service_path = path.child("service")
    if not service.get("namespace"):
        errs.append(field.required(service_path.child("namespace"), ""))
    if not service.get("name"):
        errs.append(field.required(service_path.child("name"), ""))
    port = _int(service.get("port"))
    problems = names.is_valid_port_num(port)
    if problems:
        errs.append(
            field.invalid(
                service_path.child("port"), port, "port is not valid: " + ", ".join(problems)
            )
        )
    if skip_verify and ca_bytes:
        errs.append(
            field.invalid(
                path.child("insecureSkipTLSVerify"), True, "may not be true if caBundle is present"
            )
        )
    return errs


def validate_api_service_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateAPIServiceUpdate: metadata rules, then everything a create checks."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(validate_api_service(new))
    return errs


def validate_api_service_status_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateAPIServiceStatusUpdate: metadata rules and the conditions' statuses."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    conditions = _dict(new.get("status")).get("conditions")
    path = field.Path("status").child("conditions")
    for i, condition in enumerate(conditions if isinstance(conditions, list) else []):
        status = _dict(condition).get("status")
        if status not in _CONDITION_STATUSES:
            errs.append(
                field.not_supported(path.index(i).child("status"), status, _CONDITION_STATUSES)
            )
    return errs
