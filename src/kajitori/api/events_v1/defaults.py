"""Defaulting for events.k8s.io/v1 objects (upstream registers none for Event)."""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def set_defaults_event(obj: Object) -> None:
    """events.k8s.io Events have no defaults."""
