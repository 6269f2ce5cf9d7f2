"""APIServices in the API server (upstream: kube-aggregator registry/apiservice).

Owns: cluster scope, category ``api-extensions``; ``spec.service.port``
defaulted to 443; validation from ``api.apiregistration_v1``; status written
only through ``apiservices/status``, except that a local APIService (no
``spec.service``) is created Available at once, as upstream's strategy does;
the ``kubectl get apiservices`` columns (NAME SERVICE AVAILABLE AGE, where
SERVICE is ``Local`` or ``<namespace>/<name>`` and AVAILABLE is the condition's
status, with its reason in parentheses when not True).

Who writes what: ``server.aggregator.autoregister`` keeps the local ones,
``server.aggregator.availability`` the Available condition of remote ones.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apiregistration_v1 import defaults, validation
from kajitori.machinery import field
from kajitori.machinery.times import now_rfc3339
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

GROUP = "apiregistration.k8s.io"
AVAILABLE = "Available"
LOCAL_REASON = "Local"
LOCAL_MESSAGE = "Local APIServices are always available"


def condition(obj: Object, kind: str = AVAILABLE) -> Object | None:
    """The status condition of type ``kind``, if any."""
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for entry in conditions if isinstance(conditions, list) else []:
        if isinstance(entry, dict) and entry.get("type") == kind:
            return entry
    return None


def is_available(obj: Object) -> bool:
    found = condition(obj)
    return found is not None and found.get("status") == "True"


def set_condition(obj: Object, new: Object) -> None:
    """Upstream's SetAPIServiceCondition: replace the same type, keeping the
    transition time when the status did not change."""
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        conditions = status["conditions"] = []
    for i, entry in enumerate(conditions):
        if isinstance(entry, dict) and entry.get("type") == new.get("type"):
            if entry.get("status") == new.get("status") and entry.get("lastTransitionTime"):
                new = {**new, "lastTransitionTime": entry["lastTransitionTime"]}
            conditions[i] = new
            return
    conditions.append(new)


def local_available_condition() -> Object:
    """NewLocalAvailableAPIServiceCondition."""
    return {
        "type": AVAILABLE,
        "status": "True",
        "lastTransitionTime": now_rfc3339(),
        "reason": LOCAL_REASON,
        "message": LOCAL_MESSAGE,
    }


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


class APIServiceStrategy(strategies.Strategy):
    """Create/update rules for ``apiregistration.k8s.io/v1 apiservices``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_api_service(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {}
        # A local APIService is served by this server: available from its first second.
        if not isinstance(_spec(obj).get("service"), dict):
            set_condition(obj, local_available_condition())

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        obj["status"] = old.get("status") or {}

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_api_service(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_api_service_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


class APIServiceStatusStrategy(strategies.StatusStrategy):
    """``apiservices/status``: spec and metadata kept; only the conditions are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_api_service_status_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Service", description="The reference to the service that hosts this API endpoint."
    ),
    tables.Column("Available", description="Whether this service is available."),
    tables.AGE_COLUMN,
)


def api_service_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    service = _spec(obj).get("service")
    where = "Local"
    if isinstance(service, dict):
        where = f"{service.get('namespace') or ''}/{service.get('name') or ''}"
    available = "Unknown"
    found = condition(obj)
    if found is not None:
        state = str(found.get("status") or "")
        reason = str(found.get("reason") or "")
        available = state if state == "True" or not reason else f"{state} ({reason})"
    return [tables.name(obj), where, available, tables.age(obj, now)]


STRATEGY = APIServiceStrategy()

RESOURCE = resource.ResourceInfo(
    group=GROUP,
    version="v1",
    kind="APIService",
    plural="apiservices",
    namespaced=False,
    categories=("api-extensions",),
    strategy=STRATEGY,
    status=APIServiceStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=api_service_row),
)
