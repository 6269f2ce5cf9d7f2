"""The namespace controller: empties a terminating namespace, then lets it go.

Mirrors upstream's pkg/controller/namespace (namespaced_resources_deleter.go).
A namespace marked for deletion keeps the ``kubernetes`` finalizer in
``spec.finalizers`` until this controller has removed everything in it:

1. the namespace's phase is ``Terminating`` (the API server sets it on delete);
2. discovery lists every namespaced resource that can be listed and deleted;
3. each is emptied by ``deletecollection`` (or list + delete per object),
   with background propagation, and listed again to see what is left;
4. the namespace's deletion conditions report what happened
   (NamespaceDeletionDiscoveryFailure, NamespaceDeletionContentFailure,
   NamespaceContentRemaining, NamespaceFinalizersRemaining);
5. while objects remain the key is looked at again: after about half the
   longest remaining grace period when something is terminating gracefully,
   otherwise with the queue's backoff (objects held by finalizers);
6. once nothing remains, ``kubernetes`` is removed from ``spec.finalizers``
   through ``PUT namespaces/{name}/finalize``; with no finalizers left the
   API server deletes the namespace.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import logging
from typing import Any

from kajitori.client import events, informer, rest, workqueue
from kajitori.controllers import base
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]

FINALIZER_KUBERNETES = "kubernetes"
CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)


@dataclasses.dataclass(slots=True)
class ContentReport:
    """What deleting a namespace's content left behind."""

    discovery_error: str = ""
    failures: list[str] = dataclasses.field(default_factory=list)
    remaining: dict[str, int] = dataclasses.field(default_factory=dict)
    finalizers: dict[str, int] = dataclasses.field(default_factory=dict)
    estimate: float = 0.0


class NamespaceController(base.QueueController[str]):
    """Deletes the content of terminating namespaces; ``run(workers)`` until ``shut_down``."""

    name = "namespace"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        # Upstream caps the namespace controller's backoff at a minute, not 1000 s.
        super().__init__(
            rate_limiter=workqueue.MaxOfRateLimiter(
                workqueue.ItemExponentialFailureRateLimiter(0.005, 60.0),
                workqueue.BucketRateLimiter(),
            )
        )
        self.client = client
        self.recorder = recorder
        self.watch(
            informers.informer(rest.NAMESPACES),
            on_add=self._enqueue,
            on_update=lambda _, new: self._enqueue(new),
        )

    def _enqueue(self, namespace: Object) -> None:
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(namespace)

    async def wait_for_caches(self) -> None:
        """Nothing to wait for: ``sync`` reads the namespace live, so work starts at once."""

    async def sync(self, name: str) -> None:
        try:
            namespace = await self.client.get(rest.NAMESPACES, name)
        except rest.ApiError as exc:
            if exc.not_found:
                return
            raise
        meta = namespace["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        if FINALIZER_KUBERNETES not in ((namespace.get("spec") or {}).get("finalizers") or ()):
            return
        report = await self._delete_all_content(name)
        namespace = await self._update_conditions(namespace, report)
        _raise_unless_empty(name, report)
        await self._finalize(namespace)

    async def _delete_all_content(self, namespace: str) -> ContentReport:
        report = ContentReport()
        try:
            resources = await self.client.discover()
        except (rest.ApiError, OSError) as exc:
            report.discovery_error = str(exc)
            return report
        for resource in resources:
            if resource.namespaced and {"list", "delete"} <= resource.verbs:
                try:
                    await self._empty(resource, namespace, report)
                except rest.ApiError as exc:
                    report.failures.append(f"{_gr(resource)}: {exc.message}")
        return report

    async def _empty(self, resource: rest.Resource, namespace: str, report: ContentReport) -> None:
        """Delete every ``resource`` in ``namespace``; record what is still there afterwards."""
        if "deletecollection" in resource.verbs:
            await self.client.delete_collection(
                resource, namespace=namespace, propagation_policy="Background"
            )
        else:
            await self._delete_one_by_one(resource, namespace)
        left = await self.client.list_all(resource, namespace=namespace, metadata_only=True)
        items = left.get("items") or []
        if not items:
            return
        report.remaining[_gr(resource)] = len(items)
        now = datetime.datetime.now(datetime.UTC)
        for item in items:
            meta = item.get("metadata") or {}
            for finalizer in meta.get("finalizers") or ():
                report.finalizers[finalizer] = report.finalizers.get(finalizer, 0) + 1
            report.estimate = max(report.estimate, _seconds_until(meta, now))

    async def _delete_one_by_one(self, resource: rest.Resource, namespace: str) -> None:
        listed = await self.client.list_all(resource, namespace=namespace, metadata_only=True)
        for item in listed.get("items") or []:
            try:
                await self.client.delete(
                    resource,
                    item["metadata"]["name"],
                    namespace=namespace,
                    propagation_policy="Background",
                )
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise

    async def _update_conditions(self, namespace: Object, report: ContentReport) -> Object:
        status = namespace.get("status") or {}
        current = status.get("conditions") or []
        wanted = merge_conditions(current, deletion_conditions(report), now=times.now_rfc3339())
        if wanted == current:
            return namespace
        updated = copy.deepcopy(namespace)
        updated.setdefault("status", {})["conditions"] = wanted
        return await self.client.update_status(rest.NAMESPACES, updated)

    async def _finalize(self, namespace: Object) -> None:
        finalized = copy.deepcopy(namespace)
        spec = finalized.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != FINALIZER_KUBERNETES]
        try:
            await self.client.update(rest.NAMESPACES, finalized, subresource="finalize")
        except rest.ApiError as exc:
            if not exc.not_found:
                raise  # a conflict requeues: the next sync reads the namespace afresh
        log.info("namespace %s: content removed, finalized", namespace["metadata"]["name"])


def _raise_unless_empty(name: str, report: ContentReport) -> None:
    if report.discovery_error:
        raise RuntimeError(f"namespace {name}: discovery failed: {report.discovery_error}")
    if report.failures:
        raise RuntimeError(f"namespace {name}: deleting content failed: {report.failures}")
    if report.remaining and report.estimate > 0:
        # Upstream waits half the estimate plus a second, then looks again.
        raise base.RequeueAfter(report.estimate / 2 + 1, f"namespace {name}: content terminating")
    if report.remaining:
        raise RuntimeError(f"unexpected items still remain in namespace {name}: {report.remaining}")


def _seconds_until(meta: Object, now: datetime.datetime) -> float:
    when = times.parse_time(meta.get("deletionTimestamp"))
    if when is None:
        return 0.0
    return max((when - now).total_seconds(), 0.0)


def _gr(resource: rest.Resource) -> str:
    return f"{resource.plural}.{resource.group}"


def deletion_conditions(report: ContentReport) -> list[Object]:
    """The four deletion conditions for ``report``, worded as upstream's (status, reason, message)."""
    remaining = ", ".join(
        f"{gr} has {n} resource instances" for gr, n in sorted(report.remaining.items())
    )
    finalizers = ", ".join(
        f"{f} in {n} resource instances" for f, n in sorted(report.finalizers.items())
    )
    failures = "; ".join(sorted(report.failures))
    table = (
        (
            "NamespaceDeletionDiscoveryFailure",
            report.discovery_error,
            ("DiscoveryFailed", f"Discovery failed for some groups: {report.discovery_error}"),
            ("ResourcesDiscovered", "All resources successfully discovered"),
        ),
        (
            "NamespaceDeletionContentFailure",
            failures,
            ("ContentDeletionFailed", f"Failed to delete all resource types: {failures}"),
            ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
        ),
        (
            "NamespaceContentRemaining",
            remaining,
            ("SomeResourcesRemain", f"Some resources are remaining: {remaining}"),
            ("ContentRemoved", "All content successfully removed"),
        ),
        (
            "NamespaceFinalizersRemaining",
            finalizers,
            (
                "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {finalizers}",
            ),
            ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
        ),
    )
    return [
        {
            "type": kind,
            "status": "True" if bad else "False",
            "reason": (when_bad if bad else when_good)[0],
            "message": (when_bad if bad else when_good)[1],
        }
        for kind, bad, when_bad, when_good in table
    ]


def merge_conditions(current: list[Object], wanted: list[Object], *, now: str) -> list[Object]:
    """``current`` with ``wanted`` applied; an unchanged condition keeps its transition time."""
    by_type = {c.get("type"): c for c in current}
    merged = [c for c in current if c.get("type") not in CONDITION_TYPES]
    for condition in wanted:
        old = by_type.get(condition["type"])
        same = old is not None and all(
            old.get(k) == condition[k] for k in ("status", "reason", "message")
        )
        merged.append(old if same and old is not None else {**condition, "lastTransitionTime": now})
    return merged
