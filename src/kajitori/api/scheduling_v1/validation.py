"""Validation of PriorityClasses (upstream: pkg/apis/scheduling/validation).

Owns the reserved ``system-`` prefix (only the two known system classes,
with their exact value and globalDefault false), the ceiling on
user-defined values (one billion), the preemption policy enum, and what
may not change: ``value`` (Forbidden) and ``preemptionPolicy`` (immutable).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field

Object = dict[str, Any]

SYSTEM_PREFIX = "system-"
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
# The classes every cluster has (upstream's SystemPriorityClasses).
SYSTEM_PRIORITY_CLASSES: dict[str, int] = {
    "system-node-critical": SYSTEM_CRITICAL_PRIORITY + 1000,
    "system-cluster-critical": SYSTEM_CRITICAL_PRIORITY,
}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


def known_system_class_problem(name: str, value: Any, global_default: Any) -> str:
    """Upstream's IsKnownSystemPriorityClass: "" when it is one, else why not."""
    expected = SYSTEM_PRIORITY_CLASSES.get(name)
    if expected is None:
        return f"{name} is not a known system priority class"
    if value != expected:
        return f"value of {name} PriorityClass must be {expected}"
    if bool(global_default):
        return f"globalDefault of {name} PriorityClass must be false"
    return ""


def validate_priority_class(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=False, name_validator=common.name_is_dns_subdomain)
    name = (obj.get("metadata") or {}).get("name") or ""
    value = obj.get("value")
    if name.startswith(SYSTEM_PREFIX):
        problem = known_system_class_problem(name, value, obj.get("globalDefault"))
        if problem:
            errs.append(
                field.forbidden(
                    field.Path("metadata", "name"),
                    f"priority class names with '{SYSTEM_PREFIX}' prefix are reserved for "
                    f"system use only. error: {problem}",
                )
            )
    elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errs.append(
            field.forbidden(
                field.Path("value"),
                "maximum allowed value of a user defined priority is "
                f"{HIGHEST_USER_DEFINABLE_PRIORITY}",
            )
        )
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in PREEMPTION_POLICIES:
        errs.append(
            field.not_supported(field.Path("preemptionPolicy"), policy, PREEMPTION_POLICIES)
        )
    return errs


def validate_priority_class_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    if new.get("value") != old.get("value"):
        errs.append(field.forbidden(field.Path("value"), "may not be changed in an update."))
    errs.extend(
        common.validate_immutable(
            new.get("preemptionPolicy"), old.get("preemptionPolicy"), field.Path("preemptionPolicy")
        )
    )
    return errs
