"""Conversion between the old workload versions and apps/v1, shared by all of them.

The old versions (apps/v1beta1, apps/v1beta2, extensions/v1beta1) have the
same wire shape as apps/v1 except for a few fields; upstream converts them
through its internal types and keeps apps/v1 in etcd. Here a request body is
defaulted in its own version (``defaults`` of that version), then moved to
apps/v1 (``upgrade``); a stored object is moved back with ``downgrade``. Two
fields exist only in old versions and travel as the annotations upstream's
apps/v1 conversion uses: a Deployment's ``spec.rollbackTo`` and an
extensions DaemonSet's ``spec.templateGeneration``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Object = dict[str, Any]
Defaulter = Callable[[Object], None]

STORAGE_API_VERSION = "apps/v1"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


def spec_of(obj: Object) -> Object:
    """``obj.spec`` as a dict, created when absent (defaults write into it)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        if spec is not None:
            return {}  # not an object: left for the decoder to reject
        spec = obj["spec"] = {}
    return spec


def child(parent: Object, key: str) -> Object:
    """``parent[key]`` as a dict, created when absent ({} detached when of another type)."""
    node = parent.get(key)
    if node is None:
        node = parent[key] = {}
    return node if isinstance(node, dict) else {}


def default_from_template_labels(obj: Object) -> None:
    """Selector and object labels from the pod template's labels (the pre-apps/v1 rule)."""
    spec = spec_of(obj)
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if not isinstance(labels, dict) or not isinstance(obj.get("metadata", {}), dict):
        return
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": dict(labels)}
    meta = obj.setdefault("metadata", {})
    if not meta.get("labels"):
        meta["labels"] = dict(labels)


def default_int(spec: Object, key: str, value: int) -> None:
    if spec.get(key) is None:
        spec[key] = value


def default_rolling_update(
    strategy: Object, *, kind: str, max_unavailable: int | str, max_surge: int | str | None
) -> None:
    """Type defaults to ``kind``; a RollingUpdate strategy gets the version's budgets."""
    if not strategy.get("type"):
        strategy["type"] = kind
    if strategy.get("type") != "RollingUpdate" and strategy.get("rollingUpdate") is None:
        return
    rolling = child(strategy, "rollingUpdate")
    if rolling.get("maxUnavailable") is None:
        rolling["maxUnavailable"] = max_unavailable
    if max_surge is not None and rolling.get("maxSurge") is None:
        rolling["maxSurge"] = max_surge


def upgrade(obj: Object, defaults: Defaulter) -> Object:
    """A decoded request body in an old version, defaulted there, as apps/v1."""
    if isinstance(obj.get("spec", {}), dict):
        defaults(obj)
        _rollback_to_annotation(obj)
        _template_generation_to_annotation(obj)
    obj["apiVersion"] = STORAGE_API_VERSION
    return obj


def downgrade(obj: Object, api_version: str, *, template_generation: bool = False) -> Object:
    """A stored apps/v1 object as ``api_version`` (a new object; ``obj`` is untouched)."""
    # A stored object was encoded by orjson, so a round trip copies it exactly, about ten
    # times faster than copy.deepcopy (every old-version watcher takes this per event).
    out = orjson.loads(orjson.dumps(obj))
    out["apiVersion"] = api_version
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    rollback = annotations.pop(ROLLBACK_TO_ANNOTATION, None)
    if rollback is not None and out.get("kind") == "Deployment":
        try:
            spec_of(out)["rollbackTo"] = {"revision": int(rollback)}
        except ValueError:
            pass
    if template_generation:
        generation = annotations.pop(TEMPLATE_GENERATION_ANNOTATION, None)
        if generation is not None:
            try:
                spec_of(out)["templateGeneration"] = int(generation)
            except ValueError:
                pass
    if not annotations and isinstance(out.get("metadata"), dict):
        out["metadata"].pop("annotations", None)
    return out


def _annotations(obj: Object) -> Object:
    meta = obj.setdefault("metadata", {})
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = meta["annotations"] = {}
    return annotations


def _rollback_to_annotation(obj: Object) -> None:
    """``spec.rollbackTo`` (gone in apps/v1) kept as upstream's annotation."""
    rollback = spec_of(obj).pop("rollbackTo", None)
    if isinstance(rollback, dict) and isinstance(obj.get("metadata", {}), dict):
        _annotations(obj)[ROLLBACK_TO_ANNOTATION] = str(rollback.get("revision") or 0)


def _template_generation_to_annotation(obj: Object) -> None:
    """``spec.templateGeneration`` (extensions DaemonSets) kept as upstream's annotation."""
    generation = spec_of(obj).pop("templateGeneration", None)
    if isinstance(generation, int) and isinstance(obj.get("metadata", {}), dict):
        _annotations(obj)[TEMPLATE_GENERATION_ANNOTATION] = str(generation)
