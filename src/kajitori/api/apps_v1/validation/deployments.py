"""Validation of apps/v1 Deployments (upstream: ValidateDeployment in pkg/apis/apps/validation).

The selector is required, must match the template's labels and is immutable
in apps/v1 (upstream checks immutability in the registry strategy; it is here
so that ``validate_deployment_update`` is the whole update rule).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common, replicasets
from kajitori.machinery import field

Object = dict[str, Any]

STRATEGY_TYPES = ("Recreate", "RollingUpdate")


def _validate_rolling_update(rolling: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    max_unavailable = rolling.get("maxUnavailable")
    max_surge = rolling.get("maxSurge")
    errs.extend(
        common.validate_positive_int_or_percent(max_unavailable, path.child("maxUnavailable"))
    )
    errs.extend(common.validate_positive_int_or_percent(max_surge, path.child("maxSurge")))
    if (
        common.int_or_percent_value(max_unavailable) == 0
        and common.int_or_percent_value(max_surge) == 0
    ):
        errs.append(
            field.invalid(
                path.child("maxUnavailable"), max_unavailable, "may not be 0 when `maxSurge` is 0"
            )
        )
    errs.extend(common.is_not_more_than_100_percent(max_unavailable, path.child("maxUnavailable")))
    return errs


def validate_deployment_strategy(strategy: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    kind = strategy.get("type", "")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errs.append(
                field.forbidden(
                    path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            )
    elif kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            errs.append(
                field.required(
                    path.child("rollingUpdate"), "this should be defaulted and never be nil"
                )
            )
        else:
            errs.extend(_validate_rolling_update(rolling, path.child("rollingUpdate")))
    else:
        errs.append(field.not_supported(path, strategy, STRATEGY_TYPES))
    return errs


def validate_deployment_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    errs.extend(common.validate_nonnegative(spec.get("replicas"), path.child("replicas")))
    selector = spec.get("selector")
    errs.extend(replicasets.validate_selector(selector, path.child("selector"), kind="deployment"))
    if common.selector_is_valid(selector):
        errs.extend(
            replicasets.validate_pod_template_for_replica_set(
                spec.get("template"), selector, path.child("template"), kind="Deployment"
            )
        )
    errs.extend(
        validate_deployment_strategy(common.dict_at(spec, "strategy"), path.child("strategy"))
    )
    min_ready = spec.get("minReadySeconds")
    errs.extend(common.validate_nonnegative(min_ready, path.child("minReadySeconds")))
    errs.extend(
        common.validate_nonnegative(
            spec.get("revisionHistoryLimit"), path.child("revisionHistoryLimit")
        )
    )
    rollback = spec.get("rollbackTo")
    if isinstance(rollback, dict):
        errs.extend(
            common.validate_nonnegative(rollback.get("revision"), path.child("rollback", "version"))
        )
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        errs.extend(common.validate_nonnegative(deadline, path.child("progressDeadlineSeconds")))
        if deadline <= (min_ready if isinstance(min_ready, int) else 0):
            errs.append(
                field.invalid(
                    path.child("progressDeadlineSeconds"),
                    deadline,
                    "must be greater than minReadySeconds",
                )
            )
    return errs


def validate_deployment(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_deployment_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_deployment_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_deployment_spec(common.dict_at(new, "spec"), field.Path("spec")))
    errs.extend(
        common.validate_immutable(
            common.dict_at(new, "spec").get("selector"),
            common.dict_at(old, "spec").get("selector"),
            field.Path("spec", "selector"),
        )
    )
    return errs


_STATUS_COUNTERS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
    "collisionCount",
)


def validate_deployment_status(status: Object, path: field.Path) -> field.ErrorList:
    """``ValidateDeploymentStatus``: counters non-negative and bounded by ``replicas``."""
    errs = field.ErrorList()
    for name in _STATUS_COUNTERS:
        errs.extend(common.validate_nonnegative(status.get(name), path.child(name)))
    replicas = status.get("replicas", 0)
    for name in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if status.get(name, 0) > replicas:
            errs.append(
                field.invalid(
                    path.child(name), status.get(name), "cannot be greater than status.replicas"
                )
            )
    if status.get("availableReplicas", 0) > status.get("readyReplicas", 0):
        errs.append(
            field.invalid(
                path.child("availableReplicas"),
                status.get("availableReplicas"),
                "cannot be greater than readyReplicas",
            )
        )
    return errs


def validate_collision_count_update(new: Object, old: Object) -> field.ErrorList:
    """``status.collisionCount`` may not go down (or be removed once set)."""
    errs = field.ErrorList()
    old_count = common.dict_at(old, "status").get("collisionCount")
    new_count = common.dict_at(new, "status").get("collisionCount")
    if old_count is not None and (new_count is None or new_count < old_count):
        errs.append(
            field.invalid(
                field.Path("status", "collisionCount"), new_count or 0, "cannot be decremented"
            )
        )
    return errs


def validate_deployment_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_deployment_status(common.dict_at(new, "status"), field.Path("status")))
    errs.extend(validate_collision_count_update(new, old))
    return errs
