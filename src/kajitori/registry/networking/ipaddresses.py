"""IPAddresses in the API server (upstream: pkg/registry/networking/ipaddress).

Owns: cluster scope, short name ``ip``; validation (the name is the address);
the ``kubectl get ipaddresses`` columns (NAME PARENTREF). Upstream's printer
defines those two columns but sends an age cell as well; the row keeps it.

The keys are shared with the Service ClusterIP allocator
(``registry.core.service_allocator`` writes ``/registry/ipaddresses/<ip>``
as an IPAddress object), so every ClusterIP held is listed here, and an
IPAddress created through the API holds its address against the allocator,
as upstream.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.networking_v1.validation import ipaddresses as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class IPAddressStrategy(strategies.Strategy):
    """Create/update rules for ``networking.k8s.io/v1 ipaddresses``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_ip_address(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_ip_address(obj)
        errs.extend(validation.validate_ip_address_update(obj, old))
        return errs


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "ParentRef",
        description=printing.doc("io.k8s.api.networking.v1.IPAddressSpec", "parentRef"),
    ),
)


def parent_ref_cell(ref: Any) -> str:
    """``resource[.group][/namespace]/name``, lower-cased as upstream's GroupResource."""
    if not isinstance(ref, dict):
        return "<none>"
    resource_name = str(ref.get("resource") or "")
    group = str(ref.get("group") or "")
    text = (f"{resource_name}.{group}" if group else resource_name).lower()
    if ref.get("namespace"):
        text += f"/{ref['namespace']}"
    return f"{text}/{ref.get('name') or ''}"


def ip_address_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    parent = (obj.get("spec") or {}).get("parentRef")
    return [tables.name(obj), parent_ref_cell(parent), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="networking.k8s.io",
    version="v1",
    kind="IPAddress",
    plural="ipaddresses",
    namespaced=False,
    short_names=("ip",),
    strategy=IPAddressStrategy(),
    table=tables.Table(columns=COLUMNS, row=ip_address_row),
)
