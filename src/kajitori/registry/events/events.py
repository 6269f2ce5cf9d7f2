"""events.k8s.io/v1 Events in the API server (upstream: pkg/registry/core/event).

Owns: create-on-update (event recorders PUT series updates), upstream's strict
events.k8s.io validation, and the ``kubectl get events.events.k8s.io`` columns,
which upstream prints from the internal (core-shaped) Event, so they are the
core Event table: LAST SEEN TYPE REASON OBJECT MESSAGE, wide SUBOBJECT SOURCE
FIRST SEEN COUNT NAME. No short name ("ev" is core events'), and the field
selectors of the core kind are not offered here.

Upstream stores both versions in one place through conversion; until that
conversion exists here these objects are stored apart (see
``resource._STORAGE_PATHS``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import events_v1
from kajitori.api.apps_v1 import printing
from kajitori.api.events_v1 import defaults
from kajitori.api.events_v1.validation import events as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class EventStrategy(strategies.Strategy):
    """Create/update rules for ``events.k8s.io/v1 events``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_event(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_event(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_event_update(obj, old)

    def allow_create_on_update(self) -> bool:
        return True


_EVENT = "io.k8s.api.core.v1.Event"

COLUMNS = (
    tables.Column("Last Seen", description=printing.doc(_EVENT, "lastTimestamp")),
    tables.Column("Type", description=printing.doc(_EVENT, "type")),
    tables.Column("Reason", description=printing.doc(_EVENT, "reason")),
    tables.Column("Object", description=printing.doc(_EVENT, "involvedObject")),
    tables.Column(
        "Subobject",
        priority=1,
        description=printing.doc("io.k8s.api.core.v1.ObjectReference", "fieldPath"),
    ),
    tables.Column("Source", priority=1, description=printing.doc(_EVENT, "source")),
    tables.Column("Message", description=printing.doc(_EVENT, "message")),
    tables.Column("First Seen", priority=1, description=printing.doc(_EVENT, "firstTimestamp")),
    tables.Column("Count", priority=1, description=printing.doc(_EVENT, "count")),
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


def _times_and_count(event: Object, now: datetime.datetime) -> tuple[str, str, int]:
    first_time = event.get("firstTimestamp") or event.get("eventTime")
    first = _since(first_time, now)
    last = _since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        # Singleton events carry no count in the new API.
        count = 1
    return first, last, int(count)


def event_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """printEvent on the core-shaped view of an events.k8s.io Event."""
    event = events_v1.to_core_event(obj)
    first, last, count = _times_and_count(event, now)
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
        count,
        tables.name(event),
    ]


RESOURCE = resource.ResourceInfo(
    group="events.k8s.io",
    version="v1",
    kind="Event",
    plural="events",
    namespaced=True,
    strategy=EventStrategy(),
    table=tables.Table(columns=COLUMNS, row=event_row),
)
