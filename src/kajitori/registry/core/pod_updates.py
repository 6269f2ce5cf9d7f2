"""What every update path of a pod shares: the pod itself, ``pods/ephemeralcontainers`` and
``pods/resize``.

Owns ``update_pod_generation`` (upstream's updatePodGeneration) and, for the subresources that
change one part of the spec, ``keep_stored_parts`` (the stored status and the metadata upstream's
ResetObjectMetaForStatus takes from the stored pod). Their strategies live in ``pods.py``,
``pod_ephemeralcontainers.py`` and ``pod_resize.py``, which import this module (``pods.py``
imports the other two, so the shared part cannot live there).
"""

from __future__ import annotations

import copy
from typing import Any

Object = dict[str, Any]

# ObjectMeta that upstream's ResetObjectMetaForStatus takes from the stored object.
_STORED_METADATA = (
    "deletionTimestamp",
    "generation",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
)


def update_pod_generation(obj: Object, old: Object) -> None:
    """Upstream's updatePodGeneration: a changed spec is the pod's next generation.

    Anything else (metadata, status) keeps the stored generation, which a
    client cannot set either; a pod stored without one counts from 0.
    """
    meta = obj.setdefault("metadata", {})
    generation = (old.get("metadata") or {}).get("generation", 0)
    if obj.get("spec") != old.get("spec"):
        generation += 1
    if generation:
        meta["generation"] = generation
    else:
        meta.pop("generation", None)


def keep_stored_parts(obj: Object, old: Object) -> None:
    """A subresource write changes its part of the spec only: the status and the metadata
    upstream resets come from the stored pod."""
    if "status" in old:
        obj["status"] = copy.deepcopy(old["status"])
    else:
        obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    old_meta = old.get("metadata") or {}
    for key in _STORED_METADATA:
        if key in old_meta:
            meta[key] = copy.deepcopy(old_meta[key])
        else:
            meta.pop(key, None)
