"""Pure Job arithmetic: failure policy, back-off, completion indexes, success policy.

Mirrors the side-effect-free parts of upstream's pkg/controller/job
(pod_failure_policy.go, backoff_utils.go, indexed_job_utils.go,
success_policy.go). Nothing here does I/O; ``controller.py`` calls these to
decide, then acts.

* ``match_pod_failure_policy``: the first ``spec.podFailurePolicy`` rule a
  failed pod matches (exit codes of terminated containers, never 0; or pod
  conditions), as (FailJob message, whether the failure counts, action);
* ``is_pod_failed``: phase Failed, or, unless only failed pods are replaced,
  a pod being deleted before it succeeded (it may never reach Failed);
* ``BackoffRecord``/``remaining_backoff``: 10 s doubling per failure since
  the last success, capped at 10 minutes, measured from the last failure;
* ``Intervals``: ``status.completedIndexes``/``failedIndexes`` ("1,3-5");
* ``match_success_policy``: the first ``spec.successPolicy`` rule met.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from kajitori.machinery import times

Object = dict[str, Any]

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
# Upstream's DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff.
DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 600.0
# Upstream's MaxUncountedPods: bounds status.uncountedTerminatedPods per sync.
MAX_UNCOUNTED_PODS = 500


def spec(job: Object) -> Object:
    return job.get("spec") or {}


def is_indexed(job: Object) -> bool:
    return spec(job).get("completionMode") == "Indexed"


def is_suspended(job: Object) -> bool:
    return bool(spec(job).get("suspend"))


def only_replace_failed_pods(job: Object) -> bool:
    """``podReplacementPolicy: Failed`` (implied by a failure policy): wait for terminating pods."""
    s = spec(job)
    return s.get("podReplacementPolicy") == "Failed" or s.get("podFailurePolicy") is not None


def phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def has_finalizer(pod: Object) -> bool:
    return JOB_TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or ())


def is_terminating(pod: Object) -> bool:
    """Being deleted but not yet terminal (upstream's IsPodTerminating)."""
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    return bool(deleting) and phase(pod) not in ("Succeeded", "Failed")


def is_pod_failed(pod: Object, job: Object) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    # A deleted pod counts as failed: an orphaned pod may never reach Failed.
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and phase(pod) != "Succeeded"


# ----- pod failure policy ----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyMatch:
    """What a failed pod means for its Job under ``spec.podFailurePolicy``."""

    fail_job_message: str | None = None
    count_failed: bool = True
    action: str | None = None


def _terminated(status: Object) -> Object | None:
    return ((status.get("state") or {}).get("terminated")) or None


def _exit_code_matches(code: int, requirement: Object) -> bool:
    values = {int(v) for v in requirement.get("values") or ()}
    if requirement.get("operator") == "In":
        return code in values
    if requirement.get("operator") == "NotIn":
        return code not in values
    return False


def _matching_container(pod: Object, requirement: Object) -> Object | None:
    status = pod.get("status") or {}
    wanted = requirement.get("containerName")
    for kind in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(kind) or ():
            terminated = _terminated(container)
            if terminated is None or (wanted and container.get("name") != wanted):
                continue
            code = int(terminated.get("exitCode") or 0)
            # Exit code 0 is success: never a failure to act on.
            if code != 0 and _exit_code_matches(code, requirement):
                return container
    return None


def _matching_condition(pod: Object, patterns: Sequence[Object]) -> Object | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        for pattern in patterns:
            if condition.get("type") == pattern.get("type") and condition.get(
                "status"
            ) == pattern.get("status", "True"):
                return condition
    return None


def match_pod_failure_policy(policy: Object | None, pod: Object) -> PolicyMatch:
    """The first rule ``pod`` matches; no rule matched counts the failure, as upstream."""
    if not policy:
        return PolicyMatch()
    meta = pod.get("metadata") or {}
    pod_name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    for index, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        what: str | None = None
        if rule.get("onExitCodes"):
            container = _matching_container(pod, rule["onExitCodes"])
            if container is not None:
                code = (_terminated(container) or {}).get("exitCode")
                what = f"Container {container.get('name')} for pod {pod_name} failed with exit code {code}"
        elif rule.get("onPodConditions"):
            condition = _matching_condition(pod, rule["onPodConditions"])
            if condition is not None:
                what = f"Pod {pod_name} has condition {condition.get('type')}"
        if what is None:
            continue
        if action == "FailJob":
            message = f"{what} matching FailJob rule at index {index}"
            return PolicyMatch(message, True, action)
        return PolicyMatch(None, action != "Ignore", action)
    return PolicyMatch()


# ----- back-off between failed pods ---------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BackoffRecord:
    """Failures since the last success and when the last one happened (backoffRecord)."""

    failures_after_last_success: int = 0
    last_failure_time: datetime.datetime | None = None


def finish_time(pod: Object, now: datetime.datetime) -> datetime.datetime:
    """When a terminated pod finished: its latest container end, else deletion, else now."""
    status = pod.get("status") or {}
    ends = [
        times.parse_time((_terminated(c) or {}).get("finishedAt"))
        for c in status.get("containerStatuses") or ()
    ]
    found = [t for t in ends if t is not None]
    if found:
        return max(found)
    deleted = times.parse_time((pod.get("metadata") or {}).get("deletionTimestamp"))
    return deleted or now


def new_backoff_record(
    old: BackoffRecord,
    succeeded: Iterable[Object],
    failed: Iterable[Object],
    *,
    now: datetime.datetime,
) -> BackoffRecord:
    """The record after newly finished pods: a success later than every failure resets it."""
    last_success = max((finish_time(p, now) for p in succeeded), default=None)
    failure_times = sorted(finish_time(p, now) for p in failed)
    if not failure_times:
        if last_success is not None:
            return BackoffRecord(0, old.last_failure_time)
        return old
    count, last_failure = old.failures_after_last_success, old.last_failure_time
    if last_success is not None:
        count = 0
        failure_times = [t for t in failure_times if t > last_success]
        if not failure_times:
            return BackoffRecord(0, last_failure)
    return BackoffRecord(count + len(failure_times), failure_times[-1])


def remaining_backoff(record: BackoffRecord, *, now: datetime.datetime) -> float:
    """Seconds until a replacement pod may be created (0: now)."""
    if record.failures_after_last_success == 0 or record.last_failure_time is None:
        return 0.0
    delay = min(MAX_BACKOFF, DEFAULT_BACKOFF * 2 ** (record.failures_after_last_success - 1))
    elapsed = (now - record.last_failure_time).total_seconds()
    return max(0.0, delay - elapsed)


# ----- completion indexes ----------------------------------------------------------------


def completion_index(pod: Object) -> int | None:
    """The pod's completion index annotation (label as fallback); None when absent or bad."""
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if raw is None:
        raw = (meta.get("labels") or {}).get(COMPLETION_INDEX_ANNOTATION)
    try:
        value = int(raw) if raw is not None else -1
    except ValueError:
        return None
    return value if value >= 0 else None


def parse_intervals(text: str | None, *, limit: int) -> set[int]:
    """The indexes ``"1,3-5"`` names below ``limit`` (malformed parts are skipped, as upstream)."""
    found: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high) if high else int(low)
        except ValueError:
            continue
        found.update(i for i in range(first, last + 1) if 0 <= i < limit)
    return found


def format_intervals(indexes: Iterable[int]) -> str:
    """``{1,3,4,5}`` → ``"1,3-5"`` (upstream's orderedIntervals.String)."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    start = prev = None
    for i in [*ordered, None]:
        if i is not None and prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    return ",".join(parts)


def index_failure_count(pod: Object, annotation: str = INDEX_FAILURE_COUNT_ANNOTATION) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(annotation)
    try:
        return max(0, int(raw)) if raw is not None else 0
    except ValueError:
        return 0


def failed_index_of(pod: Object, job: Object) -> bool:
    """With backoffLimitPerIndex: this failed pod exhausts its index (or FailIndex matched)."""
    limit = spec(job).get("backoffLimitPerIndex")
    if limit is None or not is_pod_failed(pod, job):
        return False
    match = match_pod_failure_policy(spec(job).get("podFailurePolicy"), pod)
    if match.action == "FailIndex":
        return True
    return match.count_failed and index_failure_count(pod) >= int(limit)


def next_failure_counts(job: Object, last_failed: Object | None) -> tuple[int, int]:
    """(failure count, ignored count) the replacement pod of an index carries."""
    if last_failed is None:
        return 0, 0
    count = index_failure_count(last_failed)
    ignored = index_failure_count(last_failed, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION)
    match = match_pod_failure_policy(spec(job).get("podFailurePolicy"), last_failed)
    if match.count_failed:
        return count + 1, ignored
    return count, ignored + 1


# ----- success policy ----------------------------------------------------------------------


def match_success_policy(policy: Object | None, completions: int, succeeded: set[int]) -> str:
    """The SuccessCriteriaMet message for the first rule ``succeeded`` meets, or ""."""
    for index, rule in enumerate((policy or {}).get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            wanted = parse_intervals(rule["succeededIndexes"], limit=completions)
            done = len(wanted & succeeded)
            met = done >= int(count) if count is not None else done == len(wanted)
        else:
            met = count is not None and len(succeeded) >= int(count)
        if met:
            return f"Matched rules at index {index}"
    return ""
