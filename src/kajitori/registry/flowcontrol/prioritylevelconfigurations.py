"""PriorityLevelConfigurations in the API server (upstream: pkg/registry/flowcontrol/prioritylevelconfiguration).

Owns: cluster scope; status written only through
``prioritylevelconfigurations/status``; generation bumps on spec changes;
defaults and validation from ``api.flowcontrol_v1``; the ``kubectl get
prioritylevelconfigurations`` columns (NAME TYPE NOMINALCONCURRENCYSHARES
QUEUES HANDSIZE QUEUELENGTHLIMIT AGE), "<none>" where a level has no such
setting (an exempt level, or one that rejects instead of queuing).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.flowcontrol_v1 import defaults, validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.flowcontrol.flowschemas import doc
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class PriorityLevelConfigurationStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``flowcontrol.apiserver.k8s.io/v1 prioritylevelconfigurations``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_priority_level_configuration(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_priority_level_configuration(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_priority_level_configuration_update(obj, old)


class PriorityLevelConfigurationStatusStrategy(strategies.StatusStrategy):
    """``prioritylevelconfigurations/status``: only status changes; its conditions are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_status_metadata_update(obj, old)
        errs.extend(validation.validate_status_update(obj, old))
        return errs


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Type", description=doc("PriorityLevelConfigurationSpec", "type")),
    tables.Column(
        "NominalConcurrencyShares",
        description=doc("LimitedPriorityLevelConfiguration", "nominalConcurrencyShares"),
    ),
    tables.Column("Queues", description=doc("QueuingConfiguration", "queues")),
    tables.Column("HandSize", description=doc("QueuingConfiguration", "handSize")),
    tables.Column("QueueLengthLimit", description=doc("QueuingConfiguration", "queueLengthLimit")),
    tables.AGE_COLUMN,
)

_NONE = "<none>"


def _section(parent: Any, key: str) -> Object | None:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else None


def priority_level_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = _section(obj, "spec") or {}
    shares: tables.Cell = _NONE
    queues: tables.Cell = _NONE
    hand_size: tables.Cell = _NONE
    length_limit: tables.Cell = _NONE
    limited = _section(spec, "limited")
    if limited is not None:
        shares = limited.get("nominalConcurrencyShares")
        queuing = _section(_section(limited, "limitResponse"), "queuing")
        if queuing is not None:
            queues = int(queuing.get("queues") or 0)
            hand_size = int(queuing.get("handSize") or 0)
            length_limit = int(queuing.get("queueLengthLimit") or 0)
    return [
        tables.name(obj),
        str(spec.get("type") or ""),
        shares,
        queues,
        hand_size,
        length_limit,
        tables.age(obj, now),
    ]


STRATEGY = PriorityLevelConfigurationStrategy()

RESOURCE = resource.ResourceInfo(
    group="flowcontrol.apiserver.k8s.io",
    version="v1",
    kind="PriorityLevelConfiguration",
    plural="prioritylevelconfigurations",
    namespaced=False,
    strategy=STRATEGY,
    status=PriorityLevelConfigurationStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=priority_level_row),
    tracks_generation=True,
)
