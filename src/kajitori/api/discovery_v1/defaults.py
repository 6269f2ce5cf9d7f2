"""Defaulting for discovery.k8s.io/v1 objects (upstream: pkg/apis/discovery/v1/defaults.go).

Each port gets an empty name and protocol TCP when unset, so that port
matching by name works on what is stored. In place and idempotent.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def set_defaults_endpoint_slice(obj: Object) -> None:
    """``SetDefaults_EndpointPort`` for every entry of ``ports``."""
    for port in obj.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"
