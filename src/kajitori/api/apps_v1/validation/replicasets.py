"""Validation of apps/v1 ReplicaSets (upstream: ValidateReplicaSet in pkg/apis/apps/validation).

Also owns ``validate_pod_template_for_replica_set``, the template rule that
Deployments share: labels must match the selector, restartPolicy Always, no
activeDeadlineSeconds.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field

Object = dict[str, Any]


def validate_pod_template_for_replica_set(
    template: Any, selector: Any, path: field.Path, *, kind: str = "ReplicaSet"
) -> field.ErrorList:
    """``ValidatePodTemplateSpecForReplicaSet``: selector match plus workload-only rules."""
    errs = field.ErrorList()
    if not isinstance(template, dict):
        errs.append(field.required(path))
        return errs
    errs.extend(common.validate_template_labels_match(selector, template, path))
    errs.extend(pods.validate_pod_template_spec(template, path))
    spec = common.dict_at(template, "spec")
    restart = spec.get("restartPolicy", "")
    if restart != "Always":
        errs.append(field.not_supported(path.child("spec", "restartPolicy"), restart, ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            field.forbidden(
                path.child("spec", "activeDeadlineSeconds"),
                f"activeDeadlineSeconds in {kind} is not Supported",
            )
        )
    return errs


def validate_selector(selector: Any, path: field.Path, *, kind: str) -> field.ErrorList:
    """Selector required, syntactically valid and not empty ("empty selector is invalid for ...")."""
    errs = field.ErrorList()
    if selector is None:
        errs.append(field.required(path))
        return errs
    errs.extend(common.validate_label_selector(selector, path))
    if common.selector_is_empty(selector):
        errs.append(field.invalid(path, selector, f"empty selector is invalid for {kind}"))
    if not common.selector_is_valid(selector):
        errs.append(field.invalid(path, selector, "invalid label selector"))
    return errs


def validate_replica_set_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    errs.extend(common.validate_nonnegative(spec.get("replicas"), path.child("replicas")))
    errs.extend(
        common.validate_nonnegative(spec.get("minReadySeconds"), path.child("minReadySeconds"))
    )
    selector = spec.get("selector")
    # Upstream's ReplicaSet message says "deployment" (a copy-paste kept for compatibility).
    errs.extend(validate_selector(selector, path.child("selector"), kind="deployment"))
    if common.selector_is_valid(selector):
        errs.extend(
            validate_pod_template_for_replica_set(
                spec.get("template"), selector, path.child("template")
            )
        )
    return errs


def validate_replica_set(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_replica_set_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_replica_set_update(new: Object, old: Object) -> field.ErrorList:
    """Spec revalidated; the selector is immutable in apps/v1 (checked by the strategy upstream)."""
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_replica_set_spec(common.dict_at(new, "spec"), field.Path("spec")))
    errs.extend(
        common.validate_immutable(
            common.dict_at(new, "spec").get("selector"),
            common.dict_at(old, "spec").get("selector"),
            field.Path("spec", "selector"),
        )
    )
    return errs


def validate_replica_set_status(status: Object, path: field.Path) -> field.ErrorList:
    """``ValidateReplicaSetStatus``: counters non-negative and bounded by ``replicas``."""
    errs = field.ErrorList()
    counters = (
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    )
    for name in counters:
        errs.extend(common.validate_nonnegative(status.get(name), path.child(name)))
    errs.extend(
        _bounded(status, path, ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"))
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


def _bounded(status: Object, path: field.Path, names: tuple[str, ...]) -> field.ErrorList:
    errs = field.ErrorList()
    replicas = status.get("replicas", 0)
    for name in names:
        if status.get(name, 0) > replicas:
            errs.append(
                field.invalid(
                    path.child(name), status.get(name), "cannot be greater than status.replicas"
                )
            )
    return errs


def validate_replica_set_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_replica_set_status(common.dict_at(new, "status"), field.Path("status")))
    return errs
