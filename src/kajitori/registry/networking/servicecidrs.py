"""ServiceCIDRs in the API server (upstream: pkg/registry/networking/servicecidr).

Owns: cluster scope; the ``servicecidrs/status`` endpoint (the Ready
condition), which keeps the stored spec and checks metadata only;
validation; the ``kubectl get servicecidrs`` columns (NAME CIDRS AGE).
Upstream's main strategy neither clears status on create nor keeps the
stored one on update (its PrepareFor* hooks are empty), so the main
endpoint writes status too; that is kept here.
The ``kubernetes`` ServiceCIDR is created at start (``server.bootstrap``);
the deletion finalizer is the service-cidrs controller's
(``controllers.servicecidrs``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.networking_v1.validation import servicecidrs as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ServiceCIDRStrategy(strategies.Strategy):
    """Create/update rules for ``networking.k8s.io/v1 servicecidrs``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_service_cidr(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_service_cidr(obj)
        errs.extend(validation.validate_service_cidr_update(obj, old))
        return errs


class ServiceCIDRStatusStrategy(strategies.StatusStrategy):
    """``servicecidrs/status``: the spec stays as stored; upstream checks metadata alone."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        # Upstream copies only the spec back (no ResetObjectMetaForStatus here).
        if "spec" in old:
            obj["spec"] = old["spec"]
        else:
            obj.pop("spec", None)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_service_cidr_status_update(obj, old)


STRATEGY = ServiceCIDRStrategy()

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "CIDRs", description=printing.doc("io.k8s.api.networking.v1.ServiceCIDRSpec", "cidrs")
    ),
    tables.AGE_COLUMN,
)


def service_cidr_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    cidrs = (obj.get("spec") or {}).get("cidrs") or []
    return [tables.name(obj), ",".join(str(c) for c in cidrs), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="networking.k8s.io",
    version="v1",
    kind="ServiceCIDR",
    plural="servicecidrs",
    namespaced=False,
    strategy=STRATEGY,
    status=ServiceCIDRStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=service_cidr_row),
)
