"""Validation of PodDisruptionBudgets (upstream: pkg/apis/policy/validation).

Owns minAvailable-xor-maxUnavailable, their int-or-percent syntax, the
selector and the unhealthy-pod eviction policy. Upstream's PDB validation does
not check names itself: the generic store applies path-segment name rules,
which is what ``validate_pod_disruption_budget`` uses. Spec updates are
allowed (since 1.15); a selector stored with label values now invalid keeps
being accepted on update, as upstream's ValidationOptions do.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, names

Object = dict[str, Any]

# Sorted, as upstream lists a sets.String.
UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def _validate_int_or_percent(value: Any, path: field.Path) -> field.ErrorList:
    errs = common.validate_positive_int_or_percent(value, path)
    errs.extend(common.is_not_more_than_100_percent(value, path))
    return errs


def validate_pod_disruption_budget_spec(
    spec: Object, path: field.Path, *, allow_invalid_label_value: bool = False
) -> field.ErrorList:
    errs = field.ErrorList()
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(field.invalid(path, spec, "minAvailable and maxUnavailable cannot be both set"))
    if min_available is not None:
        errs.extend(_validate_int_or_percent(min_available, path.child("minAvailable")))
    if max_unavailable is not None:
        errs.extend(_validate_int_or_percent(max_unavailable, path.child("maxUnavailable")))
    errs.extend(
        common.validate_label_selector(
            spec.get("selector"),
            path.child("selector"),
            allow_invalid_label_value=allow_invalid_label_value,
        )
    )
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errs.append(
            field.not_supported(
                path.child("unhealthyPodEvictionPolicy"), policy, UNHEALTHY_POD_EVICTION_POLICIES
            )
        )
    return errs


def validate_pod_disruption_budget(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(
        obj, namespaced=True, name_validator=names.validate_path_segment_name
    )
    errs.extend(
        validate_pod_disruption_budget_spec(common.dict_at(obj, "spec"), field.Path("spec"))
    )
    return errs


def validate_pod_disruption_budget_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    old_selector = common.dict_at(old, "spec").get("selector")
    errs.extend(
        validate_pod_disruption_budget_spec(
            common.dict_at(new, "spec"),
            field.Path("spec"),
            allow_invalid_label_value=not common.selector_is_valid(old_selector),
        )
    )
    return errs


def validate_pod_disruption_budget_status_update(new: Object, old: Object) -> field.ErrorList:
    """``ValidatePodDisruptionBudgetStatusUpdate`` for policy/v1: counters are non-negative."""
    errs = common.validate_meta_update(new, old)
    status = common.dict_at(new, "status")
    path = field.Path("status")
    for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        errs.extend(common.validate_nonnegative(status.get(key), path.child(key)))
    return errs
