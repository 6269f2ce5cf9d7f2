"""The CronJob controller: creates a Job for each scheduled time and keeps the history short.

Mirrors upstream's pkg/controller/cronjob (cronjob_controllerv2.go, utils.go).
A sync of one CronJob key:

1. reconcile ``status.active`` with the Jobs it controls: finished Jobs leave
   it (SawCompletedJob) and advance ``lastSuccessfulTime``; entries whose Job
   is gone leave it (MissingJob); unfinished Jobs it does not list are
   reported (UnexpectedJob);
2. unless deleted or suspended, and if ``spec.timeZone`` loads and the
   schedule parses: find the most recent unmet scheduled time since
   ``lastScheduleTime`` (or creation), bounded by
   ``startingDeadlineSeconds``; more than 100 missed times is reported
   (TooManyMissedTimes); a time older than the deadline is skipped
   (MissSchedule);
3. apply ``concurrencyPolicy``: Forbid waits while a Job is active
   (JobAlreadyActive); Replace deletes the active ones first; Allow runs them
   side by side;
4. create ``{cronjob}-{scheduled time in minutes since the epoch}`` from
   ``jobTemplate`` (the name makes a second create of the same time a
   harmless AlreadyExists), list it as active, set ``lastScheduleTime``;
5. delete the oldest finished Jobs beyond ``successfulJobsHistoryLimit`` and
   ``failedJobsHistoryLimit``, write the status if it changed, and look again
   100 ms after the next scheduled time.

The clock is injectable (``clock=``) so tests need not wait for minutes.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base, cron_schedule
from kajitori.controllers.common import controller_ref, pod_control, pod_util
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]
Clock = Callable[[], datetime.datetime]

API_VERSION = "batch/v1"
KIND = "CronJob"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Upstream's nextScheduleDelta: look again just after the time, not just before.
NEXT_SCHEDULE_DELTA = 0.1
TOO_MANY_MISSED = 100
STATUS_ATTEMPTS = 5


# ----- pure schedule arithmetic ----------------------------------------------------


def job_name(cronjob_name: str, scheduled: datetime.datetime) -> str:
    """``{cronjob}-{minutes since the epoch}`` (upstream's getJobName)."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def _earliest(cronjob: Object) -> datetime.datetime:
    last = times.parse_time((cronjob.get("status") or {}).get("lastScheduleTime"))
    created = times.parse_time((cronjob.get("metadata") or {}).get("creationTimestamp"))
    return last or created or datetime.datetime.fromtimestamp(0, datetime.UTC)


def most_recent_schedule_time(
    cronjob: Object,
    now: datetime.datetime,
    schedule: cron_schedule.Schedule,
    *,
    with_deadline: bool,
) -> tuple[datetime.datetime, datetime.datetime | None, int]:
    """(earliest time considered, most recent unmet time or None, how many were missed)."""
    earliest = _earliest(cronjob)
    deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        earliest = max(earliest, now - datetime.timedelta(seconds=int(deadline)))
    first = schedule.next(earliest)
    if first is None or now < first:
        return earliest, None, 0
    second = schedule.next(first)
    if second is None or now < second:
        return earliest, first, 1
    period = round((second - first).total_seconds())
    if period < 1:
        raise cron_schedule.ScheduleError(
            "time difference between two schedules is less than 1 second"
        )
    missed = int((now - first).total_seconds()) // period + 1
    recent = first + datetime.timedelta(seconds=(missed - 1) * period)
    # Uneven schedules (e.g. "0 9 * * 1-5") drift from the arithmetic: walk the rest.
    following = schedule.next(recent)
    while following is not None and following <= now:
        recent, following = following, schedule.next(following)
    return earliest, recent, missed


def next_schedule_delay(
    cronjob: Object, now: datetime.datetime, schedule: cron_schedule.Schedule
) -> float | None:
    """Seconds until just after the next scheduled time (None: no next time)."""
    try:
        earliest, recent, _ = most_recent_schedule_time(cronjob, now, schedule, with_deadline=False)
    except cron_schedule.ScheduleError:
        return NEXT_SCHEDULE_DELTA
    following = schedule.next(recent or earliest)
    if following is None:
        return None
    return (following - now).total_seconds() + NEXT_SCHEDULE_DELTA


# ----- jobs ---------------------------------------------------------------------------


def finished_type(job: Object) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def job_from_template(cronjob: Object, scheduled: datetime.datetime) -> Object:
    """The Job for ``scheduled`` (upstream's getJobFromTemplate2)."""
    template = cronjob["spec"].get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    spec = cronjob.get("spec") or {}
    zone = cron_schedule.load_zone(spec.get("timeZone") or "")
    annotations = dict(template_meta.get("annotations") or {})
    stamp = scheduled.astimezone(zone).isoformat().replace("+00:00", "Z")
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = stamp
    metadata: Object = {
        "name": job_name(cronjob["metadata"]["name"], scheduled),
        "namespace": cronjob["metadata"].get("namespace", ""),
        "labels": dict(template_meta.get("labels") or {}),
        "annotations": annotations,
        "ownerReferences": [
            controller_ref.owner_reference(cronjob, api_version=API_VERSION, kind=KIND)
        ],
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": metadata,
        "spec": dict(template.get("spec") or {}),
    }


def object_reference(job: Object) -> Object:
    meta = job["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def jobs_beyond_limit(jobs: Sequence[Object], limit: int) -> list[Object]:
    """The oldest jobs (by start time, unstarted first, then name) over ``limit``."""
    if len(jobs) <= limit:
        return []

    def key(job: Object) -> tuple[bool, str, str]:
        start = (job.get("status") or {}).get("startTime")
        return (start is not None, start or "", job["metadata"]["name"])

    return sorted(jobs, key=key)[: len(jobs) - limit]


# ----- the controller --------------------------------------------------------------------


class CronJobController(base.QueueController[str]):
    """Runs CronJobs on schedule; ``clock`` is injectable for tests."""

    name = "cronjob"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        clock: Clock = pod_util.now,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.clock = clock
        self.cronjob_informer = self.watch(
            informers.informer(rest.CRONJOBS),
            on_add=self.enqueue,
            on_update=self._update_cronjob,
            on_delete=self.enqueue,
        )
        self.job_informer = self.watch(informers.informer(rest.JOBS), on_change=self._job_changed)

    def _update_cronjob(self, old: Object, new: Object) -> None:
        if base.resource_version_changed(old, new):
            self.enqueue(new)

    def _job_changed(self, job: Object) -> None:
        ref = controller_ref.controller_of(job)
        if ref is None or ref.get("kind") != KIND:
            return
        namespace = (job.get("metadata") or {}).get("namespace", "")
        self.enqueue_key(f"{namespace}/{ref.get('name')}")

    # ----- sync -------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.cronjob_informer.indexer.get(key)
        if cached is None:
            return
        cronjob = pod_util.with_kind(
            {**cached, "status": dict(cached.get("status") or {})},
            api_version=API_VERSION,
            kind=KIND,
        )
        jobs = self._jobs_of(cronjob)
        cronjob = await self._fresh_if_stale(cronjob, jobs)
        changed = await self._reconcile_active(cronjob, jobs)
        delay, created = await self._schedule(cronjob)
        changed = created or changed
        changed = await self._cleanup_finished(cronjob, jobs) or changed
        if changed:
            await self._update_status(cronjob)
        if delay is not None:
            raise base.RequeueAfter(delay, f"next schedule of {key}")

    async def _update_status(self, cronjob: Object) -> None:
        """Write the status; on conflicts again over the live object (the status is ours alone).

        A user editing the CronJob meanwhile must not cost the record of a
        Job just created (client-go's RetryOnConflict, 5 attempts).
        """
        body = cronjob
        for attempt in range(STATUS_ATTEMPTS):
            try:
                await self.client.update_status(rest.CRONJOBS, body)
                return
            except rest.ApiError as exc:
                if not exc.conflict or attempt == STATUS_ATTEMPTS - 1:
                    raise
            meta = cronjob["metadata"]
            fresh = await self.client.get(rest.CRONJOBS, meta["name"], namespace=meta["namespace"])
            if fresh["metadata"].get("uid") != meta.get("uid"):
                return
            body = {**fresh, "status": cronjob["status"]}

    def _jobs_of(self, cronjob: Object) -> list[Object]:
        uid = cronjob["metadata"]["uid"]
        namespace = cronjob["metadata"].get("namespace", "")
        return [
            job
            for job in self.job_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if (controller_ref.controller_of(job) or {}).get("uid") == uid
        ]

    async def _fresh_if_stale(self, cronjob: Object, jobs: Sequence[Object]) -> Object:
        """The live CronJob when a running Job of ours is missing from the cached ``active``.

        Our own status write may simply not have reached the cache yet; acting
        on the stale copy would ignore that Job (and break Forbid), as upstream
        re-reads the CronJob before calling such a Job unexpected.
        """
        listed = {ref.get("uid") for ref in cronjob["status"].get("active") or []}
        if all(j["metadata"]["uid"] in listed or finished_type(j) for j in jobs):
            return cronjob
        meta = cronjob["metadata"]
        fresh = await self.client.get(rest.CRONJOBS, meta["name"], namespace=meta["namespace"])
        if fresh["metadata"].get("uid") != meta.get("uid"):
            return cronjob
        fresh["status"] = dict(fresh.get("status") or {})
        return pod_util.with_kind(fresh, api_version=API_VERSION, kind=KIND)

    async def _reconcile_active(self, cronjob: Object, jobs: Sequence[Object]) -> bool:
        status = cronjob["status"]
        active = list(status.get("active") or [])
        active_uids = {ref.get("uid") for ref in active}
        changed = False
        for job in jobs:
            uid, name = job["metadata"]["uid"], job["metadata"]["name"]
            finished = finished_type(job)
            if uid not in active_uids and finished is None:
                self.recorder.event(
                    cronjob,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {name}",
                )
            elif uid in active_uids and finished is not None:
                active = [ref for ref in active if ref.get("uid") != uid]
                self.recorder.event(
                    cronjob,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {name}, condition: {finished}",
                )
                changed = True
            completed = (job.get("status") or {}).get("completionTime")
            if finished is not None and completed:
                last = status.get("lastSuccessfulTime")
                if last is None or _after(completed, last):
                    status["lastSuccessfulTime"] = completed
                    changed = True
        known = {job["metadata"]["uid"] for job in jobs}
        for ref in list(active):
            if ref.get("uid") in known or await self._job_exists(ref):
                continue
            self.recorder.event(
                cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"
            )
            active.remove(ref)
            changed = True
        _set_active(status, active)
        return changed

    async def _job_exists(self, ref: Object) -> bool:
        try:
            job = await self.client.get(
                rest.JOBS, ref.get("name", ""), namespace=ref.get("namespace", "")
            )
        except rest.ApiError as exc:
            if exc.not_found:
                return False
            raise
        return bool(job["metadata"].get("uid") == ref.get("uid"))

    async def _schedule(self, cronjob: Object) -> tuple[float | None, bool]:
        """Create the Job for the most recent unmet time: (when to look again, status changed)."""
        spec = cronjob.get("spec") or {}
        if controller_ref.is_being_deleted(cronjob):
            return None, False
        try:
            cron_schedule.load_zone(spec.get("timeZone") or "")
        except cron_schedule.ScheduleError as exc:
            message = f"invalid timeZone: {spec.get('timeZone')!r}: {exc}"
            self.recorder.event(cronjob, "Warning", "UnknownTimeZone", message)
            return None, False
        if spec.get("suspend"):
            return None, False
        raw = str(spec.get("schedule") or "")
        try:
            schedule = cron_schedule.parse(raw, zone=spec.get("timeZone"))
        except cron_schedule.ScheduleError as exc:
            message = f"unparseable schedule: {raw!r} : {exc}"
            self.recorder.event(cronjob, "Warning", "UnparseableSchedule", message)
            return None, False
        if "TZ" in raw:
            self.recorder.event(
                cronjob,
                "Warning",
                "UnsupportedSchedule",
                f"CRON_TZ or TZ used in schedule {raw!r} is not officially supported, see "
                "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ "
                "for more details",
            )
        now = self.clock()
        scheduled = self._next_unmet(cronjob, now, schedule)
        if scheduled is None:
            return next_schedule_delay(cronjob, now, schedule), False
        created = await self._start_job(cronjob, scheduled, now)
        return next_schedule_delay(cronjob, now, schedule), created

    def _next_unmet(
        self, cronjob: Object, now: datetime.datetime, schedule: cron_schedule.Schedule
    ) -> datetime.datetime | None:
        try:
            _, recent, missed = most_recent_schedule_time(
                cronjob, now, schedule, with_deadline=True
            )
        except cron_schedule.ScheduleError as exc:
            raw = (cronjob.get("spec") or {}).get("schedule")
            self.recorder.event(
                cronjob, "Warning", "InvalidSchedule", f"invalid schedule: {raw} : {exc}"
            )
            return None
        if recent is None or recent > now:
            return None
        if missed > TOO_MANY_MISSED:
            self.recorder.event(
                cronjob,
                "Warning",
                "TooManyMissedTimes",
                f"too many missed start times: {missed}. Set or decrease "
                ".spec.startingDeadlineSeconds or check clock skew",
            )
        return recent

    async def _start_job(
        self, cronjob: Object, scheduled: datetime.datetime, now: datetime.datetime
    ) -> bool:
        spec, status = cronjob.get("spec") or {}, cronjob["status"]
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + datetime.timedelta(seconds=int(deadline)) < now:
            stamp = scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")
            self.recorder.event(
                cronjob, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {stamp}"
            )
            return False
        name = job_name(cronjob["metadata"]["name"], scheduled)
        active = list(status.get("active") or [])
        if any(ref.get("name") == name for ref in active) or status.get(
            "lastScheduleTime"
        ) == times.format_time(scheduled):
            return False
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(
                cronjob,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy "
                "is Forbid",
            )
            return False
        if policy == "Replace":
            for ref in active:
                await self._delete_job(cronjob, ref.get("name", ""))
            _set_active(status, [])
        return await self._create_job(cronjob, scheduled)

    async def _create_job(self, cronjob: Object, scheduled: datetime.datetime) -> bool:
        body = job_from_template(cronjob, scheduled)
        namespace = cronjob["metadata"].get("namespace", "")
        try:
            job = await self.client.create(rest.JOBS, body, namespace=namespace)
        except rest.ApiError as exc:
            if pod_control.namespace_terminating(exc):
                return False
            if exc.code == 409:
                # A previous sync created it but could not record it: record it now.
                return await self._record_existing(cronjob, body, scheduled)
            self.recorder.event(
                cronjob, "Warning", "FailedCreate", f"Error creating job: {exc.message}"
            )
            raise
        self.recorder.event(
            cronjob, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}"
        )
        status = cronjob["status"]
        _set_active(status, [*(status.get("active") or []), object_reference(job)])
        status["lastScheduleTime"] = times.format_time(scheduled)
        return True

    async def _record_existing(
        self, cronjob: Object, body: Object, scheduled: datetime.datetime
    ) -> bool:
        """List the already existing Job for ``scheduled`` as active if it is ours and running.

        Upstream assumes whoever created it recorded it; a status write lost
        to a conflict would otherwise leave it out of ``active`` for good.
        """
        meta = body["metadata"]
        try:
            job = await self.client.get(rest.JOBS, meta["name"], namespace=meta["namespace"])
        except rest.ApiError as exc:
            if exc.not_found:
                return False
            raise
        ours = (controller_ref.controller_of(job) or {}).get("uid") == cronjob["metadata"]["uid"]
        if not ours or finished_type(job) is not None:
            return False
        status = cronjob["status"]
        if not any(ref.get("uid") == job["metadata"]["uid"] for ref in status.get("active") or []):
            _set_active(status, [*(status.get("active") or []), object_reference(job)])
        status["lastScheduleTime"] = times.format_time(scheduled)
        return True

    async def _delete_job(self, cronjob: Object, name: str) -> bool:
        namespace = cronjob["metadata"].get("namespace", "")
        try:
            await self.client.delete(
                rest.JOBS, name, namespace=namespace, propagation_policy="Background"
            )
        except rest.ApiError as exc:
            if exc.not_found:
                return True
            self.recorder.event(cronjob, "Warning", "FailedDelete", f"Deleted job: {exc.message}")
            return False
        self.recorder.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _cleanup_finished(self, cronjob: Object, jobs: Sequence[Object]) -> bool:
        spec, status = cronjob.get("spec") or {}, cronjob["status"]
        changed = False
        for kind, field in (
            ("Complete", "successfulJobsHistoryLimit"),
            ("Failed", "failedJobsHistoryLimit"),
        ):
            if spec.get(field) is None:
                continue
            finished = [j for j in jobs if finished_type(j) == kind]
            for job in jobs_beyond_limit(finished, int(spec[field])):
                if await self._delete_job(cronjob, job["metadata"]["name"]):
                    uid = job["metadata"]["uid"]
                    active = [r for r in status.get("active") or [] if r.get("uid") != uid]
                    changed = changed or len(active) != len(status.get("active") or [])
                    _set_active(status, active)
        return changed


def _after(a: str, b: str) -> bool:
    first, second = times.parse_time(a), times.parse_time(b)
    return first is not None and second is not None and first > second


def _set_active(status: Object, active: list[Object]) -> None:
    if active:
        status["active"] = active
    else:
        status.pop("active", None)
