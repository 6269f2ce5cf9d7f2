"""Defaulting of APIServices (upstream: kube-aggregator apis/apiregistration/v1 defaults).

Owns the one default v1 has: a ``spec.service`` without a port reaches port 443.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]

DEFAULT_SERVICE_PORT = 443


def set_defaults_api_service(obj: Object) -> None:
    """SetDefaults_ServiceReference, in place."""
    spec = obj.get("spec")
    service = spec.get("service") if isinstance(spec, dict) else None
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = DEFAULT_SERVICE_PORT
