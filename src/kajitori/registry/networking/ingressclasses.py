"""IngressClasses in the API server (upstream: pkg/registry/networking/ingressclass).

Owns: cluster scope; generation bumps on spec changes; the ``kubectl get
ingressclasses`` columns (NAME CONTROLLER PARAMETERS AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.networking_v1 import defaults
from kajitori.api.networking_v1.validation import ingressclasses as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class IngressClassStrategy(strategies.Strategy):
    """Create/update rules for ``networking.k8s.io/v1 ingressclasses``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_ingress_class(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_ingress_class(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_ingress_class_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Controller", description="Controller that is responsible for handling this class"
    ),
    tables.Column("Parameters", description="A reference to a resource with additional parameters"),
    tables.AGE_COLUMN,
)


def _parameters(spec: Object) -> str:
    """ "Kind.apiGroup/name" of the parameters reference, "<none>" without one."""
    params = spec.get("parameters")
    if not isinstance(params, dict):
        return "<none>"
    text = str(params.get("kind") or "")
    if params.get("apiGroup") is not None:
        text = f"{text}.{params['apiGroup']}"
    return f"{text}/{params.get('name') or ''}"


def ingress_class_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    return [
        tables.name(obj),
        str(spec.get("controller") or ""),
        _parameters(spec),
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="networking.k8s.io",
    version="v1",
    kind="IngressClass",
    plural="ingressclasses",
    namespaced=False,
    strategy=IngressClassStrategy(),
    table=tables.Table(columns=COLUMNS, row=ingress_class_row),
    tracks_generation=True,
)
