"""Defaulting for policy/v1 objects (upstream registers none for PodDisruptionBudget).

An unset ``unhealthyPodEvictionPolicy`` means IfHealthyBudget, but upstream
leaves it unset rather than writing the value, and so do we.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def set_defaults_pod_disruption_budget(obj: Object) -> None:
    """PodDisruptionBudgets have no defaults."""
