"""Validation of apps/v1 StatefulSets (upstream: ValidateStatefulSet in pkg/apis/apps/validation).

Names are DNS labels (pods are named ``<set>-<ordinal>``). On update only
replicas, ordinals, template, updateStrategy, revisionHistoryLimit,
persistentVolumeClaimRetentionPolicy and minReadySeconds may change.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common, deployments
from kajitori.machinery import field

Object = dict[str, Any]

POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
RETENTION_POLICIES = ("Retain", "Delete")
MUTABLE_SPEC_FIELDS = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
FORBIDDEN_UPDATE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)


def _validate_update_strategy(strategy: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    kind = strategy.get("type", "")
    rolling = strategy.get("rollingUpdate")
    if kind == "":
        errs.append(field.required(path))
    elif kind == "OnDelete":
        if rolling is not None:
            errs.append(
                field.invalid(
                    path.child("rollingUpdate"),
                    rolling,
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
    elif kind == "RollingUpdate":
        if isinstance(rolling, dict):
            errs.extend(_validate_rolling_update(rolling, path.child("rollingUpdate")))
    else:
        errs.append(field.invalid(path, strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    return errs


def _validate_rolling_update(rolling: Object, path: field.Path) -> field.ErrorList:
    errs = common.validate_nonnegative(rolling.get("partition"), path.child("partition"))
    max_unavailable = rolling.get("maxUnavailable")
    if max_unavailable is not None:
        max_path = path.child("maxUnavailable")
        errs.extend(common.validate_positive_int_or_percent(max_unavailable, max_path))
        if common.int_or_percent_value(max_unavailable) == 0:
            errs.append(field.invalid(max_path, max_unavailable, "cannot be 0"))
        errs.extend(common.is_not_more_than_100_percent(max_unavailable, max_path))
    return errs


def _validate_retention_policy(policy: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(policy, dict):
        return errs
    for key in ("whenDeleted", "whenScaled"):
        value = policy.get(key, "")
        if value not in RETENTION_POLICIES:
            errs.append(field.not_supported(path.child(key), value, RETENTION_POLICIES))
    return errs


def _validate_selector_and_template(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    selector = spec.get("selector")
    if selector is None:
        errs.append(field.required(path.child("selector")))
    else:
        errs.extend(common.validate_label_selector(selector, path.child("selector")))
        if common.selector_is_empty(selector):
            errs.append(
                field.invalid(
                    path.child("selector"), selector, "empty selector is invalid for statefulset"
                )
            )
    template = common.dict_at(spec, "template")
    if not common.selector_is_valid(selector):
        errs.append(field.invalid(path.child("selector"), selector, ""))
    else:
        errs.extend(
            common.validate_template_labels_match(selector, template, path.child("template"))
        )
        # Upstream validates only the template's labels here (its PodSpec check
        # is a long-standing TODO because claim-template mounts would fail it),
        # at the quirky path spec.template.labels.
        errs.extend(
            common.validate_labels(
                common.dict_at(template, "metadata").get("labels"), path.child("template", "labels")
            )
        )
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
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    return errs


def validate_stateful_set_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    policy = spec.get("podManagementPolicy", "")
    if policy == "":
        errs.append(field.required(path.child("podManagementPolicy")))
    elif policy not in POD_MANAGEMENT_POLICIES:
        errs.append(
            field.invalid(
                path.child("podManagementPolicy"), policy, "must be 'OrderedReady' or 'Parallel'"
            )
        )
    errs.extend(
        _validate_update_strategy(
            common.dict_at(spec, "updateStrategy"), path.child("updateStrategy")
        )
    )
    errs.extend(
        _validate_retention_policy(
            spec.get("persistentVolumeClaimRetentionPolicy"),
            path.child("persistentVolumeClaimRetentionPolicy"),
        )
    )
    errs.extend(common.validate_nonnegative(spec.get("replicas"), path.child("replicas")))
    errs.extend(
        common.validate_nonnegative(spec.get("minReadySeconds"), path.child("minReadySeconds"))
    )
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        errs.extend(
            common.validate_nonnegative(ordinals.get("start"), path.child("ordinals.start"))
        )
    errs.extend(_validate_selector_and_template(spec, path))
    return errs


def validate_stateful_set(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_label)
    errs.extend(validate_stateful_set_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_stateful_set_update(new: Object, old: Object) -> field.ErrorList:
    """Spec revalidated (name not: old sets may carry DNS-subdomain names); frozen fields."""
    errs = common.validate_meta_update(new, old)
    new_spec = common.dict_at(new, "spec")
    old_spec = common.dict_at(old, "spec")
    errs.extend(validate_stateful_set_spec(new_spec, field.Path("spec")))
    frozen_new = {k: v for k, v in new_spec.items() if k not in MUTABLE_SPEC_FIELDS}
    frozen_old = {k: v for k, v in old_spec.items() if k not in MUTABLE_SPEC_FIELDS}
    if frozen_new != frozen_old:
        errs.append(field.forbidden(field.Path("spec"), FORBIDDEN_UPDATE))
    return errs


def validate_stateful_set_status(status: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for name in (
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
        "observedGeneration",
        "collisionCount",
    ):
        errs.extend(common.validate_nonnegative(status.get(name), path.child(name)))
    replicas = status.get("replicas", 0)
    for name in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
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
                "cannot be greater than status.readyReplicas",
            )
        )
    return errs


def validate_stateful_set_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = validate_stateful_set_status(common.dict_at(new, "status"), field.Path("status"))
    errs.extend(common.validate_meta_update(new, old))
    errs.extend(deployments.validate_collision_count_update(new, old))
    return errs
