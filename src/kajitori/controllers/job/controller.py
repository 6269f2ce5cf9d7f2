"""The Job controller: runs a Job's pods to completion, counting each finished pod once.

Mirrors upstream's pkg/controller/job/job_controller.go. A sync of one Job key:

1. read the Job from the informer cache (gone → forget its expectations and
   back-off); a finished Job only has its pods' tracking finalizers removed;
2. claim its pods (``common.controller_ref``), then count: active, ready,
   terminating, and the newly finished pods that still carry the
   ``batch.kubernetes.io/job-tracking`` finalizer;
3. decide whether the Job is finished, in upstream's order: an existing
   SuccessCriteriaMet or FailureTarget condition; a pod matching a FailJob
   rule of ``podFailurePolicy``; ``backoffLimit`` exceeded
   (BackoffLimitExceeded); ``activeDeadlineSeconds`` passed
   (DeadlineExceeded); with ``backoffLimitPerIndex``, too many failed
   indexes; a ``successPolicy`` rule met; finally enough completions;
4. a finishing Job deletes its active pods; otherwise ``manage`` deletes
   (suspended: all) or creates the difference to the wanted active count,
   waiting out the back-off after failures (10 s doubling, at most 10 min);
5. ``track``: add finished pods to ``status.uncountedTerminatedPods``, write
   the status, remove their finalizers, move them to the counters, and write
   the terminal condition once nothing is uncounted or terminating.

Status writes carry the cached ``resourceVersion``: a stale cache yields a
conflict (and a retry) rather than a lost or doubled count. Finalizers we
removed are remembered until the pod informer shows them gone, so a stale
pod is not counted twice.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Sequence
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base, replicaset
from kajitori.controllers.common import controller_ref, expectations, pod_control, pod_util
from kajitori.controllers.job import planning, policy
from kajitori.controllers.job import status as job_status
from kajitori.machinery import labels, times

log = logging.getLogger(__name__)

Object = dict[str, Any]

API_VERSION = "batch/v1"
KIND = "Job"
BURST_PODS = 500
# spec.managedBy naming this controller (upstream's JobControllerName); others are skipped.
MANAGED_BY = "kubernetes.io/job-controller"
_REMOVE_FINALIZER_PATCH = {
    "metadata": {"$deleteFromPrimitiveList/finalizers": [policy.JOB_TRACKING_FINALIZER]}
}


class JobController(base.QueueController[str]):
    """Reconciles Jobs with their pods; ``run(workers)`` until ``shut_down``."""

    name = "job"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.pod_control = pod_control.RealPodControl(client, recorder)
        self.expectations = expectations.Expectations()
        # Pod UIDs whose finalizer we removed, per Job key, until the cache agrees.
        self.finalizers_removed: dict[str, set[str]] = {}
        self.backoff: dict[str, policy.BackoffRecord] = {}
        self.orphan_queue = self.new_queue("job-orphan-pods")
        self.job_informer = self.watch(
            informers.informer(rest.JOBS),
            on_add=self.enqueue,
            on_update=self._update_job,
            on_delete=self._delete_job,
        )
        self.pod_informer = self.watch(
            informers.informer(rest.PODS),
            on_add=self._add_pod,
            on_update=self._update_pod,
            on_delete=self._delete_pod,
        )

    async def work(self, workers: int) -> None:
        await asyncio.gather(
            super().work(workers),
            base.run_workers(self.orphan_queue, self.sync_orphan_pod, 1, name="job-orphans"),
        )

    # ----- event handlers (enqueue keys only) -----------------------------------

    def _update_job(self, old: Object, new: Object) -> None:
        if base.resource_version_changed(old, new):
            self.enqueue(new)

    def _delete_job(self, job: Object) -> None:
        key = informer.meta_namespace_key(job)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, pod: Object) -> Object | None:
        ref = controller_ref.controller_of(pod)
        if ref is None or ref.get("kind") != KIND or ref.get("apiVersion") != API_VERSION:
            return None
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        found = self.job_informer.indexer.get(f"{namespace}/{ref.get('name')}")
        if found is None or found["metadata"].get("uid") != ref.get("uid"):
            return None
        return found

    def _owned_by_a_job(self, pod: Object) -> bool:
        ref = controller_ref.controller_of(pod)
        return ref is not None and ref.get("kind") == KIND

    def _add_pod(self, pod: Object) -> None:
        job = self._resolve(pod)
        if job is not None:
            key = informer.meta_namespace_key(job)
            if not controller_ref.is_being_deleted(pod):
                self.expectations.creation_observed(key)
            self.queue.add(key)
        elif self._owned_by_a_job(pod) and policy.has_finalizer(pod):
            self.orphan_queue.add(informer.meta_namespace_key(pod))
        elif controller_ref.controller_of(pod) is None:
            for owner in controller_ref.owners_selecting(self.job_informer.indexer, pod):
                self.enqueue(owner)

    def _update_pod(self, old: Object, new: Object) -> None:
        if not base.resource_version_changed(old, new):
            return
        job = self._resolve(new)
        if job is not None:
            key = informer.meta_namespace_key(job)
            if not policy.has_finalizer(new):
                self.finalizers_removed.get(key, set()).discard(
                    (new.get("metadata") or {}).get("uid", "")
                )
            self.queue.add(key)
        elif self._owned_by_a_job(new) and policy.has_finalizer(new):
            self.orphan_queue.add(informer.meta_namespace_key(new))
        old_job = self._resolve(old)
        if old_job is not None and old_job is not job:
            self.enqueue(old_job)
        if job is None and controller_ref.controller_of(new) is None:
            for owner in controller_ref.owners_selecting(self.job_informer.indexer, new):
                self.enqueue(owner)

    def _delete_pod(self, pod: Object) -> None:
        job = self._resolve(pod)
        if job is None:
            return
        key = informer.meta_namespace_key(job)
        self.expectations.deletion_observed(key, informer.meta_namespace_key(pod))
        self.finalizers_removed.get(key, set()).discard((pod.get("metadata") or {}).get("uid", ""))
        self.queue.add(key)

    # ----- orphan pods -----------------------------------------------------------

    async def sync_orphan_pod(self, key: str) -> None:
        """Drop the tracking finalizer of a pod whose Job is gone or finished."""
        pod = self.pod_informer.indexer.get(key)
        if pod is None or not policy.has_finalizer(pod):
            return
        job = self._resolve(pod)
        if job is not None and not job_status.is_finished(job):
            return
        await self._remove_finalizers([pod])

    # ----- sync ------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.job_informer.indexer.get(key)
        if cached is None:
            self._forget(key)
            return
        job = copy.deepcopy(pod_util.with_kind(cached, api_version=API_VERSION, kind=KIND))
        managed_by = (job.get("spec") or {}).get("managedBy")
        if managed_by is not None and managed_by != MANAGED_BY:
            return  # another controller (e.g. MultiKueue) owns this Job's status
        if job_status.is_finished(job):
            self.backoff.pop(key, None)
            await self._release_finished(job)
            return
        try:
            selector = labels.selector_from_label_selector((job.get("spec") or {}).get("selector"))
        except labels.SelectorError as exc:
            log.warning("job %s has an invalid selector: %s", key, exc)
            return
        pods = await self._claim_pods(job, selector)
        ctx = self._context(key, job, pods)
        now = pod_util.now()
        status = job.setdefault("status", {})
        new_start = status.get("startTime") is None and not policy.is_suspended(job)
        if new_start:
            status["startTime"] = times.format_time(now)
        ctx.finished, deadline_in = planning.finished_condition(ctx, now=now)
        if deadline_in is not None:
            self.queue.add_after(key, deadline_in)
        active, suspend_changed, manage_error = await self._manage_or_stop(key, ctx)
        needs_update = (
            new_start
            or suspend_changed
            or active != int(status.get("active") or 0)
            or ctx.ready != status.get("ready")
            or ctx.terminating != status.get("terminating")
        )
        status["active"], status["ready"] = active, ctx.ready
        status["terminating"] = ctx.terminating
        await self._track(key, ctx, needs_update)
        if manage_error is not None:
            raise manage_error

    def _forget(self, key: str) -> None:
        self.expectations.delete(key)
        self.backoff.pop(key, None)
        self.finalizers_removed.pop(key, None)

    def _context(self, key: str, job: Object, pods: list[Object]) -> job_status.SyncContext:
        removed = self.finalizers_removed.get(key, set())
        pods = [_without_finalizer(p) if _uid(p) in removed else p for p in pods]
        active_pods = [p for p in pods if pod_util.is_active(p)]
        ctx = job_status.SyncContext(
            job=job,
            pods=pods,
            active_pods=active_pods,
            ready=sum(1 for p in active_pods if pod_util.is_ready(p)),
            terminating=sum(1 for p in pods if policy.is_terminating(p)),
        )
        new_succeeded, new_failed = planning.new_finished_pods(ctx)
        planning.count(ctx, new_succeeded, new_failed)
        ctx.new_backoff = policy.new_backoff_record(
            self.backoff.get(key, policy.BackoffRecord()),
            new_succeeded,
            new_failed,
            now=pod_util.now(),
        )
        return ctx

    async def _claim_pods(self, job: Object, selector: labels.Selector) -> list[Object]:
        namespace = job["metadata"].get("namespace", "")
        candidates = self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        manager = controller_ref.manager_for(self.client, rest.JOBS, owner=job, selector=selector)
        claimed = await manager.claim(rest.PODS, candidates)
        # Adopted pods count as tracked from now on, as upstream adds the
        # finalizer when adopting (removing an absent finalizer is a no-op).
        return [
            p if controller_ref.controller_of(p) is not None else _with_finalizer(p)
            for p in claimed
        ]

    async def _release_finished(self, job: Object) -> None:
        uid = job["metadata"]["uid"]
        namespace = job["metadata"].get("namespace", "")
        pods = [
            p
            for p in self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if policy.has_finalizer(p) and (controller_ref.controller_of(p) or {}).get("uid") == uid
        ]
        if pods:
            await self._remove_finalizers(pods)

    # ----- manage: stop a finishing job, or create/delete pods --------------------

    async def _manage_or_stop(
        self, key: str, ctx: job_status.SyncContext
    ) -> tuple[int, bool, Exception | None]:
        """(active after acting, whether the Suspended condition changed, an error to raise)."""
        job, active = ctx.job, len(ctx.active_pods)
        if ctx.finished is not None:
            deleted, ready, failure = await self._delete_pods(key, job, ctx.active_pods, keep=True)
            if deleted != active:
                ctx.finished = None  # pods may remain: not finished yet
            ctx.terminating += deleted
            ctx.ready -= ready
            return active - deleted, False, failure
        error: Exception | None = None
        manage_called = not controller_ref.is_being_deleted(job)
        if manage_called:
            active, error = await self._manage(key, ctx)
        if planning.completed(ctx, active):
            ctx.finished = planning.success_condition(now=pod_util.now())
            return active, False, error
        changed = manage_called and self._set_suspended_condition(job)
        return active, changed, error

    def _set_suspended_condition(self, job: Object) -> bool:
        now = pod_util.now()
        status = job.setdefault("status", {})
        if policy.is_suspended(job):
            changed = job_status.ensure_condition(
                status, "Suspended", "True", "JobSuspended", "Job suspended", now=now
            )
            if changed:
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            return changed
        changed = job_status.ensure_condition(
            status, "Suspended", "False", "JobResumed", "Job resumed", now=now
        )
        if changed:
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            # activeDeadlineSeconds counts continuous activity: restart the clock.
            status["startTime"] = times.format_time(now)
        return changed

    async def _manage(self, key: str, ctx: job_status.SyncContext) -> tuple[int, Exception | None]:
        job, active = ctx.job, len(ctx.active_pods)
        if policy.is_suspended(job):
            deleted, ready, error = await self._delete_pods(key, job, ctx.active_pods, keep=False)
            ctx.terminating += deleted
            ctx.ready -= ready
            return active - deleted, error
        if not self.expectations.satisfied(key):
            return active, None
        plan = planning.plan_pods(ctx, now=pod_util.now())
        if plan.delete:
            deleted, ready, error = await self._delete_pods(key, job, plan.delete, keep=False)
            ctx.terminating += deleted
            ctx.ready -= ready
            return active - deleted, error
        if plan.wait > 0:
            self.queue.add_after(key, plan.wait)
        if not plan.create:
            return active, None
        created, error = await self._create_pods(key, job, plan.create[:BURST_PODS])
        return active + created, error

    async def _create_pods(
        self, key: str, job: Object, pods: Sequence[Object]
    ) -> tuple[int, Exception | None]:
        self.expectations.expect_creations(key, len(pods))
        created, error, start = 0, None, 0
        for size in replicaset.slow_start_batches(len(pods)):
            batch = pods[start : start + size]
            start += size
            results = await asyncio.gather(
                *(self._create_pod(job, p) for p in batch), return_exceptions=True
            )
            errors = [
                r
                for r in results
                if isinstance(r, Exception) and not pod_control.namespace_terminating(r)
            ]
            created += len(batch) - len(errors)
            if errors:
                error = errors[0]
                break
        if created < len(pods):
            self.expectations.lower_creations(key, len(pods) - created)
        return created, error

    async def _create_pod(self, job: Object, pod: Object) -> Object:
        namespace = job["metadata"].get("namespace", "")
        try:
            created = await self.client.create(rest.PODS, pod, namespace=namespace)
        except rest.ApiError as exc:
            if not pod_control.namespace_terminating(exc):
                self.recorder.event(
                    job, "Warning", "FailedCreate", f"Error creating: {exc.message}"
                )
            raise
        name = created["metadata"]["name"]
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return created

    async def _delete_pods(
        self, key: str, job: Object, pods: Sequence[Object], *, keep: bool
    ) -> tuple[int, int, Exception | None]:
        """Delete ``pods``: (deleted, of which ready, first error).

        ``keep`` keeps the tracking finalizer so the pod is counted as failed
        (a finishing Job); otherwise it is removed first and the pod never
        counts (a suspended or scaled-down Job).
        """
        keys = [informer.meta_namespace_key(p) for p in pods]
        self.expectations.expect_deletions(key, keys)
        results = await asyncio.gather(
            *(self._delete_one(job, p, keep=keep) for p in pods), return_exceptions=True
        )
        deleted = ready = 0
        error: Exception | None = None
        for pod, pod_key, result in zip(pods, keys, results, strict=True):
            if isinstance(result, BaseException) and not rest.is_not_found(result):
                self.expectations.deletion_observed(key, pod_key)
                error = error or (result if isinstance(result, Exception) else None)
                continue
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key, pod_key)
            deleted += 1
            ready += int(pod_util.is_ready(pod))
        return deleted, ready, error

    async def _delete_one(self, job: Object, pod: Object, *, keep: bool) -> None:
        meta = pod["metadata"]
        if not keep and policy.has_finalizer(pod):
            await self._patch_pod(pod, _REMOVE_FINALIZER_PATCH)
        await self.pod_control.delete_pod(meta.get("namespace", ""), meta["name"], owner=job)

    async def _patch_pod(self, pod: Object, patch: Object) -> None:
        meta = pod["metadata"]
        await self.client.patch(
            rest.PODS,
            meta["name"],
            patch,
            namespace=meta.get("namespace", ""),
            patch_type="strategic",
        )

    async def _remove_finalizers(self, pods: Sequence[Object]) -> tuple[set[str], Exception | None]:
        """Remove the tracking finalizer; (UIDs now without it, first error). Gone counts as done."""
        results = await asyncio.gather(
            *(self._patch_pod(p, _REMOVE_FINALIZER_PATCH) for p in pods), return_exceptions=True
        )
        done: set[str] = set()
        error: Exception | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, BaseException) and not rest.is_not_found(result):
                error = error or (result if isinstance(result, Exception) else None)
                continue
            done.add(_uid(pod))
        return done, error

    # ----- track: count finished pods, remove finalizers, finish --------------------

    async def _track(self, key: str, ctx: job_status.SyncContext, needs_flush: bool) -> None:
        status = ctx.job.setdefault("status", {})
        with_finalizer = {_uid(p) for p in ctx.pods if policy.has_finalizer(p)}
        needs_flush = job_status.clean_uncounted(status, with_finalizer) or needs_flush
        to_release, added, reached_max = planning.collect_finished(ctx)
        needs_flush = needs_flush or added
        needs_flush = planning.apply_indexes(ctx) or needs_flush
        needs_flush = planning.promote_interim_condition(ctx, now=pod_util.now()) or needs_flush
        if needs_flush:
            ctx.job = await self._write_status(ctx.job)
            self.backoff[key] = ctx.new_backoff
            needs_flush = False
        status = ctx.job.setdefault("status", {})
        error: Exception | None = None
        if to_release:
            done, error = await self._remove_finalizers(to_release)
            self.finalizers_removed.setdefault(key, set()).update(done)
            with_finalizer -= done
        if job_status.clean_uncounted(status, with_finalizer):
            needs_flush = True
        if error is not None:
            if needs_flush:
                ctx.job = await self._write_status(ctx.job)
            raise error
        finished = not reached_max and planning.enact_finished(ctx, now=pod_util.now())
        if finished or needs_flush:
            ctx.job = await self._write_status(ctx.job)
        if finished:
            self._record_finished(ctx)

    async def _write_status(self, job: Object) -> Object:
        written = await self.client.update_status(rest.JOBS, job)
        return pod_util.with_kind(written, api_version=API_VERSION, kind=KIND)

    def _record_finished(self, ctx: job_status.SyncContext) -> None:
        job, finished = ctx.job, ctx.finished or {}
        if finished.get("type") == "Complete":
            completions = (job.get("spec") or {}).get("completions")
            succeeded = int((job.get("status") or {}).get("succeeded") or 0)
            if completions is not None and succeeded > int(completions):
                self.recorder.event(
                    job,
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                )
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(
                job, "Warning", finished.get("reason", ""), finished.get("message", "")
            )


def _uid(pod: Object) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _with_finalizer(pod: Object) -> Object:
    meta = dict(pod.get("metadata") or {})
    meta["finalizers"] = [*(meta.get("finalizers") or []), policy.JOB_TRACKING_FINALIZER]
    return {**pod, "metadata": meta}


def _without_finalizer(pod: Object) -> Object:
    meta = dict(pod.get("metadata") or {})
    meta["finalizers"] = [
        f for f in meta.get("finalizers") or () if f != policy.JOB_TRACKING_FINALIZER
    ]
    return {**pod, "metadata": meta}
