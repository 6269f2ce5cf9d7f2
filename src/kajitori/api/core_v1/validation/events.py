"""Validation of core/v1 Events (upstream ValidateEventCreate / ValidateEventUpdate for v1).

For requests through core/v1 upstream runs only the "legacy" checks, for
compatibility with old clients: the involved object's namespace must match
the event's, and new-style events (with eventTime) need a reporting
controller, instance, action and reason within length limits.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

REPORTING_INSTANCE_LENGTH_LIMIT = 128
ACTION_LENGTH_LIMIT = 128
REASON_LENGTH_LIMIT = 128
NOTE_LENGTH_LIMIT = 1024


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _namespace_mismatch(involved_namespace: str) -> field.FieldError:
    return field.invalid(
        field.Path("involvedObject", "namespace"),
        involved_namespace,
        "does not match event.namespace",
    )


def _validate_new_style(event: Object, namespace: str, involved_namespace: str) -> field.ErrorList:
    errs = field.ErrorList()
    if not involved_namespace and namespace not in ("default", "kube-system"):
        errs.append(_namespace_mismatch(involved_namespace))
    controller = event.get("reportingComponent") or ""
    # Through core/v1 upstream names the reporting controller field "source".
    if not controller:
        errs.append(field.required(field.Path("source")))
    errs.extend(
        common.from_details(
            field.Path("source"), controller, common.problems(names.is_qualified_name, controller)
        )
    )
    limits = (
        ("reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT, True),
        ("action", ACTION_LENGTH_LIMIT, True),
        ("reason", REASON_LENGTH_LIMIT, True),
        ("message", NOTE_LENGTH_LIMIT, False),
    )
    for key, limit, required in limits:
        value = event.get(key) or ""
        if required and not value:
            errs.append(field.required(field.Path(key)))
        if len(value) > limit:
            errs.append(field.invalid(field.Path(key), "", f"can have at most {limit} characters"))
    return errs


def _legacy_validate(event: Object) -> field.ErrorList:
    namespace = _dict(event.get("metadata")).get("namespace") or ""
    involved_namespace = _dict(event.get("involvedObject")).get("namespace") or ""
    errs = field.ErrorList()
    if not event.get("eventTime"):
        if not involved_namespace:
            if namespace not in ("", "default"):
                errs.append(_namespace_mismatch(involved_namespace))
        elif namespace != involved_namespace:
            errs.append(_namespace_mismatch(involved_namespace))
    else:
        errs.extend(_validate_new_style(event, namespace, involved_namespace))
    invalid = common.problems(names.is_dns1123_subdomain, namespace)
    if invalid:
        errs.extend(common.from_details(field.Path("namespace"), namespace, invalid))
    return errs


def validate_event(event: Object) -> field.ErrorList:
    """Generic ObjectMeta rules (names are path segments only) plus the legacy event checks."""
    errs = objectmeta.validate_object_meta(
        _dict(event.get("metadata")),
        namespaced=True,
        name_validator=names.validate_path_segment_name,
        path=field.Path("metadata"),
    )
    errs.extend(_legacy_validate(event))
    return errs


def validate_event_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(_legacy_validate(new))
    return errs
