"""Defaulting of apiextensions.k8s.io/v1 CustomResourceDefinitions (upstream: v1/defaults.go)."""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def set_defaults_crd(obj: Object) -> None:
    """Singular and listKind from kind; conversion strategy None."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    conversion = spec.setdefault("conversion", {})
    if isinstance(conversion, dict):
        conversion.setdefault("strategy", "None")
