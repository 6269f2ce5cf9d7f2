"""Pod predicates the workload controllers share (upstream's podutil and controller_utils).

* active: not Succeeded or Failed and not being deleted (``FilterActivePods``);
* ready: condition ``Ready`` is ``True`` (``IsPodReady``);
* available: ready for at least ``minReadySeconds`` (``IsPodAvailable``),
  measured from the Ready condition's ``lastTransitionTime``.

Times are RFC 3339 strings on the wire (read and written by machinery.times)
and aware UTC datetimes here.
"""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.machinery import times

Object = dict[str, Any]

OWNER_UID_INDEX = "controller-uid"


def now() -> datetime.datetime:
    # Wire times have second precision; comparing at that precision avoids flapping.
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def is_active(pod: Object) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    return phase not in ("Succeeded", "Failed") and not deleting


def ready_condition(pod: Object) -> Object | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def is_ready(pod: Object) -> bool:
    # Read in place, not through ready_condition's copy: controllers ask this of every
    # pod they own on every sync.
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def is_available(pod: Object, min_ready_seconds: int, at: datetime.datetime) -> bool:
    """Ready, and (with ``min_ready_seconds``) ready since at least that long before ``at``."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    condition = ready_condition(pod) or {}
    since = times.parse_time(condition.get("lastTransitionTime"))
    if since is None:
        return False
    return since + datetime.timedelta(seconds=min_ready_seconds) < at


def index_by_controller_uid(obj: Object) -> list[str]:
    """The UID of ``obj``'s controller, for an informer index (none for orphans)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return [ref.get("uid") or ""]
    return []


def with_kind(obj: Object, *, api_version: str, kind: str) -> Object:
    """``obj`` with apiVersion and kind set (list items lack them; events need them)."""
    if obj.get("kind") == kind:
        return obj
    return {**obj, "apiVersion": api_version, "kind": kind}
