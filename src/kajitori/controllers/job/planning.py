"""Pure Job decisions over one ``SyncContext``: counts, finish, pods to create or delete.

The deciding half of upstream's syncJob, manageJob and
trackJobStatusAndRemoveFinalizers; ``controller.py`` is the doing half. Each
function reads (and some update) the context, never the API.

* ``count``: succeeded/failed = status counters + uncounted UIDs + newly
  finished pods still carrying the tracking finalizer (ignored failures of
  ``podFailurePolicy`` are not counted);
* ``finished_condition``: the interim condition that ends the Job, if any,
  and when to look again for ``activeDeadlineSeconds``;
* ``plan_pods``: which pods to create (with index, hostname, env and
  failure-count annotations for Indexed Jobs) or delete, or how long the
  back-off still holds creation back;
* ``collect_finished`` / ``apply_indexes`` / ``promote_interim_condition`` /
  ``enact_finished``: the status steps of tracking.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.controllers import replicaset
from kajitori.controllers.common import controller_ref, pod_control, pod_util
from kajitori.controllers.job import policy
from kajitori.controllers.job import status as job_status
from kajitori.machinery import times

Object = dict[str, Any]
Context = job_status.SyncContext

MAX_POD_NAME_PREFIX = 63 - 5  # generateName leaves room for the random suffix


def _spec(ctx: Context) -> Object:
    return ctx.job.get("spec") or {}


def _uid(pod: Object) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _valid_index(ctx: Context, pod: Object) -> int | None:
    index = policy.completion_index(pod)
    completions = int(_spec(ctx).get("completions") or 0)
    return index if index is not None and index < completions else None


# ----- counting --------------------------------------------------------------------


def new_finished_pods(ctx: Context) -> tuple[list[Object], list[Object]]:
    """Finished pods with the tracking finalizer not yet in the uncounted lists."""
    known_succeeded, known_failed = ctx.uncounted_uids
    indexed = policy.is_indexed(ctx.job)
    succeeded, failed = [], []
    for pod in ctx.pods:
        if not policy.has_finalizer(pod) or (indexed and _valid_index(ctx, pod) is None):
            continue
        if policy.phase(pod) == "Succeeded" and _uid(pod) not in known_succeeded:
            succeeded.append(pod)
        elif policy.is_pod_failed(pod, ctx.job) and _uid(pod) not in known_failed:
            failed.append(pod)
    return succeeded, failed


def count(ctx: Context, new_succeeded: Sequence[Object], new_failed: Sequence[Object]) -> None:
    status = ctx.job.get("status") or {}
    known_succeeded, known_failed = ctx.uncounted_uids
    rules = _spec(ctx).get("podFailurePolicy")
    counted_failures = sum(
        1 for p in new_failed if policy.match_pod_failure_policy(rules, p).count_failed
    )
    ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(known_succeeded)
    ctx.failed = int(status.get("failed") or 0) + counted_failures + len(known_failed)


# ----- finishing ----------------------------------------------------------------------


def failure_condition(reason: str, message: str, *, now: datetime.datetime) -> Object:
    return job_status.new_condition("FailureTarget", "True", reason, message, now=now)


def success_condition(*, now: datetime.datetime) -> Object:
    return job_status.new_condition(
        "SuccessCriteriaMet",
        "True",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
        now=now,
    )


def _fail_job_message(ctx: Context) -> str | None:
    rules = _spec(ctx).get("podFailurePolicy")
    if not rules:
        return None
    for pod in ctx.pods:
        if policy.is_pod_failed(pod, ctx.job):
            message = policy.match_pod_failure_policy(rules, pod).fail_job_message
            if message is not None:
                return message
    return None


def past_backoff_limit_on_failure(ctx: Context) -> bool:
    """With ``restartPolicy: OnFailure`` container restarts count against the limit."""
    template_spec = (_spec(ctx).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(
        int(c.get("restartCount") or 0)
        for pod in ctx.pods
        if policy.phase(pod) in ("Running", "Pending")
        for kind in ("initContainerStatuses", "containerStatuses")
        for c in (pod.get("status") or {}).get(kind) or ()
    )
    limit = int(_spec(ctx).get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit


def deadline_remaining(job: Object, *, now: datetime.datetime) -> float | None:
    """Seconds left of ``activeDeadlineSeconds`` (None: no deadline or suspended)."""
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    start = times.parse_time((job.get("status") or {}).get("startTime"))
    if deadline is None or start is None or policy.is_suspended(job):
        return None
    return int(deadline) - (now - start).total_seconds()


def finished_condition(
    ctx: Context, *, now: datetime.datetime
) -> tuple[Object | None, float | None]:
    """The condition finishing the Job (upstream's order), and when to re-check the deadline."""
    job, spec = ctx.job, _spec(ctx)
    finished = job_status.find_condition(job, "SuccessCriteriaMet")
    if finished is not None and finished.get("status") != "True":
        finished = None
    if finished is None:
        target = job_status.find_condition(job, "FailureTarget")
        message = _fail_job_message(ctx)
        if target is not None and target.get("status") == "True":
            finished = job_status.new_condition(
                "Failed", "True", target.get("reason", ""), target.get("message", ""), now=now
            )
        elif message is not None:
            finished = failure_condition("PodFailurePolicy", message, now=now)
    recheck: float | None = None
    if finished is None:
        remaining = deadline_remaining(job, now=now)
        if ctx.failed > int(spec.get("backoffLimit") or 0) or past_backoff_limit_on_failure(ctx):
            finished = failure_condition(
                "BackoffLimitExceeded", "Job has reached the specified backoff limit", now=now
            )
        elif remaining is not None and remaining <= 0:
            finished = failure_condition(
                "DeadlineExceeded", "Job was active longer than specified deadline", now=now
            )
        elif remaining is not None:
            recheck = remaining
    if policy.is_indexed(job):
        finished = _indexed_finish(ctx, finished, now=now)
    return finished, recheck


def _indexed_finish(
    ctx: Context, finished: Object | None, *, now: datetime.datetime
) -> Object | None:
    spec = _spec(ctx)
    completions = int(spec.get("completions") or 0)
    status = ctx.job.get("status") or {}
    ctx.prev_succeeded_indexes = policy.parse_intervals(
        status.get("completedIndexes"), limit=completions
    )
    ctx.succeeded_indexes = set(ctx.prev_succeeded_indexes) | {
        i
        for p in ctx.pods
        if policy.has_finalizer(p) and policy.phase(p) == "Succeeded"
        for i in [_valid_index(ctx, p)]
        if i is not None
    }
    ctx.succeeded = len(ctx.succeeded_indexes)
    if spec.get("backoffLimitPerIndex") is not None:
        ctx.failed_indexes = policy.parse_intervals(
            status.get("failedIndexes"), limit=completions
        ) | {
            i
            for p in ctx.pods
            if policy.has_finalizer(p) and policy.failed_index_of(p, ctx.job)
            for i in [_valid_index(ctx, p)]
            if i is not None
        }
        ctx.failed_indexes -= ctx.succeeded_indexes
        if finished is None:
            max_failed = spec.get("maxFailedIndexes")
            failed = len(ctx.failed_indexes)
            if max_failed is not None and failed > int(max_failed):
                finished = failure_condition(
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes",
                    now=now,
                )
            elif failed > 0 and failed + ctx.succeeded >= completions:
                finished = failure_condition("FailedIndexes", "Job has failed indexes", now=now)
    if finished is None:
        message = policy.match_success_policy(
            spec.get("successPolicy"), completions, ctx.succeeded_indexes
        )
        if message:
            finished = job_status.new_condition(
                "SuccessCriteriaMet", "True", "SuccessPolicy", message, now=now
            )
    return finished


def completed(ctx: Context, active: int) -> bool:
    completions = _spec(ctx).get("completions")
    if completions is None:
        # Work-queue Jobs: any success ends the Job once the others have exited.
        return ctx.succeeded > 0 and active == 0
    return ctx.succeeded >= int(completions) and active == 0


# ----- pods to create or delete ----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PodPlan:
    create: list[Object] = dataclasses.field(default_factory=list)
    delete: list[Object] = dataclasses.field(default_factory=list)
    wait: float = 0.0  # seconds of back-off still holding creation back


def want_active(ctx: Context) -> int:
    spec = _spec(ctx)
    parallelism = int(spec.get("parallelism") or 0)
    completions = spec.get("completions")
    if completions is None:
        return len(ctx.active_pods) if ctx.succeeded > 0 else parallelism
    remaining = int(completions) - ctx.succeeded - len(ctx.failed_indexes or ())
    return max(0, min(remaining, parallelism))


def plan_pods(ctx: Context, *, now: datetime.datetime) -> PodPlan:
    """What ``manageJob`` does for a running, unsuspended Job."""
    want = want_active(ctx)
    surplus = _indexed_surplus(ctx) if policy.is_indexed(ctx.job) else []
    keep = [p for p in ctx.active_pods if p not in surplus]
    if len(keep) > want:
        surplus += replicaset.pods_to_delete(keep, len(keep) - want, now=now)
    if surplus:
        return PodPlan(delete=surplus)
    missing = want - len(ctx.active_pods)
    if policy.only_replace_failed_pods(ctx.job):
        missing -= ctx.terminating  # replacements wait until terminating pods are gone
    if missing <= 0:
        return PodPlan()
    wait = policy.remaining_backoff(ctx.new_backoff, now=now)
    if wait > 0:
        return PodPlan(wait=wait)
    if not policy.is_indexed(ctx.job):
        return PodPlan(create=[new_pod(ctx.job, None) for _ in range(missing)])
    indexes, wait = _pending_indexes(ctx, missing, now=now)
    pods = [new_pod(ctx.job, i, counts=_failure_counts(ctx, i)) for i in indexes]
    return PodPlan(create=pods, wait=wait)


def _indexed_surplus(ctx: Context) -> list[Object]:
    """Active pods with a bad or duplicate index, or one already succeeded."""
    seen: set[int] = set()
    surplus = []
    for pod in sorted(ctx.active_pods, key=lambda p: pod_util.is_ready(p), reverse=True):
        index = _valid_index(ctx, pod)
        if index is None or index in seen or index in ctx.succeeded_indexes:
            surplus.append(pod)
        else:
            seen.add(index)
    return surplus


def _last_failed(ctx: Context, index: int) -> Object | None:
    failed = [
        p
        for p in ctx.pods
        if policy.completion_index(p) == index and policy.is_pod_failed(p, ctx.job)
    ]
    now = pod_util.now()
    return max(failed, key=lambda p: policy.finish_time(p, now), default=None)


def _failure_counts(ctx: Context, index: int) -> tuple[int, int] | None:
    if _spec(ctx).get("backoffLimitPerIndex") is None:
        return None
    return policy.next_failure_counts(ctx.job, _last_failed(ctx, index))


def _pending_indexes(
    ctx: Context, count_: int, *, now: datetime.datetime
) -> tuple[list[int], float]:
    """The lowest ``count_`` indexes neither done, failed, active nor backing off."""
    completions = int(_spec(ctx).get("completions") or 0)
    busy = {policy.completion_index(p) for p in ctx.active_pods}
    done = ctx.succeeded_indexes | (ctx.failed_indexes or set())
    per_index = _spec(ctx).get("backoffLimitPerIndex") is not None
    chosen: list[int] = []
    wait = 0.0
    for index in range(completions):
        if len(chosen) >= count_:
            break
        if index in done or index in busy:
            continue
        if per_index:
            delay = _index_backoff(ctx, index, now=now)
            if delay > 0:
                wait = delay if wait == 0 else min(wait, delay)
                continue
        chosen.append(index)
    return chosen, wait


def _index_backoff(ctx: Context, index: int, *, now: datetime.datetime) -> float:
    last = _last_failed(ctx, index)
    if last is None:
        return 0.0
    failures = policy.index_failure_count(last) + 1
    record = policy.BackoffRecord(failures, policy.finish_time(last, now))
    return policy.remaining_backoff(record, now=now)


def pod_name_prefix(job_name: str, index: int) -> str:
    """``{job}-{index}-``, the Job name shortened to leave room for the suffix (upstream)."""
    tail = f"-{index}-"
    return job_name[: max(0, MAX_POD_NAME_PREFIX - len(tail))] + tail


def new_pod(job: Object, index: int | None, *, counts: tuple[int, int] | None = None) -> Object:
    """The pod body for one more pod of ``job`` (index: the completion index, Indexed only)."""
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    meta = template.setdefault("metadata", {})
    meta["finalizers"] = [*(meta.get("finalizers") or []), policy.JOB_TRACKING_FINALIZER]
    ref = controller_ref.owner_reference(job, api_version="batch/v1", kind="Job")
    pod = pod_control.pod_from_template(template, owner=job, owner_ref=ref)
    if index is None:
        return pod
    name = job["metadata"]["name"]
    pod_meta = pod["metadata"]
    pod_meta["generateName"] = pod_name_prefix(name, index)
    pod_meta.setdefault("annotations", {})[policy.COMPLETION_INDEX_ANNOTATION] = str(index)
    pod_meta["labels"][policy.COMPLETION_INDEX_ANNOTATION] = str(index)
    if counts is not None:
        pod_meta["annotations"][policy.INDEX_FAILURE_COUNT_ANNOTATION] = str(counts[0])
        if counts[1]:
            pod_meta["annotations"][policy.INDEX_IGNORED_FAILURE_COUNT_ANNOTATION] = str(counts[1])
    pod["spec"]["hostname"] = f"{name}-{index}"
    _add_index_env(pod["spec"])
    return pod


def _add_index_env(pod_spec: Object) -> None:
    source = {
        "fieldRef": {"fieldPath": f"metadata.annotations['{policy.COMPLETION_INDEX_ANNOTATION}']"}
    }
    for kind in ("initContainers", "containers"):
        for container in pod_spec.get(kind) or ():
            env = container.setdefault("env", [])
            if not any(e.get("name") == policy.COMPLETION_INDEX_ENV for e in env):
                env.append({"name": policy.COMPLETION_INDEX_ENV, "valueFrom": source})


# ----- tracking ------------------------------------------------------------------------


def _can_release(ctx: Context, pod: Object, considered_failed: bool) -> bool:
    if controller_ref.is_being_deleted(ctx.job) or ctx.finished is not None:
        return True
    return policy.phase(pod) == "Succeeded" or considered_failed


def collect_finished(ctx: Context) -> tuple[list[Object], bool, bool]:
    """(pods whose finalizer may go, whether uncounted lists grew, whether the cap was hit)."""
    lists = job_status.uncounted(ctx.job.setdefault("status", {}))
    indexed = policy.is_indexed(ctx.job)
    rules = _spec(ctx).get("podFailurePolicy")
    failing = ctx.finished is not None and ctx.finished.get("type") != "SuccessCriteriaMet"
    pods = sorted(ctx.pods, key=lambda p: policy.completion_index(p) or 0) if indexed else ctx.pods
    release: list[Object] = []
    added = reached = False
    for pod in pods:
        if not policy.has_finalizer(pod):
            continue
        considered_failed = policy.is_pod_failed(pod, ctx.job)
        if not _can_release(ctx, pod, considered_failed):
            continue
        release.append(pod)
        uid = _uid(pod)
        if policy.phase(pod) == "Succeeded" and uid not in lists["failed"]:
            if not indexed and uid not in lists["succeeded"]:
                lists["succeeded"].append(uid)
                added = True
        elif (considered_failed or failing) and uid not in lists["failed"]:
            if (not indexed or _valid_index(ctx, pod) is not None) and (
                policy.match_pod_failure_policy(rules, pod).count_failed
            ):
                lists["failed"].append(uid)
                added = True
        if len(lists["succeeded"]) + len(lists["failed"]) >= policy.MAX_UNCOUNTED_PODS:
            reached = True
            break
    return release, added, reached


def apply_indexes(ctx: Context) -> bool:
    """Write completedIndexes/failedIndexes and the succeeded count of an Indexed Job."""
    if not policy.is_indexed(ctx.job):
        return False
    status = ctx.job.setdefault("status", {})
    changed = False
    completed_text = policy.format_intervals(ctx.succeeded_indexes)
    if completed_text != status.get("completedIndexes", "") or "completedIndexes" not in status:
        changed = changed or completed_text != status.get("completedIndexes")
        status["completedIndexes"] = completed_text
    if int(status.get("succeeded") or 0) != len(ctx.succeeded_indexes):
        status["succeeded"] = len(ctx.succeeded_indexes)
        changed = True
    if ctx.failed_indexes is not None:
        failed_text = policy.format_intervals(ctx.failed_indexes)
        if status.get("failedIndexes") != failed_text:
            status["failedIndexes"] = failed_text
            changed = True
    return changed


def promote_interim_condition(ctx: Context, *, now: datetime.datetime) -> bool:
    """Write FailureTarget/SuccessCriteriaMet now; aim for Failed/Complete once pods are done."""
    finished = ctx.finished
    if finished is None:
        return False
    status = ctx.job.setdefault("status", {})
    kind = finished.get("type")
    reason, message = finished.get("reason", ""), finished.get("message", "")
    if kind == "FailureTarget":
        status.setdefault("conditions", []).append(finished)
        ctx.finished = job_status.new_condition("Failed", "True", reason, message, now=now)
        return True
    if kind == "SuccessCriteriaMet":
        written = job_status.find_condition(ctx.job, "SuccessCriteriaMet") is None
        if written:
            status.setdefault("conditions", []).append(finished)
        ctx.finished = job_status.new_condition("Complete", "True", reason, message, now=now)
        return written
    return False


def enact_finished(ctx: Context, *, now: datetime.datetime) -> bool:
    """Add Complete/Failed once nothing is uncounted or terminating; True when added."""
    finished = ctx.finished
    if finished is None:
        return False
    status = ctx.job.setdefault("status", {})
    lists = job_status.uncounted(status)
    if lists["succeeded"] or lists["failed"] or ctx.terminating > 0:
        return False
    job_status.ensure_condition(
        status,
        finished["type"],
        finished["status"],
        finished.get("reason", ""),
        finished.get("message", ""),
        now=now,
    )
    if finished["type"] == "Complete":
        written = job_status.find_condition(ctx.job, "Complete") or {}
        status["completionTime"] = written.get("lastTransitionTime")
    return True
