"""EndpointSlices in the API server (upstream: pkg/registry/discovery/endpointslice).

Owns: generation bumps on any change outside metadata and on label changes
(the EndpointSlice controller and mirroring controller compare generations,
and the service-name label decides which Service a slice serves); the
``kubectl get endpointslices`` columns (NAME ADDRESSTYPE PORTS ENDPOINTS AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.discovery_v1 import defaults
from kajitori.api.discovery_v1.validation import endpointslices as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

_MAX_LISTED = 3


class EndpointSliceStrategy(strategies.Strategy):
    """Create/update rules for ``discovery.k8s.io/v1 endpointslices``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_endpoint_slice(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_endpoint_slice(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_endpoint_slice_update(obj, old)

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        labels = (obj.get("metadata") or {}).get("labels")
        old_labels = (old.get("metadata") or {}).get("labels")
        return super().bumps_generation(obj, old) or (labels or {}) != (old_labels or {})


_SLICE = "io.k8s.api.discovery.v1.EndpointSlice"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("AddressType", description=printing.doc(_SLICE, "addressType")),
    tables.Column("Ports", description=printing.doc(_SLICE, "ports")),
    tables.Column("Endpoints", description=printing.doc(_SLICE, "endpoints")),
    tables.AGE_COLUMN,
)


def _list_cell(values: list[str]) -> str:
    """The first three values and "+ N more..." (``formatDiscovery*``)."""
    return printing.list_with_more(
        values[:_MAX_LISTED],
        more=len(values) > _MAX_LISTED,
        count=len(values),
        limit=_MAX_LISTED,
    )


def _port_text(port: Object) -> str:
    if port.get("port") is not None:
        return str(port["port"])
    if port.get("name") is not None:
        return str(port["name"])
    return "*"


def endpoint_slice_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    ports = [_port_text(p) for p in obj.get("ports") or [] if isinstance(p, dict)]
    addresses = [
        str(address)
        for endpoint in obj.get("endpoints") or []
        if isinstance(endpoint, dict)
        for address in endpoint.get("addresses") or []
    ]
    return [
        tables.name(obj),
        str(obj.get("addressType") or ""),
        _list_cell(ports),
        _list_cell(addresses),
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="discovery.k8s.io",
    version="v1",
    kind="EndpointSlice",
    plural="endpointslices",
    namespaced=True,
    strategy=EndpointSliceStrategy(),
    table=tables.Table(columns=COLUMNS, row=endpoint_slice_row),
    tracks_generation=True,
)
