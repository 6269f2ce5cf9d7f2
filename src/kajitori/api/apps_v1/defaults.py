"""Defaulting for apps/v1 objects (upstream: pkg/apis/apps/v1/defaults.go).

Owns what the server fills into Deployments, ReplicaSets, StatefulSets,
DaemonSets and ControllerRevisions, plus the pod-template and claim-template
defaults upstream's generated defaulters apply to the nested core types (so a
Deployment read back shows ``restartPolicy: Always``, a StatefulSet's
``volumeClaimTemplates`` show ``volumeMode: Filesystem``).

Every function mutates in place and is idempotent.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import defaults as core_defaults

Object = dict[str, Any]

DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _sub(obj: Object, key: str) -> Object:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _set_default(obj: Object, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


def _default_template(spec: Object) -> None:
    core_defaults.set_defaults_pod_template_spec(_sub(spec, "template"))


def set_defaults_deployment(obj: Object) -> None:
    """Replicas 1, RollingUpdate 25%/25%, history 10, progress deadline 600s."""
    spec = _spec(obj)
    _set_default(spec, "replicas", 1)
    strategy = _sub(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        _set_default(rolling, "maxUnavailable", "25%")
        _set_default(rolling, "maxSurge", "25%")
    _set_default(spec, "revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _set_default(spec, "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS)
    _default_template(spec)


def set_defaults_replica_set(obj: Object) -> None:
    """Replicas 1 and the template's pod defaults."""
    spec = _spec(obj)
    _set_default(spec, "replicas", 1)
    _default_template(spec)


def set_defaults_daemon_set(obj: Object) -> None:
    """RollingUpdate with maxUnavailable 1 / maxSurge 0, history 10."""
    spec = _spec(obj)
    strategy = _sub(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        _set_default(rolling, "maxUnavailable", 1)
        _set_default(rolling, "maxSurge", 0)
    _set_default(spec, "revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _default_template(spec)


def set_defaults_stateful_set(obj: Object) -> None:
    """OrderedReady, RollingUpdate (partition 0, maxUnavailable 1), Retain/Retain, 1 replica.

    maxUnavailable is defaulted because MaxUnavailableStatefulSet is beta (on)
    since 1.35; the claim templates get the PVC defaults (Filesystem, Pending).
    """
    spec = _spec(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _sub(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _sub(strategy, "rollingUpdate")
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
        _set_default(rolling, "partition", 0)
        _set_default(rolling, "maxUnavailable", 1)
    retention = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    for key in ("whenDeleted", "whenScaled"):
        if not retention.get(key):
            retention[key] = "Retain"
    _set_default(spec, "replicas", 1)
    _set_default(spec, "revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _default_template(spec)
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            core_defaults.set_defaults_persistent_volume_claim(claim)


def set_defaults_controller_revision(obj: Object) -> None:
    """ControllerRevisions have no defaults."""
