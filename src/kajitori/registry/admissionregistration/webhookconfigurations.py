"""What the two webhook configuration kinds share in the API server.

Upstream: pkg/registry/admissionregistration/{validating,mutating}webhookconfiguration.
Owns the strategy both kinds use (cluster scope, generation 1 on create and
+1 whenever ``webhooks`` changes, updates only with a resourceVersion, reserved names
refused on create and warned about on update) and their ``kubectl get`` columns (NAME WEBHOOKS AGE).
Defaults and validation are ``api.admissionregistration_v1.webhooks``'.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.admissionregistration_v1 import webhooks
from kajitori.machinery import field
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class WebhookConfigurationStrategy(strategies.Strategy):
    """Create/update rules of a ``Validating`` or ``MutatingWebhookConfiguration``."""

    def __init__(self, *, mutating: bool) -> None:
        self.mutating = mutating

    def set_defaults(self, obj: Object) -> None:
        if self.mutating:
            webhooks.set_defaults_mutating_webhook_configuration(obj)
        else:
            webhooks.set_defaults_validating_webhook_configuration(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return webhooks.validate_webhook_configuration(obj, mutating=self.mutating)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return webhooks.validate_webhook_configuration_update(obj, old, mutating=self.mutating)

    def warnings_on_update(self, obj: Object, old: Object) -> list[str]:
        return webhooks.warnings_for_name(obj)

    def allow_unconditional_update(self) -> bool:
        # Upstream: a PUT must name the resourceVersion it replaces.
        return False

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        return obj.get("webhooks") != old.get("webhooks")


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Webhooks",
        type="integer",
        description="Webhooks indicates the number of webhooks registered in this configuration",
    ),
    tables.AGE_COLUMN,
)


def webhook_configuration_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    hooks = obj.get("webhooks")
    return [tables.name(obj), len(hooks) if isinstance(hooks, list) else 0, tables.age(obj, now)]


TABLE = tables.Table(columns=COLUMNS, row=webhook_configuration_row)
