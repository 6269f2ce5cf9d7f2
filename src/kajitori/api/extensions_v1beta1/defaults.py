"""extensions/v1beta1 workload defaults (upstream 1.15 pkg/apis/extensions/v1beta1/defaults.go).

The oldest rules: selector and labels from the template, DaemonSets update
OnDelete, Deployments roll one pod at a time (maxUnavailable 1, maxSurge 1)
and, unset, keep every old ReplicaSet and have no progress deadline
(both max int32).
"""

from __future__ import annotations

from kajitori.api.apps_v1beta1 import conversion

Object = conversion.Object

MAX_INT32 = 2**31 - 1


def set_defaults_daemon_set(obj: Object) -> None:
    conversion.default_from_template_labels(obj)
    spec = conversion.spec_of(obj)
    strategy = conversion.child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "OnDelete"
    if strategy.get("type") == "RollingUpdate":
        rolling = conversion.child(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
    conversion.default_int(spec, "revisionHistoryLimit", 10)


def set_defaults_deployment(obj: Object) -> None:
    conversion.default_from_template_labels(obj)
    spec = conversion.spec_of(obj)
    conversion.default_int(spec, "replicas", 1)
    conversion.default_rolling_update(
        conversion.child(spec, "strategy"), kind="RollingUpdate", max_unavailable=1, max_surge=1
    )
    conversion.default_int(spec, "progressDeadlineSeconds", MAX_INT32)
    conversion.default_int(spec, "revisionHistoryLimit", MAX_INT32)


def set_defaults_replica_set(obj: Object) -> None:
    conversion.default_from_template_labels(obj)
    conversion.default_int(conversion.spec_of(obj), "replicas", 1)
