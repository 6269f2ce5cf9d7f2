"""Job status bookkeeping: conditions, uncounted pods and the per-sync context.

Mirrors the status half of upstream's job_controller.go: the interim
conditions (``FailureTarget``, ``SuccessCriteriaMet``) are written first,
while pods still carry the ``batch.kubernetes.io/job-tracking`` finalizer;
the terminal ones (``Failed``, ``Complete``) only once every finished pod is
counted and none is terminating. ``status.uncountedTerminatedPods`` holds the
UIDs of finished pods whose finalizer is being removed, so that a pod is
counted exactly once even if the controller restarts in between: a UID leaves
the list (and is added to ``succeeded``/``failed``) only when its pod no
longer has the finalizer.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from kajitori.controllers.job import policy
from kajitori.machinery import times

Object = dict[str, Any]


def new_condition(
    kind: str, status: str, reason: str, message: str, *, now: datetime.datetime
) -> Object:
    stamp = times.format_time(now)
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def find_condition(job: Object, kind: str) -> Object | None:
    for found in (job.get("status") or {}).get("conditions") or ():
        if found.get("type") == kind:
            return dict(found)
    return None


def condition_true(job: Object, kind: str) -> bool:
    found = find_condition(job, kind)
    return found is not None and found.get("status") == "True"


def is_finished(job: Object) -> bool:
    """Complete or Failed is True: nothing more to do (upstream's IsJobFinished)."""
    return condition_true(job, "Complete") or condition_true(job, "Failed")


def ensure_condition(
    status: Object, kind: str, value: str, reason: str, message: str, *, now: datetime.datetime
) -> bool:
    """Upstream's ensureJobConditionStatus: change in place; a missing False is not added."""
    conditions = status.setdefault("conditions", [])
    for index, found in enumerate(conditions):
        if found.get("type") != kind:
            continue
        if (found.get("status"), found.get("reason"), found.get("message")) == (
            value,
            reason,
            message,
        ):
            return False
        stamp = times.format_time(now)
        conditions[index] = {
            **found,
            "status": value,
            "reason": reason,
            "message": message,
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp,
        }
        return True
    if value == "False":
        if not conditions:
            status.pop("conditions", None)
        return False
    conditions.append(new_condition(kind, value, reason, message, now=now))
    return True


def uncounted(status: Object) -> Object:
    """``status.uncountedTerminatedPods`` with both lists present (created if missing)."""
    found = status.get("uncountedTerminatedPods")
    if not isinstance(found, dict):
        found = status["uncountedTerminatedPods"] = {}
    found.setdefault("succeeded", [])
    found.setdefault("failed", [])
    return found


def clean_uncounted(status: Object, uids_with_finalizer: set[str]) -> bool:
    """Count the uncounted pods whose finalizer is gone; True when the status changed."""
    lists = uncounted(status)
    changed = False
    for name in ("succeeded", "failed"):
        remaining = [uid for uid in lists[name] if uid in uids_with_finalizer]
        if len(remaining) != len(lists[name]):
            status[name] = int(status.get(name) or 0) + len(lists[name]) - len(remaining)
            lists[name] = remaining
            changed = True
    return changed


@dataclasses.dataclass(slots=True)
class SyncContext:
    """What one sync of one Job has learned (upstream's syncJobCtx)."""

    job: Object
    pods: list[Object]
    active_pods: list[Object]
    ready: int
    terminating: int
    succeeded: int = 0
    failed: int = 0
    finished: Object | None = None
    prev_succeeded_indexes: set[int] = dataclasses.field(default_factory=set)
    succeeded_indexes: set[int] = dataclasses.field(default_factory=set)
    failed_indexes: set[int] | None = None
    new_backoff: policy.BackoffRecord = dataclasses.field(default_factory=policy.BackoffRecord)

    @property
    def uncounted_uids(self) -> tuple[set[str], set[str]]:
        lists = uncounted(self.job.setdefault("status", {}))
        return set(lists["succeeded"]), set(lists["failed"])
