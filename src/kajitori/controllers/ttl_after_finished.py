"""The TTL-after-finished controller: deletes finished Jobs ``ttlSecondsAfterFinished`` later.

Mirrors upstream's pkg/controller/ttlafterfinished. A Job is looked at when
it is added or updated; if it has ``spec.ttlSecondsAfterFinished`` and a
Complete or Failed condition, it expires at its finish time (the
condition's ``lastTransitionTime``) plus the TTL. Before that the key is
looked at again when it expires; after it, the Job is read live (the cache
may be stale, and the TTL may have been changed or removed meanwhile) and
deleted with ``propagationPolicy: Foreground`` and a UID precondition, so
its pods go first and a namesake created meanwhile is never touched.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import pod_util
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]
Clock = Callable[[], datetime.datetime]


def finish_time(job: Object) -> datetime.datetime | None:
    """When the Job's Complete or Failed condition became True; None if not finished."""
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return times.parse_time(condition.get("lastTransitionTime"))
    return None


def needs_cleanup(job: Object) -> bool:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    deleting = (job.get("metadata") or {}).get("deletionTimestamp")
    return ttl is not None and not deleting and finish_time(job) is not None


def time_left(job: Object, *, now: datetime.datetime) -> float | None:
    """Seconds until ``job`` expires (<= 0: expired); None if it never will."""
    if not needs_cleanup(job):
        return None
    finished = finish_time(job)
    assert finished is not None
    ttl = int((job.get("spec") or {}).get("ttlSecondsAfterFinished") or 0)
    return (finished + datetime.timedelta(seconds=ttl) - now).total_seconds()


class TTLAfterFinishedController(base.QueueController[str]):
    """Deletes expired finished Jobs; ``clock`` is injectable for tests."""

    name = "ttl-after-finished"

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
        self.job_informer = self.watch(
            informers.informer(rest.JOBS), on_add=self._add_job, on_update=self._update_job
        )

    def _add_job(self, job: Object) -> None:
        if needs_cleanup(job):
            self.enqueue(job)

    def _update_job(self, old: Object, new: Object) -> None:
        self._add_job(new)

    async def sync(self, key: str) -> None:
        cached = self.job_informer.indexer.get(key)
        if cached is None:
            return
        left = time_left(cached, now=self.clock())
        if left is None:
            return
        if left > 0:
            raise base.RequeueAfter(left, f"job {key} expires in {left:.0f}s")
        namespace, name = informer.split_key(key)
        try:
            fresh = await self.client.get(rest.JOBS, name, namespace=namespace)
        except rest.ApiError as exc:
            if exc.not_found:
                return
            raise
        left = time_left(fresh, now=self.clock())
        if left is None:
            return
        if left > 0:
            raise base.RequeueAfter(left, f"job {key} expires in {left:.0f}s")
        log.info("deleting job %s: finished more than ttlSecondsAfterFinished ago", key)
        try:
            await self.client.delete(
                rest.JOBS,
                name,
                namespace=namespace,
                propagation_policy="Foreground",
                uid=fresh["metadata"]["uid"],
            )
        except rest.ApiError as exc:
            if not exc.not_found and not exc.conflict:
                raise
