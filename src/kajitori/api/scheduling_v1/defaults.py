"""Defaults of scheduling.k8s.io/v1 (upstream: pkg/apis/scheduling/v1/defaults.go)."""

from __future__ import annotations

from typing import Any

PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"


def set_defaults_priority_class(obj: dict[str, Any]) -> None:
    """A PriorityClass preempts lower-priority pods unless it says Never."""
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = PREEMPT_LOWER_PRIORITY
