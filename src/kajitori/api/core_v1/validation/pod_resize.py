"""Validation of an in-place pod resize (upstream ValidatePodResize, 1.37).

Owns what ``pods/resize`` checks once its strategy has kept everything but
the containers' ``resources`` and ``resizePolicy`` as stored:

* the pod's metadata update and spec, as any pod update;
* pods that cannot be resized at all: pod-level resources, static (mirror)
  pods, Windows pods (each the only error when it applies);
* the QoS class may not change; a pod whose running containers report no
  ``status.containerStatuses[].resources`` is on a node that cannot resize;
* per resizable container (regular ones and sidecars, i.e. init containers
  with ``restartPolicy: Always``): requests and limits may change but not be
  removed. Memory limits may go down, also with a ``NotRequired`` policy:
  since 1.34 the kubelet checks usage instead (upstream PR 133012);
* only cpu and memory may change, non-sidecar init containers not at all,
  and ``resizePolicy`` no more than the rest of the spec.

Quantities compare by value, as Go's ``Semantic.DeepEqual`` does
(``1`` equals ``1000m``). Paths and messages follow
pkg/apis/core/validation/validation.go.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.api.core_v1 import qos
from kajitori.api.core_v1 import validation as common
from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field, objectmeta

Object = dict[str, Any]

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
RESIZABLE_RESOURCES = ("cpu", "memory")
ONLY_CPU_MEMORY = "only cpu and memory resources are mutable"
ONLY_CPU_MEMORY_SIDECAR = "only cpu and memory resources for sidecar containers are mutable"
NON_SIDECAR_IMMUTABLE = "resources for non-sidecar init containers are immutable"
QOS_MAY_NOT_CHANGE = "Pod QOS Class may not change as a result of resizing"
NODE_WITHOUT_RESIZE = "Pod running on node without support for resize"


def _items(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def is_restartable_init_container(container: Object) -> bool:
    """A sidecar: an init container that runs beside the others (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


def _pod_level_resources(pod: Object) -> bool:
    resources = _dict(_dict(pod.get("spec")).get("resources"))
    return bool(_dict(resources.get("requests")) or _dict(resources.get("limits")))


def _not_resizable(new: Object, old: Object) -> str | None:
    """Why the pod cannot be resized at all (upstream's early returns), if it cannot."""
    if _pod_level_resources(old) or _pod_level_resources(new):
        return "pods with pod-level resources cannot be resized"
    if MIRROR_POD_ANNOTATION in _dict(_dict(old.get("metadata")).get("annotations")):
        return "static pods cannot be resized"
    if _dict(_dict(old.get("spec")).get("os")).get("name") == "windows":
        return "windows pods cannot be resized"
    return None


def resize_supported(pod: Object) -> bool:
    """isPodResizeRequestSupported: the first running container reports its resources.

    A node whose kubelet cannot resize reports none; with no running
    container nothing tells, and the resize is let through.
    """
    for status in _items(_dict(pod.get("status")).get("containerStatuses")):
        if _dict(status.get("state")).get("running") is not None:
            return status.get("resources") is not None
    return True


def _removed(new: Any, old: Any) -> bool:
    new_names, old_names = set(_dict(new)), set(_dict(old))
    return not old_names <= new_names


def validate_container_resize(new: Any, old: Any, path: field.Path) -> field.ErrorList:
    """validateContainerResize: requests and limits may not be removed."""
    new, old = _dict(new), _dict(old)
    errs = field.ErrorList()
    if _removed(new.get("requests"), old.get("requests")):
        errs.append(field.forbidden(path.child("requests"), "resource requests cannot be removed"))
    if _removed(new.get("limits"), old.get("limits")):
        errs.append(field.forbidden(path.child("limits"), "resource limits cannot be removed"))
    return errs


def _canonical_resources(resources: Any) -> Object:
    out: Object = {}
    for kind in ("limits", "requests", "claims"):
        entries = _dict(resources).get(kind)
        if kind == "claims":
            if entries:
                out[kind] = entries
            continue
        if entries is None:
            continue
        amounts = {}
        for name, value in _dict(entries).items():
            amount = common.quantity_value(value)
            amounts[name] = value if amount is None else amount
        out[kind] = amounts
    return out


def _canonical_container(container: Object) -> Object:
    """The container as Go's semantic equality sees it: quantities by value, empty = unset."""
    out = copy.deepcopy(container)
    resources = _canonical_resources(out.pop("resources", None))
    out["resources"] = {k: v for k, v in resources.items() if v}
    return out


def _drop_cpu_memory_changes(container: Object, old: Object) -> Object:
    """dropCPUMemoryResourcesFromContainer: ``container`` with old's cpu and memory amounts."""
    munged = copy.deepcopy(container)
    resources = _dict(munged.get("resources"))
    old_resources = _dict(old.get("resources"))
    kept: Object = {}
    for kind in ("limits", "requests"):
        old_list = old_resources.get(kind)
        if old_list is None:
            continue  # Go: a nil old list makes the munged list nil as well
        merged = {
            k: v for k, v in _dict(resources.get(kind)).items() if k not in RESIZABLE_RESOURCES
        }
        for name in RESIZABLE_RESOURCES:
            if name in _dict(old_list):
                merged[name] = old_list[name]
        kept[kind] = merged
    munged["resources"] = kept
    return munged


def _same_container(a: Object, b: Object) -> bool:
    return _canonical_container(a) == _canonical_container(b)


def _spec_errors(new_spec: Object, old_spec: Object, spec_path: field.Path) -> field.ErrorList:
    """Part 2 of ValidatePodResize: what changed, and where it may."""
    errs = field.ErrorList()
    new_containers = _items(new_spec.get("containers"))
    old_containers = _items(old_spec.get("containers"))
    new_inits = _items(new_spec.get("initContainers"))
    old_inits = _items(old_spec.get("initContainers"))
    if len(new_containers) != len(old_containers) or len(new_inits) != len(old_inits):
        # Added or removed containers: only the final comparison speaks for them.
        return errs
    for i, old in enumerate(old_inits):
        if is_restartable_init_container(old):
            errs.extend(
                validate_container_resize(
                    new_inits[i].get("resources"),
                    old.get("resources"),
                    spec_path.child("initContainers").index(i).child("resources"),
                )
            )
    for i, old in enumerate(old_containers):
        errs.extend(
            validate_container_resize(
                new_containers[i].get("resources"),
                old.get("resources"),
                spec_path.child("containers").index(i).child("resources"),
            )
        )
    for i, container in enumerate(new_containers):
        if not _same_container(
            _drop_cpu_memory_changes(container, old_containers[i]), old_containers[i]
        ):
            errs.append(field.forbidden(spec_path, ONLY_CPU_MEMORY))
    for i, container in enumerate(new_inits):
        old = old_inits[i]
        if is_restartable_init_container(container):
            if not _same_container(_drop_cpu_memory_changes(container, old), old):
                errs.append(field.forbidden(spec_path, ONLY_CPU_MEMORY_SIDECAR))
        elif not _same_container(container, old):
            errs.append(field.forbidden(spec_path, NON_SIDECAR_IMMUTABLE))
    return errs


def _munged_spec(new_spec: Object, old_spec: Object) -> Object:
    """The new spec with every cpu and memory change of a resizable container undone."""
    munged = copy.deepcopy(new_spec)
    old_containers = _items(old_spec.get("containers"))
    old_inits = _items(old_spec.get("initContainers"))
    containers = _items(munged.get("containers"))
    inits = _items(munged.get("initContainers"))
    if len(containers) != len(old_containers) or len(inits) != len(old_inits):
        return munged
    munged["containers"] = [
        _canonical_container(_drop_cpu_memory_changes(c, old_containers[i]))
        for i, c in enumerate(containers)
    ]
    if "initContainers" in munged:
        munged["initContainers"] = [
            _canonical_container(
                _drop_cpu_memory_changes(c, old_inits[i]) if is_restartable_init_container(c) else c
            )
            for i, c in enumerate(inits)
        ]
    return munged


def _canonical_spec(spec: Object) -> Object:
    out = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        if key in out:
            out[key] = [_canonical_container(c) for c in _items(out[key])]
    return out


def validate_pod_resize(new: Object, old: Object) -> field.ErrorList:
    """ValidatePodResize: ``new`` differs from ``old`` only in containers' resources."""
    meta_path = field.Path("metadata")
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=meta_path
    )
    errs.extend(pods.validate_pod_metadata_and_spec(new))
    refusal = _not_resizable(new, old)
    if refusal is not None:
        return field.ErrorList([field.forbidden(field.Path(""), refusal)])
    spec_path = field.Path("spec")
    if qos.get_pod_qos(old) != qos.compute_pod_qos(new):
        qos_class = _dict(new.get("status")).get("qosClass") or ""
        errs.append(field.invalid(spec_path, qos_class, QOS_MAY_NOT_CHANGE))
    if not resize_supported(old):
        errs.append(field.forbidden(spec_path, NODE_WITHOUT_RESIZE))
    new_spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    errs.extend(_spec_errors(new_spec, old_spec, spec_path))
    if errs:
        return errs
    if _munged_spec(new_spec, old_spec) != _canonical_spec(old_spec):
        errs.append(field.forbidden(spec_path, ONLY_CPU_MEMORY))
    return errs
