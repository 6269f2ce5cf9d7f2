"""apps/v1beta1 defaults (upstream 1.15 pkg/apis/apps/v1beta1/defaults.go).

Unlike apps/v1, the selector (and the object's labels, when it has none)
default to the pod template's labels; a StatefulSet updates OnDelete; a
Deployment keeps 2 old ReplicaSets and rolls 25%/25%.
"""

from __future__ import annotations

from kajitori.api.apps_v1beta1 import conversion

Object = conversion.Object


def set_defaults_stateful_set(obj: Object) -> None:
    conversion.default_from_template_labels(obj)
    spec = conversion.spec_of(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = conversion.child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "OnDelete"
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict):
        conversion.default_int(rolling, "partition", 0)
    conversion.default_int(spec, "replicas", 1)
    conversion.default_int(spec, "revisionHistoryLimit", 10)


def set_defaults_deployment(obj: Object) -> None:
    conversion.default_from_template_labels(obj)
    spec = conversion.spec_of(obj)
    conversion.default_int(spec, "replicas", 1)
    conversion.default_rolling_update(
        conversion.child(spec, "strategy"),
        kind="RollingUpdate",
        max_unavailable="25%",
        max_surge="25%",
    )
    conversion.default_int(spec, "revisionHistoryLimit", 2)
    conversion.default_int(spec, "progressDeadlineSeconds", 600)


def set_defaults_controller_revision(obj: Object) -> None:
    """ControllerRevisions have no version-specific defaults."""
