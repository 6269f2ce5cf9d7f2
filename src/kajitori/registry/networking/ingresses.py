"""Ingresses in the API server (upstream: pkg/registry/networking/ingress).

Owns: status (the load balancer's addresses) is written only through
``ingresses/status``; generation bumps on spec changes; the ``kubectl get
ingress`` columns (NAME CLASS HOSTS ADDRESS PORTS AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.networking_v1 import defaults
from kajitori.api.networking_v1.validation import ingresses as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

# Upstream clips the ADDRESS cell to 16 bytes unless printing wide; the
# server builds tables as "wide", so the full list is sent.
_MAX_HOSTS = 3


class IngressStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``networking.k8s.io/v1 ingresses``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_ingress(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_ingress(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_ingress_update(obj, old)


class IngressStatusStrategy(strategies.StatusStrategy):
    """``ingresses/status``: only the load-balancer status changes."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_ingress_status_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Class",
        description="The name of the IngressClass resource that should be used for additional configuration",
    ),
    tables.Column(
        "Hosts",
        description="Hosts that incoming requests are matched against before the ingress rule",
    ),
    tables.Column(
        "Address", description="Address is a list containing ingress points for the load-balancer"
    ),
    tables.Column("Ports", description="Ports of TLS configurations that open"),
    tables.AGE_COLUMN,
)


def _hosts(rules: list[Object]) -> str:
    """``formatHosts``: up to three hosts, "+ N more..." counting all rules, "*" for none."""
    listed: list[str] = []
    more = False
    for rule in rules:
        # Upstream stops listing once three hosts are listed and any rule remains.
        more = more or len(listed) == _MAX_HOSTS
        if not more and rule.get("host"):
            listed.append(str(rule["host"]))
    if not listed:
        return "*"
    text = ",".join(listed)
    return f"{text} + {len(rules) - _MAX_HOSTS} more..." if more else text


def _addresses(status: Object) -> str:
    entries = ((status.get("loadBalancer") or {}).get("ingress")) or []
    found = {
        str(entry.get("ip") or entry.get("hostname"))
        for entry in entries
        if isinstance(entry, dict) and (entry.get("ip") or entry.get("hostname"))
    }
    return ",".join(sorted(found))


def ingress_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    rules = [rule for rule in spec.get("rules") or [] if isinstance(rule, dict)]
    class_name = spec.get("ingressClassName")
    return [
        tables.name(obj),
        class_name if isinstance(class_name, str) else "<none>",
        _hosts(rules),
        _addresses(obj.get("status") or {}),
        "80, 443" if spec.get("tls") else "80",
        tables.age(obj, now),
    ]


STRATEGY = IngressStrategy()

RESOURCE = resource.ResourceInfo(
    group="networking.k8s.io",
    version="v1",
    kind="Ingress",
    plural="ingresses",
    namespaced=True,
    short_names=("ing",),
    strategy=STRATEGY,
    status=IngressStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=ingress_row),
    tracks_generation=True,
)
