"""The events.k8s.io/v1 API: defaulting, validation and the mapping to core Event fields.

Upstream serves events.k8s.io Events from the core Event storage through
conversion, and validates and prints the internal (core-shaped) object; so
field errors name core fields (``involvedObject``, ``message``) even for
events.k8s.io requests. ``CORE_FIELDS`` is that mapping; ``to_core_event`` and
``from_core_event`` convert whole objects both ways (the registry stores
events.k8s.io Events as core/v1 ones, so ``kubectl get events`` shows the
scheduler's).
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]

# events.k8s.io/v1 field -> the core Event field it converts to (the rest share names).
CORE_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}


FROM_CORE_FIELDS = {core: field for field, core in CORE_FIELDS.items()}


def to_core_event(obj: Object) -> Object:
    """A core/v1-shaped view of an events.k8s.io/v1 Event (shallow; values are shared)."""
    core: Object = {}
    for key, value in obj.items():
        if key == "apiVersion":
            core[key] = "v1"
        else:
            core[CORE_FIELDS.get(key, key)] = value
    return core


def from_core_event(obj: Object) -> Object:
    """The events.k8s.io/v1 view of a stored core/v1 Event (a new dict; values are shared)."""
    event: Object = {}
    for key, value in obj.items():
        if key == "apiVersion":
            event[key] = "events.k8s.io/v1"
        else:
            event[FROM_CORE_FIELDS.get(key, key)] = value
    return event
