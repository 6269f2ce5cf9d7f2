"""Validation of events.k8s.io/v1 Events (upstream's strict checks, core field paths)."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api import events_v1
from kajitori.api.events_v1.validation import events

Object = dict[str, Any]


def _event(**fields: Any) -> Object:
    return {
        "metadata": {"name": "web.17a", "namespace": "default", "resourceVersion": "7"},
        "eventTime": "2025-01-01T12:00:00.000000Z",
        "reportingController": "kajitori.io/scheduler",
        "reportingInstance": "scheduler-1",
        "action": "Binding",
        "reason": "Scheduled",
        "type": "Normal",
        "note": "Successfully assigned default/web to node-a",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web"},
        **fields,
    }


def test_a_new_style_event_is_valid() -> None:
    """An event as client-go's new recorder writes it passes."""
    assert list(events.validate_event(_event())) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"eventTime": None}, "eventTime: Required value", id="no-event-time"),
        pytest.param(
            {"type": "Info"}, 'type: Invalid value: "": has invalid value: Info', id="bad-type"
        ),
        pytest.param({"action": ""}, "action: Required value", id="no-action"),
        pytest.param(
            {"note": "x" * 1025},
            'message: Invalid value: "": can have at most 1024 characters',
            id="note-too-long",
        ),
        pytest.param(
            {"deprecatedCount": 3}, 'count: Invalid value: "": needs to be unset', id="count-set"
        ),
        pytest.param(
            {"regarding": {"kind": "Pod", "namespace": "other", "name": "web"}},
            None,
            id="namespace-mismatch-is-allowed-for-new-events",
        ),
        pytest.param(
            {"series": {"count": 1, "lastObservedTime": "2025-01-01T12:00:00.000000Z"}},
            'series.count: Invalid value: "": should be at least 2',
            id="short-series",
        ),
    ],
)
def test_event_mistakes_get_upstreams_messages(fields: Object, message: str | None) -> None:
    """Each typical mistake is refused with upstream's (core-named) path and text."""
    expected = [] if message is None else [message]
    assert [str(e) for e in events.validate_event(_event(**fields))] == expected


def test_a_missing_reporting_controller_is_also_an_invalid_qualified_name() -> None:
    """Upstream reports Required and then the qualified-name errors for the empty value."""
    messages = [str(e) for e in events.validate_event(_event(reportingController=""))]
    assert messages[:2] == [
        "reportingController: Required value",
        'reportingController: Invalid value: "": name part must be non-empty',
    ]
    assert len(messages) == 3


def test_events_in_other_namespaces_must_name_their_objects_namespace() -> None:
    """A cluster-scoped regarding object is only allowed for events in default/kube-system."""
    event = _event(regarding={"kind": "Node", "name": "node-a"})
    event["metadata"]["namespace"] = "apps"
    assert [str(e) for e in events.validate_event(event)] == [
        'involvedObject.namespace: Invalid value: "": does not match event.namespace'
    ]


def test_most_fields_are_immutable_but_series_may_advance() -> None:
    """Changing the note is refused; bumping the series is fine."""
    old = _event()
    changed = _event(note="something else")
    assert [str(e) for e in events.validate_event_update(changed, old)] == [
        'message: Invalid value: "something else": field is immutable'
    ]
    series = _event(series={"count": 2, "lastObservedTime": "2025-01-01T12:01:00.000000Z"})
    assert list(events.validate_event_update(series, old)) == []


def test_event_time_is_compared_by_instant_not_spelling() -> None:
    """Re-serialising eventTime with another UTC spelling is not a change."""
    old = _event(eventTime="2025-01-01T12:00:00.000001Z")
    new = _event(eventTime="2025-01-01T12:00:00.000001+00:00")
    assert list(events.validate_event_update(new, old)) == []


def test_core_view_renames_fields_as_upstreams_conversion() -> None:
    """regarding/note/deprecated* map to the core Event fields."""
    core = events_v1.to_core_event(
        {"apiVersion": "events.k8s.io/v1", "note": "n", "regarding": {"kind": "Pod"}}
    )
    assert core == {"apiVersion": "v1", "message": "n", "involvedObject": {"kind": "Pod"}}
