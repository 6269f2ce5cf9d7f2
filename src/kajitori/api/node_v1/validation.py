"""Validation of RuntimeClasses (upstream: pkg/apis/node/validation).

Owns what a RuntimeClass must satisfy: a DNS-subdomain name, a ``handler``
that is a DNS label and never changes, ``overhead.podFixed`` checked as a
container's resource limits are (so its errors are reported under
``overhead.limits[...]``, as upstream reuses ValidateResourceRequirements),
and ``scheduling``: a node selector of valid labels and valid tolerations.
"""

from __future__ import annotations

from typing import Any

import orjson

from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field, gostrings, names, objectmeta

Object = dict[str, Any]


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def validate_runtime_class(obj: Object) -> field.ErrorList:
    """ValidateRuntimeClass."""
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    handler = obj.get("handler") or ""
    for message in names.name_is_dns_label(handler, False):
        errs.append(field.invalid(field.Path("handler"), handler, message))
    overhead = obj.get("overhead")
    if overhead is not None:
        # Upstream wraps podFixed as the limits of a ResourceRequirements.
        limits = {"limits": _dict(overhead).get("podFixed")}
        errs.extend(pods.validate_resource_requirements(limits, field.Path("overhead")))
    scheduling = obj.get("scheduling")
    if scheduling is not None:
        errs.extend(_validate_scheduling(_dict(scheduling), field.Path("scheduling")))
    return errs


def _validate_scheduling(scheduling: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    selector = scheduling.get("nodeSelector")
    if selector is not None:
        errs.extend(objectmeta.validate_labels(_dict(selector), path.child("nodeSelector")))
    tolerations = scheduling.get("tolerations")
    errs.extend(pods.validate_tolerations(tolerations, path.child("tolerations")))
    errs.extend(_duplicate_tolerations(tolerations, path.child("tolerations")))
    return errs


_LIST_KEYS = ("key", "operator", "value", "effect")


class _GoToleration:
    """A toleration as Go's ``%#v`` prints a core.Toleration (a Duplicate's bad value)."""

    def __init__(self, toleration: Object) -> None:
        self.toleration = toleration

    def __repr__(self) -> str:
        quoted = [
            f"{k.capitalize()}:{orjson.dumps(str(self.toleration.get(k) or '')).decode()}"
            for k in _LIST_KEYS
        ]
        # Go prints the pointer's address when set; there is no address to show here.
        seconds = "nil" if self.toleration.get("tolerationSeconds") is None else gostrings.POINTER
        return "core.Toleration{" + ", ".join(quoted) + f", TolerationSeconds:(*int64)({seconds})}}"


def _duplicate_tolerations(tolerations: Any, path: field.Path) -> field.ErrorList:
    """Upstream refuses a second toleration with the same key, operator, value and effect."""
    errs = field.ErrorList()
    seen: set[tuple[str, ...]] = set()
    for i, toleration in enumerate(tolerations if isinstance(tolerations, list) else []):
        toleration = _dict(toleration)
        list_key = tuple(str(toleration.get(k) or "") for k in _LIST_KEYS)
        if list_key in seen:
            errs.append(field.duplicate(path.index(i), _GoToleration(toleration)))
        seen.add(list_key)
    return errs


def validate_runtime_class_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateRuntimeClassUpdate: metadata rules and an immutable ``handler``."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(
        objectmeta.validate_immutable_field(
            new.get("handler"), old.get("handler"), field.Path("handler")
        )
    )
    return errs
