"""apps/v1beta2 defaults (upstream 1.15 pkg/apis/apps/v1beta2/defaults.go).

apps/v1beta2 already requires a selector, as apps/v1 does; its defaults
are apps/v1's, so these only restate them for the served version.
"""

from __future__ import annotations

from kajitori.api.apps_v1beta1 import conversion

Object = conversion.Object


def set_defaults_daemon_set(obj: Object) -> None:
    spec = conversion.spec_of(obj)
    conversion.default_rolling_update(
        conversion.child(spec, "updateStrategy"),
        kind="RollingUpdate",
        max_unavailable=1,
        max_surge=None,
    )
    conversion.default_int(spec, "revisionHistoryLimit", 10)


def set_defaults_stateful_set(obj: Object) -> None:
    spec = conversion.spec_of(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = conversion.child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy.get("type") == "RollingUpdate":
        conversion.default_int(conversion.child(strategy, "rollingUpdate"), "partition", 0)
    conversion.default_int(spec, "replicas", 1)
    conversion.default_int(spec, "revisionHistoryLimit", 10)


def set_defaults_deployment(obj: Object) -> None:
    spec = conversion.spec_of(obj)
    conversion.default_int(spec, "replicas", 1)
    conversion.default_rolling_update(
        conversion.child(spec, "strategy"),
        kind="RollingUpdate",
        max_unavailable="25%",
        max_surge="25%",
    )
    conversion.default_int(spec, "revisionHistoryLimit", 10)
    conversion.default_int(spec, "progressDeadlineSeconds", 600)


def set_defaults_replica_set(obj: Object) -> None:
    conversion.default_int(conversion.spec_of(obj), "replicas", 1)


def set_defaults_controller_revision(obj: Object) -> None:
    """ControllerRevisions have no version-specific defaults."""
