"""FlowSchemas in the API server (upstream: pkg/registry/flowcontrol/flowschema).

Owns: cluster scope; status written only through ``flowschemas/status``
(by the ``dangling`` controller); generation bumps on spec changes;
defaults and validation from ``api.flowcontrol_v1``; the ``kubectl get
flowschemas`` columns (NAME PRIORITYLEVEL MATCHINGPRECEDENCE
DISTINGUISHERMETHOD AGE MISSINGPL), rows of a list sorted by matching
precedence, then name, as upstream's printer does.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.flowcontrol_v1 import defaults, validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

DANGLING = "Dangling"


class FlowSchemaStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``flowcontrol.apiserver.k8s.io/v1 flowschemas``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_flow_schema(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_flow_schema(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_flow_schema_update(obj, old)


class FlowSchemaStatusStrategy(strategies.StatusStrategy):
    """``flowschemas/status``: only status changes; its conditions are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_status_metadata_update(obj, old)
        errs.extend(validation.validate_status_update(obj, old))
        return errs


def doc(type_name: str, prop: str) -> str:
    """A v1 field's description, as upstream's column definitions take from SwaggerDoc."""
    node = definitions.definitions().get(f"io.k8s.api.flowcontrol.v1.{type_name}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("PriorityLevel", description=doc("PriorityLevelConfigurationReference", "name")),
    tables.Column("MatchingPrecedence", description=doc("FlowSchemaSpec", "matchingPrecedence")),
    tables.Column("DistinguisherMethod", description=doc("FlowSchemaSpec", "distinguisherMethod")),
    tables.AGE_COLUMN,
    tables.Column(
        "MissingPL", description="references a broken or non-existent PriorityLevelConfiguration"
    ),
)


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _missing_level(obj: Object) -> str:
    """The Dangling condition's status ("True"/"False"), "?" before it is known."""
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, dict) and condition.get("type") == DANGLING:
            return str(condition.get("status") or "")
    return "?"


def flow_schema_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = _spec(obj)
    level = spec.get("priorityLevelConfiguration")
    method = spec.get("distinguisherMethod")
    return [
        tables.name(obj),
        str((level if isinstance(level, dict) else {}).get("name") or ""),
        int(spec.get("matchingPrecedence") or 0),
        str(method.get("type") or "") if isinstance(method, dict) else "<none>",
        tables.age(obj, now),
        _missing_level(obj),
    ]


def precedence_order(obj: Object) -> tuple[int, str]:
    """Upstream's FlowSchemaSequence: lower matching precedence first, then by name."""
    return int(_spec(obj).get("matchingPrecedence") or 0), tables.name(obj)


STRATEGY = FlowSchemaStrategy()

RESOURCE = resource.ResourceInfo(
    group="flowcontrol.apiserver.k8s.io",
    version="v1",
    kind="FlowSchema",
    plural="flowschemas",
    namespaced=False,
    strategy=STRATEGY,
    status=FlowSchemaStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=flow_schema_row, order=precedence_order),
    tracks_generation=True,
)
