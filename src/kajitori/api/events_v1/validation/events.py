"""Validation of events.k8s.io/v1 Events (upstream: ValidateEventCreate / ValidateEventUpdate).

Requests through events.k8s.io get upstream's strict checks on top of the
legacy ones core/v1 requests get: eventTime is required, type is Normal or
Warning, the deprecated* fields must stay unset, series is consistent, and on
update almost every field is immutable. Paths are upstream's internal (core)
field names, e.g. ``involvedObject`` for ``regarding``; see
``kajitori.api.events_v1``.
"""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core_validation
from kajitori.machinery import field, names, times

Object = dict[str, Any]

REPORTING_INSTANCE_LENGTH_LIMIT = 128
ACTION_LENGTH_LIMIT = 128
REASON_LENGTH_LIMIT = 128
NOTE_LENGTH_LIMIT = 1024
EVENT_TYPES = ("Normal", "Warning")


def _text(obj: Object, key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _mismatch(involved_namespace: str) -> field.FieldError:
    return field.invalid(
        field.Path("involvedObject", "namespace"),
        involved_namespace,
        "does not match event.namespace",
    )


def _validate_lengths(event: Object) -> field.ErrorList:
    errs = field.ErrorList()
    limits = (
        ("reportingInstance", "reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT, True),
        ("action", "action", ACTION_LENGTH_LIMIT, True),
        ("reason", "reason", REASON_LENGTH_LIMIT, True),
        ("note", "message", NOTE_LENGTH_LIMIT, False),
    )
    for key, name, limit, required in limits:
        value = _text(event, key)
        if required and not value:
            errs.append(field.required(field.Path(name)))
        if len(value) > limit:
            errs.append(field.invalid(field.Path(name), "", f"can have at most {limit} characters"))
    return errs


def _legacy_validate(event: Object) -> field.ErrorList:
    """``legacyValidateEvent`` as run for events.k8s.io requests."""
    namespace = _text(common.dict_at(event, "metadata"), "namespace")
    involved = _text(common.dict_at(event, "regarding"), "namespace")
    errs = field.ErrorList()
    if not event.get("eventTime"):
        if (not involved and namespace not in ("", "default")) or (
            involved and namespace != involved
        ):
            errs.append(_mismatch(involved))
    else:
        if not involved and namespace not in ("default", "kube-system"):
            errs.append(_mismatch(involved))
        controller = _text(event, "reportingController")
        path = field.Path("reportingController")
        if not controller:
            errs.append(field.required(path))
        errs.extend(
            core_validation.from_details(
                path, controller, core_validation.problems(names.is_qualified_name, controller)
            )
        )
        errs.extend(_validate_lengths(event))
    invalid = core_validation.problems(names.is_dns1123_subdomain, namespace)
    if invalid:
        errs.extend(core_validation.from_details(field.Path("namespace"), namespace, invalid))
    return errs


def _validate_series(event: Object) -> field.ErrorList:
    errs = field.ErrorList()
    series = event.get("series")
    if isinstance(series, dict):
        count = series.get("count")
        if not isinstance(count, int) or count < 2:
            errs.append(field.invalid(field.Path("series.count"), "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(field.required(field.Path("series.lastObservedTime")))
    return errs


def _validate_strict(event: Object) -> field.ErrorList:
    errs = _validate_series(event)
    if not event.get("eventTime"):
        errs.append(field.required(field.Path("eventTime")))
    event_type = _text(event, "type")
    if event_type not in EVENT_TYPES:
        errs.append(field.invalid(field.Path("type"), "", f"has invalid value: {event_type}"))
    for key, name in (
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ):
        if event.get(key):
            errs.append(field.invalid(field.Path(name), "", "needs to be unset"))
    source = common.dict_at(event, "deprecatedSource")
    if source.get("component") or source.get("host"):
        errs.append(field.invalid(field.Path("source"), "", "needs to be unset"))
    return errs


def validate_event(event: Object) -> field.ErrorList:
    """Legacy checks, then strict ObjectMeta (DNS-subdomain names) and the strict event rules."""
    errs = _legacy_validate(event)
    errs.extend(
        common.validate_meta(event, namespaced=True, name_validator=common.name_is_dns_subdomain)
    )
    errs.extend(_validate_strict(event))
    return errs


def _micro(value: Any) -> datetime.datetime | str | None:
    # eventTime may change below microsecond precision (kubernetes#111928).
    parsed = times.parse_time(value)
    return value if parsed is None else parsed


# (events.k8s.io field, upstream path) checked for immutability, in upstream's
# order; "reason" appears twice upstream, so it is reported twice.
_IMMUTABLE = (
    ("regarding", "involvedObject"),
    ("reason", "reason"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reason", "reason"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingController", "reportingController"),
    ("reportingInstance", "reportingInstance"),
)


def validate_event_update(new: Object, old: Object) -> field.ErrorList:
    errs = _legacy_validate(new)
    errs.extend(common.validate_meta_update(new, old))
    if new.get("series") != old.get("series"):
        errs.extend(_validate_series(new))
    for key, name in _IMMUTABLE:
        new_value, old_value = new.get(key), old.get(key)
        if key == "eventTime" and _micro(new_value) == _micro(old_value):
            continue
        errs.extend(common.validate_immutable(new_value, old_value, field.Path(name)))
    return errs
