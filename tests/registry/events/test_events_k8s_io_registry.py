"""Registry declaration, strategy and table of events.k8s.io/v1 events."""

from __future__ import annotations

import datetime

from kajitori.registry.events import events

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def test_events_are_declared_as_upstream() -> None:
    """Namespaced, no short name ("ev" is core's), create-on-update allowed."""
    info = events.RESOURCE
    assert (info.group_version, info.plural, info.short_names) == ("events.k8s.io/v1", "events", ())
    assert info.strategy.allow_create_on_update()
    # Stored with the core Events, as upstream (through conversion).
    assert info.storage_prefix() == "/registry/events/"


def test_event_row_prints_the_core_view() -> None:
    """LAST SEEN TYPE REASON OBJECT (SUBOBJECT SOURCE) MESSAGE (FIRST SEEN COUNT NAME)."""
    assert [c.name for c in events.COLUMNS][:4] == ["Last Seen", "Type", "Reason", "Object"]
    event = {
        "metadata": {"name": "web.17a", "namespace": "default"},
        "eventTime": "2025-01-01T11:59:00.000000Z",
        "reportingController": "default-scheduler",
        "reportingInstance": "scheduler-1",
        "reason": "Scheduled",
        "type": "Normal",
        "note": " Successfully assigned default/web to node-a ",
        "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec"},
    }
    assert list(events.event_row(event, NOW)) == [
        "60s",
        "Normal",
        "Scheduled",
        "pod/web",
        "spec",
        "default-scheduler, scheduler-1",
        "Successfully assigned default/web to node-a",
        "60s",
        1,
        "web.17a",
    ]


def test_series_events_show_the_last_observation_and_count() -> None:
    """A series' lastObservedTime and count replace the singleton values."""
    event = {
        "metadata": {"name": "e"},
        "eventTime": "2025-01-01T11:00:00.000000Z",
        "series": {"count": 4, "lastObservedTime": "2025-01-01T11:59:30.000000Z"},
        "regarding": {"kind": "Node"},
    }
    row = list(events.event_row(event, NOW))
    assert (row[0], row[3], row[7], row[8]) == ("30s", "node", "60m", 4)
