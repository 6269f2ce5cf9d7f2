"""ServiceAccounts in the API server: strategy and table (pkg/registry/core/serviceaccount).

The ``/token`` subresource (TokenRequest, ``core/serviceaccount_token.py``) is attached by
the composition root (cmd/apiserver.py), which holds the signing key;
it is listed in ``extra_subresources`` for discovery.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import serviceaccounts as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ServiceAccountStrategy(strategies.Strategy):
    """Create/update rules for ``v1 serviceaccounts``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_service_account(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_service_account(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_service_account_update(obj, old)


def _secrets_doc() -> str:
    node = definitions.definitions().get("io.k8s.api.core.v1.ServiceAccount", {})
    description: str = node.get("properties", {}).get("secrets", {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Secrets", description=_secrets_doc()),
    tables.AGE_COLUMN,
)


def service_account_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """NAME, SECRETS (number of referenced secrets), AGE."""
    refs = obj.get("secrets")
    return [tables.name(obj), len(refs) if isinstance(refs, list) else 0, tables.age(obj, now)]


STRATEGY = ServiceAccountStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="ServiceAccount",
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    plural="serviceaccounts",
    namespaced=True,
    short_names=("sa",),
    strategy=STRATEGY,
    extra_subresources=("token",),
    table=tables.Table(columns=COLUMNS, row=service_account_row),
)
