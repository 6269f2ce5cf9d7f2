"""Validation of ReplicationControllers (upstream ValidateReplicationController*).

Owns: a non-empty map selector that matches the template's labels, a pod
template that is valid and restarts Always, non-negative counts.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _validate_template(template: Any, selector: Object, path: field.Path) -> field.ErrorList:
    if template is None:
        return field.ErrorList([field.required(path)])
    template = _dict(template)
    errs = field.ErrorList()
    labels = _dict(_dict(template.get("metadata")).get("labels"))
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.append(
            field.invalid(
                path.child("metadata", "labels"),
                labels,
                "`selector` does not match template `labels`",
            )
        )
    errs.extend(pods.validate_pod_template_spec(template, path))
    spec = _dict(template.get("spec"))
    if spec.get("restartPolicy") != "Always":
        errs.append(
            field.not_supported(
                path.child("spec", "restartPolicy"), spec.get("restartPolicy"), ("Always",)
            )
        )
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            field.forbidden(
                path.child("spec", "activeDeadlineSeconds"),
                "activeDeadlineSeconds in ReplicationController is not Supported",
            )
        )
    return errs


def validate_replication_controller_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = common.nonnegative(spec.get("minReadySeconds"), path.child("minReadySeconds"))
    selector = _dict(spec.get("selector"))
    if not selector:
        errs.append(field.required(path.child("selector")))
    errs.extend(objectmeta.validate_labels(selector, path.child("selector")))
    errs.extend(common.nonnegative(spec.get("replicas"), path.child("replicas")))
    errs.extend(_validate_template(spec.get("template"), selector, path.child("template")))
    return errs


def validate_replication_controller(rc: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        _dict(rc.get("metadata")),
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    errs.extend(validate_replication_controller_spec(_dict(rc.get("spec")), field.Path("spec")))
    return errs


def validate_replication_controller_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(validate_replication_controller_spec(_dict(new.get("spec")), field.Path("spec")))
    return errs


def validate_replication_controller_status_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateReplicationControllerStatus: counts non-negative and consistent."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    status = _dict(new.get("status"))
    path = field.Path("status")
    for key in (
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ):
        errs.extend(common.nonnegative(status.get(key), path.child(key)))
    replicas = status.get("replicas") or 0
    for key in ("fullyLabeledReplicas", "readyReplicas"):
        if (status.get(key) or 0) > replicas:
            errs.append(
                field.invalid(
                    path.child(key), status.get(key), "cannot be greater than status.replicas"
                )
            )
    if (status.get("availableReplicas") or 0) > (status.get("readyReplicas") or 0):
        errs.append(
            field.invalid(
                path.child("availableReplicas"),
                status.get("availableReplicas"),
                "cannot be greater than readyReplicas",
            )
        )
    return errs
