"""NetworkPolicies in the API server (upstream: pkg/registry/networking/networkpolicy).

Owns: generation bumps on spec changes; the ``kubectl get netpol`` columns
(NAME POD-SELECTOR AGE). Enforcement belongs to a network plugin, not here.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.networking_v1 import defaults
from kajitori.api.networking_v1.validation import networkpolicies as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class NetworkPolicyStrategy(strategies.Strategy):
    """Create/update rules for ``networking.k8s.io/v1 networkpolicies``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_network_policy(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_network_policy(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_network_policy_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Pod-Selector",
        description=printing.doc("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector"),
    ),
    tables.AGE_COLUMN,
)


def network_policy_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    selector = (obj.get("spec") or {}).get("podSelector") or {}
    return [tables.name(obj), printing.format_label_selector(selector), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="networking.k8s.io",
    version="v1",
    kind="NetworkPolicy",
    plural="networkpolicies",
    namespaced=True,
    short_names=("netpol",),
    strategy=NetworkPolicyStrategy(),
    table=tables.Table(columns=COLUMNS, row=network_policy_row),
    tracks_generation=True,
)
