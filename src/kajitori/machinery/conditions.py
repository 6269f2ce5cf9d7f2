"""metav1.Condition rules shared by every kind that keeps ``[]metav1.Condition``.

Owns ``validate_conditions`` (upstream: apimachinery
``pkg/apis/meta/v1/validation.ValidateConditions``): unique types that are
qualified names, a status of True/False/Unknown, a non-negative
observedGeneration, a lastTransitionTime, a reason matching upstream's pattern
(at most 1024 characters) and a message of at most 32768; and ``is_true``
(upstream: ``meta.IsStatusConditionTrue``). PodCertificateRequest,
StorageVersionMigration, ResourceClaim and DeviceTaintRule status use it; the
one implementation lives here, below every API group.
"""

from __future__ import annotations

import re
from typing import Any

from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

_STATUSES = ("False", "True", "Unknown")
_REASON_FORMAT = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?"
_REASON = re.compile(f"^{_REASON_FORMAT}$")
_REASON_MESSAGE = (
    "a condition reason must start with alphabetic character, optionally followed by a "
    "string of alphanumeric characters or '_,:', and must end with an alphanumeric "
    "character or '_'"
)
_MAX_REASON = 1024
_MAX_MESSAGE = 32 * 1024


def validate_conditions(conditions: Any, path: field.Path) -> field.ErrorList:
    """ValidateConditions: each condition, and no type twice."""
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, condition in enumerate(conditions if isinstance(conditions, list) else []):
        item = condition if isinstance(condition, dict) else {}
        kind = str(item.get("type") or "")
        if kind in seen:
            errs.append(field.duplicate(path.index(i).child("type"), kind))
        seen.add(kind)
        errs.extend(validate_condition(item, path.index(i)))
    return errs


def validate_condition(condition: Object, path: field.Path) -> field.ErrorList:
    """ValidateCondition: one metav1.Condition."""
    errs = objectmeta.validate_label_name(str(condition.get("type") or ""), path.child("type"))
    status = str(condition.get("status") or "")
    if status not in _STATUSES:
        errs.append(field.not_supported(path.child("status"), status, _STATUSES))
    generation = condition.get("observedGeneration")
    if isinstance(generation, int) and generation < 0:
        errs.append(
            field.invalid(
                path.child("observedGeneration"),
                generation,
                "must be greater than or equal to zero",
            )
        )
    if not condition.get("lastTransitionTime"):
        errs.append(field.required(path.child("lastTransitionTime"), "must be set"))
    reason = str(condition.get("reason") or "")
    if not reason:
        errs.append(field.required(path.child("reason"), "must be set"))
    else:
        if not _REASON.match(reason):
            detail = names.regex_error(
                _REASON_MESSAGE,
                _REASON_FORMAT,
                "my_name",
                "MY_NAME",
                "MyName",
                "ReasonA,ReasonB",
                "ReasonA:ReasonB",
            )
            errs.append(field.invalid(path.child("reason"), reason, detail))
        if len(reason) > _MAX_REASON:
            errs.append(field.too_long(path.child("reason"), reason, _MAX_REASON))
    message = str(condition.get("message") or "")
    if len(message) > _MAX_MESSAGE:
        errs.append(field.too_long(path.child("message"), message, _MAX_MESSAGE))
    return errs


def is_true(obj: Object, kind: str) -> bool:
    """Whether ``status.conditions`` has ``kind`` with status True."""
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return any(
        isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
        for c in (conditions if isinstance(conditions, list) else [])
    )
