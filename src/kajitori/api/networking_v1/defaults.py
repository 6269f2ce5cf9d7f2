"""Defaulting for networking.k8s.io/v1 objects (upstream: pkg/apis/networking/v1/defaults.go).

NetworkPolicy ports default to TCP and an empty ``policyTypes`` becomes
["Ingress"] (plus "Egress" when egress rules exist); IngressClass parameters
default to Cluster scope. Ingresses have no defaults. In place and idempotent.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def _dicts(value: Any) -> list[Object]:
    return [item for item in value or () if isinstance(item, dict)]


def set_defaults_network_policy(obj: Object) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def set_defaults_ingress(obj: Object) -> None:
    """Ingresses have no defaults."""


def set_defaults_ingress_class(obj: Object) -> None:
    spec = obj.get("spec")
    parameters = spec.get("parameters") if isinstance(spec, dict) else None
    if isinstance(parameters, dict) and parameters.get("scope") is None:
        parameters["scope"] = "Cluster"
