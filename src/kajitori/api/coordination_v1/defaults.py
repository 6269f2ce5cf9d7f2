"""Defaulting for coordination.k8s.io/v1 objects (upstream: pkg/apis/coordination/v1).

Upstream registers no defaulting function for Lease; the function exists so
every resource strategy has the same shape.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def set_defaults_lease(obj: Object) -> None:
    """Leases have no defaults."""
