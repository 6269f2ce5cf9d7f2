"""PodTemplate validation (upstream: ValidatePodTemplate / ValidatePodTemplateUpdate).

A PodTemplate is its metadata plus ``template``, a pod template validated
as the workloads' templates are (``pods.validate_pod_template_spec``), so
its errors are reported under ``template.spec...``. Unlike a ReplicaSet's
template there is no selector to match and any restartPolicy is allowed.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

_TEMPLATE = field.Path("template")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def validate_pod_template(obj: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    # The template is a Go struct, never nil: an absent one is validated as empty.
    errs.extend(pods.validate_pod_template_spec(_dict(obj.get("template")), _TEMPLATE))
    return errs


def validate_pod_template_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(pods.validate_pod_template_spec(_dict(new.get("template")), _TEMPLATE))
    return errs
