"""core/v1 Events in the API server: strategy, field selectors, table.

Owns: create-on-update (event recorders PUT/PATCH series), the many field
selectors clients filter events by (``kubectl describe`` asks for
involvedObject.* of the described object), and the ``kubectl get events``
columns. Mirrors pkg/registry/core/event/strategy.go and printEvent.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import events as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class EventStrategy(strategies.Strategy):
    """Create/update rules of core/v1 ``events``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_event(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_event(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_event_update(obj, old)

    def allow_create_on_update(self) -> bool:
        return True


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.Column("Last Seen", description=_doc("Event", "lastTimestamp")),
    tables.Column("Type", description=_doc("Event", "type")),
    tables.Column("Reason", description=_doc("Event", "reason")),
    tables.Column("Object", description=_doc("Event", "involvedObject")),
    tables.Column("Subobject", priority=1, description=_doc("ObjectReference", "fieldPath")),
    tables.Column("Source", priority=1, description=_doc("Event", "source")),
    tables.Column("Message", description=_doc("Event", "message")),
    tables.Column("First Seen", priority=1, description=_doc("Event", "firstTimestamp")),
    tables.Column("Count", priority=1, description=_doc("Event", "count")),
    tables.Column("Name", priority=1, format="name", description=tables.NAME_COLUMN.description),
)


def _since(value: Any, now: datetime.datetime) -> str:
    when = tables.parse_time(value)
    return "<unknown>" if when is None else tables.human_duration(now - when)


def _source(event: Object) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def event_row(event: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    first = _since(event.get("firstTimestamp"), now)
    if not event.get("firstTimestamp"):
        first = _since(event.get("eventTime"), now)
    last = _since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if series is not None:
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        _source(event),
        str(event.get("message") or "").strip(),
        first,
        int(count),
        tables.name(event),
    ]


SELECTABLE_FIELDS: Mapping[str, resource.FieldExtractor] = {
    **{
        f"involvedObject.{key}": resource.nested_str("involvedObject", key)
        for key in (
            "kind",
            "namespace",
            "name",
            "uid",
            "apiVersion",
            "resourceVersion",
            "fieldPath",
        )
    },
    "reason": resource.nested_str("reason"),
    "reportingComponent": resource.nested_str("reportingComponent"),
    "source": resource.nested_str("source", "component"),
    "type": resource.nested_str("type"),
}

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Event",
    plural="events",
    namespaced=True,
    short_names=("ev",),
    strategy=EventStrategy(),
    selectable_fields=SELECTABLE_FIELDS,
    table=tables.Table(columns=COLUMNS, row=event_row),
)
