"""``pods/resize``: the one way to change a running pod's container resources.

Owns upstream's podResizeStrategy (pkg/registry/core/pod/strategy.go): a GET
answers the pod; an update (PUT, or any patch: ``kubectl patch
--subresource resize`` sends a strategic merge patch) takes from the request
only ``resources`` and ``resizePolicy`` of the regular and init containers,
matched by position and name. The rest of the spec, the status and the
metadata a status write may not touch (upstream's ResetObjectMetaForStatus)
stay as stored; a request that adds, removes, reorders or renames containers
is kept as sent, so that validation refuses it. A changed spec is the pod's
next generation. ``validation/pod_resize.py`` then checks what changed.

The kubelet does the rest (kubelet/resize.py): it accepts the new
resources when its node has room, reports them in
``status.containerStatuses[].allocatedResources``/``resources`` and the
``PodResizePending``/``PodResizeInProgress`` conditions. The main update
path still refuses any change of resources ("pod updates may not change
fields other than ...").

Declared by ``pods.py`` in ``extra_strategies``, as ``ephemeralcontainers``.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import pod_resize as validation
from kajitori.machinery import field
from kajitori.registry.core import pod_updates
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]

SUBRESOURCE = "resize"

# The container fields a resize request may carry into the stored spec.
RESIZE_FIELDS = ("resources", "resizePolicy")


def _containers(spec: Any, key: str) -> list[Any]:
    value = spec.get(key) if isinstance(spec, dict) else None
    return list(value) if isinstance(value, list) else []


def _merge_resize_fields(new: list[Any], old: list[Any]) -> list[Any] | None:
    """dropNonResizeUpdatesForContainers: old containers with new's resize fields.

    ``None`` when a container was renamed or moved: the request is then kept
    as sent, and validation refuses it.
    """
    merged = copy.deepcopy(old)
    for i, container in enumerate(new):
        if not isinstance(container, dict) or not isinstance(merged[i], dict):
            return None
        if container.get("name") != merged[i].get("name"):
            return None
        for key in RESIZE_FIELDS:
            if key in container:
                merged[i][key] = container[key]
            else:
                merged[i].pop(key, None)
    return merged


def _resize_only_spec(new_spec: Any, old_spec: Object) -> Object | None:
    """The stored spec with the request's resize fields, or ``None`` to keep the request."""
    parts: dict[str, list[Any]] = {}
    for key in ("containers", "initContainers"):
        new, old = _containers(new_spec, key), _containers(old_spec, key)
        if len(new) != len(old):
            return None
        merged = _merge_resize_fields(new, old)
        if merged is None:
            return None
        parts[key] = merged
    spec = copy.deepcopy(old_spec)
    for key, merged in parts.items():
        if merged or key in spec:
            spec[key] = merged
    return spec


class PodResizeStrategy(strategies.Strategy):
    """Update rules of ``pods/resize`` (it serves no create or delete)."""

    def set_defaults(self, obj: Object) -> None:
        # The request's containers get their defaults (requests from limits
        # among them) before their resources are taken, as upstream decodes
        # into a defaulted object.
        defaults.set_defaults_pod(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        spec = _resize_only_spec(obj.get("spec"), old.get("spec") or {})
        if spec is not None:
            obj["spec"] = spec
            pod_updates.keep_stored_parts(obj, old)
        pod_updates.update_pod_generation(obj, old)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_resize(obj, old)

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        return False  # done in prepare_for_update, as upstream's strategy does


STRATEGY = PodResizeStrategy()
