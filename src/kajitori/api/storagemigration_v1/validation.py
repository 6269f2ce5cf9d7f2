"""Validation of StorageVersionMigrations (upstream: pkg/apis/storagemigration/validation).

Owns what an SVM must be: a DNS-subdomain name and a ``spec.resource``
whose ``resource`` is set and a DNS-1035 label and whose ``group``, when
set, is a DNS-1123 subdomain (the same rules as an APIService). The spec
never changes after create. Through ``/status``: ``resourceVersion`` must
be a resource version and, once set, never changes; the conditions are
metav1 Conditions of which Succeeded and Failed are never both True,
Running is not True beside either, and a True Succeeded or Failed stays
True.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import conditions, field, names, objectmeta

Object = dict[str, Any]

RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

_CONDITIONS = field.Path("status", "conditions")
_RESOURCE_VERSION = field.Path("status", "resourceVersion")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _resource(obj: Object) -> Object:
    return _dict(_dict(obj.get("spec")).get("resource"))


def validate_svm(obj: Object) -> field.ErrorList:
    """ValidateStorageVersionMigration."""
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    resource = _resource(obj)
    plural = str(resource.get("resource") or "")
    path = field.Path("spec", "resource")
    if not plural:
        errs.append(field.required(path.child("resource"), "resource is required to be set"))
    else:
        problems = names.is_dns1035_label(plural)
        if problems:
            errs.append(field.invalid(path.child("resource"), plural, ",".join(problems)))
    group = str(resource.get("group") or "")
    if group:
        problems = names.is_dns1123_subdomain(group)
        if problems:
            errs.append(field.invalid(path.child("group"), group, ",".join(problems)))
    return errs


def validate_svm_update(obj: Object, old: Object) -> field.ErrorList:
    """ValidateStorageVersionMigrationUpdate: the spec is immutable."""
    errs = validate_svm(obj)
    errs.extend(
        objectmeta.validate_object_meta_update(
            obj.get("metadata"), old.get("metadata"), path=field.Path("metadata")
        )
    )
    errs.extend(
        objectmeta.validate_immutable_field(
            _dict(obj.get("spec")), _dict(old.get("spec")), field.Path("spec")
        )
    )
    return errs


def _status(obj: Object) -> Object:
    return _dict(obj.get("status"))


def _resource_version_problem(rv: str) -> str | None:
    """Upstream compares the value with itself, which fails unless it is a uint64."""
    if rv.isascii() and rv.isdigit() and int(rv) < 2**64:
        return None
    return f'invalid resourceVersion "{rv}": strconv.ParseUint: parsing "{rv}": invalid syntax'


def validate_svm_status_update(obj: Object, old: Object) -> field.ErrorList:
    """ValidateStorageVersionMigrationStatusUpdate."""
    errs = objectmeta.validate_object_meta_update(
        obj.get("metadata"), old.get("metadata"), path=field.Path("metadata")
    )
    rv = str(_status(obj).get("resourceVersion") or "")
    # An empty value is "not yet observed": the controller writes conditions
    # (Failed for an unknown resource) before ever setting it.
    problem = _resource_version_problem(rv) if rv else None
    if problem is not None:
        errs.append(field.invalid(_RESOURCE_VERSION, rv, problem))
    conds = _status(obj).get("conditions")
    errs.extend(conditions.validate_conditions(conds, _CONDITIONS))
    old_rv = str(_status(old).get("resourceVersion") or "")
    if old_rv and old_rv != rv:
        errs.append(field.invalid(_RESOURCE_VERSION, rv, objectmeta.FIELD_IMMUTABLE_ERROR_MSG))
    succeeded = conditions.is_true(obj, SUCCEEDED)
    failed = conditions.is_true(obj, FAILED)
    running = conditions.is_true(obj, RUNNING)
    bad_value = conds if isinstance(conds, list) else []
    checks = (
        (
            succeeded and failed,
            "Both success and failed conditions cannot be true at the same time",
        ),
        (succeeded and running, "Running condition cannot be true when success condition is true"),
        (failed and running, "Running condition cannot be true when failed condition is true"),
        (
            conditions.is_true(old, SUCCEEDED) and not succeeded,
            "Success condition cannot be set to false once it is true",
        ),
        (
            conditions.is_true(old, FAILED) and not failed,
            "Failed condition cannot be set to false once it is true",
        ),
    )
    errs.extend(
        field.invalid(_CONDITIONS, bad_value, message) for failing, message in checks if failing
    )
    return errs
