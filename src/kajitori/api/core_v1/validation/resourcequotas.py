"""ResourceQuota validation, plus the resource-name rules LimitRanges share.

Mirrors upstream's ``ValidateResourceQuota``/``...Update``/``...StatusUpdate``
and the helpers in pkg/apis/core/helper that decide which names are standard
(``cpu``, ``requests.memory``, ``pods``, ``hugepages-*`` ...), which must be
integers (object counts, extended resources) and which scopes fit which
resources. ``scopeSelector`` contents are not checked yet.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

NOT_INTEGER = "must be an integer"
INVALID_QUOTA_RESOURCE = "must be a standard resource for quota"

_COMPUTE = ("cpu", "memory", "ephemeral-storage")
_OBJECT_COUNTS = frozenset(
    (
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    )
)
STANDARD_RESOURCES = frozenset(
    (
        *_COMPUTE,
        *(f"requests.{name}" for name in _COMPUTE),
        *(f"limits.{name}" for name in _COMPUTE),
        "storage",
        "requests.storage",
        *_OBJECT_COUNTS,
    )
)
STANDARD_QUOTA_RESOURCES = STANDARD_RESOURCES - {"storage"}
STANDARD_SCOPES = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
)
_POD_RESOURCES = frozenset(
    ("pods", "cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory")
)
_CONFLICTING_SCOPES = (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating"))


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_quota_hugepages(name: str) -> bool:
    return name.startswith(("hugepages-", "requests.hugepages-"))


def is_native(name: str) -> bool:
    """No domain, or a kubernetes.io one."""
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    """A domain-qualified name outside kubernetes.io that is not a quota "requests." form."""
    if is_native(name) or name.startswith("requests."):
        return False
    return not names.is_qualified_name(f"requests.{name}")


def is_overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def is_integer_resource(name: str) -> bool:
    return name in _OBJECT_COUNTS or is_extended(name)


def validate_resource_name(name: str, path: field.Path) -> field.ErrorList:
    """A qualified name, and a standard one unless it has a domain."""
    errs = common.from_details(path, name, names.is_qualified_name(name))
    if errs:
        return errs
    if "/" not in name and name not in STANDARD_RESOURCES and not _is_quota_hugepages(name):
        errs.append(
            field.invalid(path, name, "must be a standard resource type or fully qualified")
        )
    return errs


def validate_container_resource_name(name: str, path: field.Path) -> field.ErrorList:
    errs = validate_resource_name(name, path)
    if "/" not in name:
        if name not in _COMPUTE and not is_hugepages(name):
            errs.append(field.invalid(path, name, "must be a standard resource for containers"))
    elif not is_native(name) and not is_extended(name):
        errs.append(field.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_quota_resource_name(name: str, path: field.Path) -> field.ErrorList:
    errs = validate_resource_name(name, path)
    if "/" not in name and name not in STANDARD_QUOTA_RESOURCES and not _is_quota_hugepages(name):
        errs.append(field.invalid(path, name, INVALID_QUOTA_RESOURCE))
    return errs


def validate_quantity_value(name: str, value: Any, path: field.Path) -> field.ErrorList:
    """Parses, is not negative, and is whole for count and extended resources."""
    amount = common.quantity_value(value)
    if amount is None:
        return field.ErrorList([field.invalid(path, value, common.QUANTITY_FORMAT_ERROR)])
    errs = field.ErrorList()
    if amount < 0:
        errs.append(field.invalid(path, str(value), common.IS_NEGATIVE_ERROR))
    if is_integer_resource(name) and (amount * 1000).to_integral_value() % 1000 != 0:
        errs.append(field.invalid(path, str(value), NOT_INTEGER))
    return errs


def _resource_map(obj: Object, *path: str) -> Object:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _validate_resource_list(values: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for name, value in values.items():
        errs.extend(validate_quota_resource_name(name, path.key(name)))
        errs.extend(validate_quantity_value(name, value, path.key(name)))
    return errs


def _scopes(obj: Object) -> list[Any]:
    scopes = _resource_map(obj, "spec").get("scopes")
    return scopes if isinstance(scopes, list) else []


def validate_resource_quota_spec(quota: Object, path: field.Path) -> field.ErrorList:
    errs = _validate_resource_list(_resource_map(quota, "spec", "hard"), path.child("hard"))
    errs.extend(_validate_scopes(quota, path.child("scopes")))
    return errs


def _validate_scopes(quota: Object, path: field.Path) -> field.ErrorList:
    scopes = _scopes(quota)
    errs = field.ErrorList()
    hard = sorted(_resource_map(quota, "spec", "hard"))
    for scope in scopes:
        if scope not in STANDARD_SCOPES:
            errs.append(field.invalid(path, scopes, "unsupported scope"))
        for name in hard:
            if name in STANDARD_QUOTA_RESOURCES and not _scope_fits(scope, name):
                errs.append(field.invalid(path, scopes, "unsupported scope applied to resource"))
    for pair in _CONFLICTING_SCOPES:
        if all(scope in scopes for scope in pair):
            errs.append(field.invalid(path, scopes, "conflicting scopes"))
    return errs


def _scope_fits(scope: Any, resource: str) -> bool:
    if scope == "BestEffort":
        return resource == "pods"
    if scope == "VolumeAttributesClass":
        return resource in ("persistentvolumeclaims", "requests.storage")
    if scope in STANDARD_SCOPES:
        return resource in _POD_RESOURCES
    return True


def _validate_status(quota: Object) -> field.ErrorList:
    errs = _validate_resource_list(
        _resource_map(quota, "status", "hard"), field.Path("status", "hard")
    )
    errs.extend(
        _validate_resource_list(
            _resource_map(quota, "status", "used"), field.Path("status", "used")
        )
    )
    return errs


def validate_resource_quota(obj: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    errs.extend(validate_resource_quota_spec(obj, field.Path("spec")))
    errs.extend(_validate_status(obj))
    return errs


def validate_resource_quota_update(new: Object, old: Object) -> field.ErrorList:
    """The spec rules, and scopes that never change (compared as sets)."""
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    errs.extend(validate_resource_quota_spec(new, field.Path("spec")))
    if set(map(str, _scopes(new))) != set(map(str, _scopes(old))):
        errs.append(field.invalid(field.Path("spec", "scopes"), _scopes(new), "field is immutable"))
    return errs


def validate_resource_quota_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    if not (new.get("metadata") or {}).get("resourceVersion"):
        errs.append(field.required(field.Path("resourceVersion")))
    errs.extend(_validate_status(new))
    return errs
