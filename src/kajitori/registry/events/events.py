"""events.k8s.io/v1 Events in the API server (upstream: pkg/registry/core/event).

Owns: create-on-update (event recorders PUT series updates), upstream's strict
events.k8s.io validation, and the ``kubectl get events.events.k8s.io`` columns,
which upstream prints from the internal (core-shaped) Event, so they are the
core Event table: LAST SEEN TYPE REASON OBJECT MESSAGE, wide SUBOBJECT SOURCE
FIRST SEEN COUNT NAME. No short name ("ev" is core events'), and the field
selectors of the core kind are not offered here.

Stored as upstream stores them: as core/v1 Events under ``/registry/events/``,
converted on the way in and out (``resource.Conversion``), so an Event the
scheduler writes through events.k8s.io is the one ``kubectl get events`` and
``kubectl describe pod`` read through core/v1. The strategy therefore sees
core-shaped objects and validates their events.k8s.io view.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import events_v1
from kajitori.api.events_v1 import defaults
from kajitori.api.events_v1.validation import events as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.core import events as core_events
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class EventStrategy(strategies.Strategy):
    """Create/update rules for ``events.k8s.io/v1 events``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_event(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_event(events_v1.from_core_event(obj))

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_event_update(
            events_v1.from_core_event(obj), events_v1.from_core_event(old)
        )

    def allow_create_on_update(self) -> bool:
        return True


def _to_storage(obj: Object) -> Object:
    defaults.set_defaults_event(obj)
    # Stored objects are normalized as upstream reads them back: the empty
    # source and null first/last timestamps of Go's non-pointer fields.
    return events_v1.to_core_event(obj)


# Upstream prints both kinds with printEvent: the same columns.
COLUMNS = core_events.COLUMNS


def event_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """printEvent on the core-shaped view of an events.k8s.io Event."""
    return core_events.event_row(events_v1.to_core_event(obj), now)


RESOURCE = resource.ResourceInfo(
    group="events.k8s.io",
    version="v1",
    kind="Event",
    plural="events",
    namespaced=True,
    strategy=EventStrategy(),
    table=tables.Table(columns=COLUMNS, row=event_row),
    conversion=resource.Conversion(
        storage_group="",
        storage_version="v1",
        to_storage=_to_storage,
        from_storage=events_v1.from_core_event,
    ),
)
