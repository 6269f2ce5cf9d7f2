"""Endpoints in the API server (the legacy core/v1 kind; EndpointSlices are the successor).

Owns: create-on-update (the endpoints controller PUTs blindly), and the
``kubectl get endpoints`` ENDPOINTS column ("ip:port" pairs, at most three,
then "+ N more..."). Mirrors pkg/registry/core/endpoint/strategy.go and
printEndpoints.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import endpoints as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

MAX_LISTED = 3


class EndpointsStrategy(strategies.Strategy):
    """Create/update rules of ``endpoints``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_endpoints(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_endpoints(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_endpoints_update(obj, old)

    def allow_create_on_update(self) -> bool:
        return True


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(endpoints: Object) -> str:
    """formatEndpoints: up to three "ip:port" (or bare IPs without ports), then a count."""
    subsets = endpoints.get("subsets") or ()
    if not subsets:
        return "<none>"
    listed: list[str] = []
    count = 0
    more = False
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or ()]
        ports = subset.get("ports") or ()
        for port in ports or [None]:
            count += len(addresses)
            for ip in addresses:
                if len(listed) == MAX_LISTED:
                    more = True
                    break
                listed.append(ip if port is None else _join_host_port(ip, port.get("port")))
    text = ",".join(listed)
    return f"{text} + {count - MAX_LISTED} more..." if more else text


def _subsets_doc() -> str:
    node = definitions.definitions().get("io.k8s.api.core.v1.Endpoints", {})
    description: str = node.get("properties", {}).get("subsets", {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Endpoints", description=_subsets_doc()),
    tables.AGE_COLUMN,
)


def endpoints_row(endpoints: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [tables.name(endpoints), format_endpoints(endpoints), tables.age(endpoints, now)]


RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Endpoints",
    plural="endpoints",
    singular="endpoints",
    namespaced=True,
    short_names=("ep",),
    strategy=EndpointsStrategy(),
    table=tables.Table(columns=COLUMNS, row=endpoints_row),
)
