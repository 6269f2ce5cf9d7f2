"""Validation of apps/v1 DaemonSets (upstream: ValidateDaemonSet in pkg/apis/apps/validation)."""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common, deployments
from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field

Object = dict[str, Any]

UPDATE_STRATEGY_TYPES = ("RollingUpdate", "OnDelete")


def _validate_rolling_update(rolling: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    max_unavailable = rolling.get("maxUnavailable")
    max_surge = rolling.get("maxSurge")
    errs.extend(
        common.validate_positive_int_or_percent(max_unavailable, path.child("maxUnavailable"))
    )
    errs.extend(common.validate_positive_int_or_percent(max_surge, path.child("maxSurge")))
    errs.extend(common.is_not_more_than_100_percent(max_unavailable, path.child("maxUnavailable")))
    errs.extend(common.is_not_more_than_100_percent(max_surge, path.child("maxSurge")))
    has_unavailable = common.int_or_percent_value(max_unavailable) != 0
    has_surge = common.int_or_percent_value(max_surge) != 0
    if has_unavailable and has_surge:
        errs.append(
            field.invalid(
                path.child("maxSurge"), max_surge, "may not be set when maxUnavailable is non-zero"
            )
        )
    elif not has_unavailable and not has_surge:
        errs.append(field.required(path.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    return errs


def _validate_update_strategy(strategy: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    kind = strategy.get("type", "")
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            errs.append(field.required(path.child("rollingUpdate")))
        else:
            errs.extend(_validate_rolling_update(rolling, path.child("rollingUpdate")))
    elif kind != "OnDelete":
        errs.append(field.not_supported(path, strategy, UPDATE_STRATEGY_TYPES))
    return errs


def validate_daemon_set_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    selector = spec.get("selector")
    template = common.dict_at(spec, "template")
    errs.extend(common.validate_label_selector(selector, path.child("selector")))
    # Unlike ReplicaSets, a nil selector is not "required" here: it converts to
    # "nothing" and so fails the template match below.
    errs.extend(
        common.validate_template_labels_match(
            selector, template, path.child("template"), skip_empty=False
        )
    )
    if isinstance(selector, dict) and common.selector_is_empty(selector):
        errs.append(
            field.invalid(
                path.child("selector"), selector, "empty selector is invalid for daemonset"
            )
        )
    errs.extend(pods.validate_pod_template_spec(template, path.child("template")))
    template_spec = common.dict_at(template, "spec")
    restart = template_spec.get("restartPolicy", "")
    if restart != "Always":
        errs.append(
            field.not_supported(
                path.child("template", "spec", "restartPolicy"), restart, ["Always"]
            )
        )
    if template_spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            field.forbidden(
                path.child("template", "spec", "activeDeadlineSeconds"),
                "activeDeadlineSeconds in DaemonSet is not Supported",
            )
        )
    errs.extend(
        common.validate_nonnegative(spec.get("minReadySeconds"), path.child("minReadySeconds"))
    )
    errs.extend(
        common.validate_nonnegative(
            spec.get("templateGeneration"), path.child("templateGeneration")
        )
    )
    errs.extend(
        _validate_update_strategy(
            common.dict_at(spec, "updateStrategy"), path.child("updateStrategy")
        )
    )
    errs.extend(
        common.validate_nonnegative(
            spec.get("revisionHistoryLimit"), path.child("revisionHistoryLimit")
        )
    )
    return errs


def validate_daemon_set(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_daemon_set_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_daemon_set_update(new: Object, old: Object) -> field.ErrorList:
    """Spec revalidated; selector immutable (apps/v1, checked by upstream's strategy)."""
    errs = common.validate_meta_update(new, old)
    new_spec = common.dict_at(new, "spec")
    old_spec = common.dict_at(old, "spec")
    errs.extend(validate_daemon_set_spec(new_spec, field.Path("spec")))
    errs.extend(
        common.validate_immutable(
            new_spec.get("selector"), old_spec.get("selector"), field.Path("spec", "selector")
        )
    )
    return errs


_STATUS_COUNTERS = (
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
    "observedGeneration",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
    "collisionCount",
)


def validate_daemon_set_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    status = common.dict_at(new, "status")
    for name in _STATUS_COUNTERS:
        errs.extend(common.validate_nonnegative(status.get(name), field.Path("status", name)))
    errs.extend(deployments.validate_collision_count_update(new, old))
    return errs
