"""The pod garbage collector: force-deletes pods no kubelet will ever finish.

Mirrors upstream's pkg/controller/podgc (kube-controller-manager's
``pod-garbage-collector``). It keys on nothing: every ``gc_check_period``
(upstream's gcCheckPeriod, 20 s) it reads the pod and node informers' caches
and makes four passes, in upstream's order:

1. terminated pods (phase neither Pending, Running nor Unknown) beyond
   ``terminated_pod_gc_threshold`` (``--terminated-pod-gc-threshold``, 12500;
   0 turns the pass off) are deleted, evicted ones first, then oldest
   ``creationTimestamp`` first, names breaking ties;
2. terminating pods on a node that is not Ready and carries the
   ``node.kubernetes.io/out-of-service`` taint (NodeOutOfServiceVolumeDetach)
   are deleted;
3. orphans, pods bound to a node the cache does not hold, are deleted with a
   ``DisruptionTarget`` condition (reason ``DeletionByPodGC``) once the node
   is still missing ``quarantine_time`` (40 s) later and a live GET agrees;
4. terminating pods no node was ever assigned are deleted.

Each deletion first moves a non-terminal pod to ``Failed`` (with the
condition, if any, and the pod's generation as ``status.observedGeneration``)
by a strategic merge patch of ``pods/status`` carrying the pod's uid, as
upstream's PatchPodStatus does, and then deletes it with grace period 0.

The quarantine is upstream's delaying queue of node names: each pass adds a
missing node after ``quarantine_time`` (an earlier pending add wins) and
drains whatever has come due. That queue is the controller's ``queue``;
``work`` runs the periodic pass instead of per-key workers. Upstream's
controller records no Events, so neither does this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import functools
import logging
from collections.abc import Iterable
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import pod_conditions
from kajitori.client import events, informer, rest, workqueue
from kajitori.controllers import base
from kajitori.machinery import times
from kajitori.machinery.patching import two_way
from kajitori.machinery.schema import SchemaNode

log = logging.getLogger(__name__)

Object = dict[str, Any]

# Upstream's gcCheckPeriod, quarantineTime and kube-controller-manager's
# --terminated-pod-gc-threshold default.
GC_CHECK_PERIOD = 20.0
QUARANTINE_TIME = 40.0
TERMINATED_POD_GC_THRESHOLD = 12500

TAINT_NODE_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
ORPHAN_CONDITION_REASON = "DeletionByPodGC"
ORPHAN_CONDITION_MESSAGE = "PodGC: node no longer exists"

# Deletions in flight at once within one pass (upstream starts one goroutine
# per pod; a bound keeps a pass over thousands of pods from flooding the API).
MAX_CONCURRENT_DELETES = 50


def is_terminated(pod: Object) -> bool:
    """Upstream's isPodTerminated: any phase but Pending, Running and Unknown (even none)."""
    return (pod.get("status") or {}).get("phase") not in ("Pending", "Running", "Unknown")


def is_terminating(pod: Object) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def node_name(pod: Object) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def is_evicted(pod: Object) -> bool:
    """The kubelet's eviction manager's mark: phase Failed, reason Evicted."""
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def deletion_order(pod: Object) -> tuple[bool, datetime.datetime, str]:
    """Upstream's byEvictionAndCreationTimestamp: evicted first, then oldest, then by name."""
    meta = pod.get("metadata") or {}
    created = times.parse_time(meta.get("creationTimestamp")) or datetime.datetime.min.replace(
        tzinfo=datetime.UTC
    )
    return (not is_evicted(pod), created, str(meta.get("name") or ""))


def is_node_ready(node: Object) -> bool:
    """Upstream's IsNodeReady: a Ready condition with status True."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or ()
    )


def is_out_of_service(node: Object) -> bool:
    """Not Ready and tainted ``node.kubernetes.io/out-of-service`` (any value or effect)."""
    taints = (node.get("spec") or {}).get("taints") or ()
    return not is_node_ready(node) and any(
        t.get("key") == TAINT_NODE_OUT_OF_SERVICE for t in taints
    )


def orphan_condition(pod: Object) -> Object:
    """The ``DisruptionTarget`` condition an orphan gets, naming the pod's generation."""
    condition: Object = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": ORPHAN_CONDITION_REASON,
        "message": ORPHAN_CONDITION_MESSAGE,
    }
    return pod_conditions.observe(condition, pod)


def with_condition(conditions: Iterable[Object], condition: Object, now: str) -> list[Object]:
    """Upstream's UpdatePodCondition: replace or append ``condition`` by type.

    Its ``lastTransitionTime`` is ``now``, unless a condition of that type
    with the same status was there, whose transition time it keeps.
    """
    result = [copy.deepcopy(c) for c in conditions]
    new = {**condition, "lastTransitionTime": now}
    for index, old in enumerate(result):
        if old.get("type") == condition.get("type"):
            if old.get("status") == condition.get("status"):
                new["lastTransitionTime"] = old.get("lastTransitionTime")
            result[index] = new
            return result
    result.append(new)
    return result


def failed_status(pod: Object, condition: Object | None, *, now: str) -> Object:
    """The status a non-terminal pod is moved to before PodGC deletes it."""
    status = copy.deepcopy(pod.get("status") or {})
    status["phase"] = "Failed"
    generation = pod_conditions.observed_generation(pod)
    if generation:
        status["observedGeneration"] = generation
    if condition is not None:
        status["conditions"] = with_condition(status.get("conditions") or (), condition, now)
    return status


@functools.cache
def _pod_schema() -> SchemaNode | None:
    return definitions.schema_for("", "v1", "Pod")


def status_patch(pod: Object, new_status: Object) -> Object:
    """Upstream's PatchPodStatus body: the two-way strategic merge patch, plus the pod's uid."""
    diff = two_way.create_two_way_merge_patch(
        {"status": pod.get("status") or {}}, {"status": new_status}, _pod_schema()
    )
    diff["metadata"] = {"uid": pod["metadata"]["uid"]}
    return diff


class PodGCController(base.QueueController[str]):
    """Deletes terminated, orphaned and stuck terminating pods every ``gc_check_period``.

    The periods and the threshold are constructor options (upstream's
    NewPodGCInternal takes the periods for its integration tests).
    """

    name = "pod-garbage-collector"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder | None = None,
        terminated_pod_gc_threshold: int = TERMINATED_POD_GC_THRESHOLD,
        gc_check_period: float = GC_CHECK_PERIOD,
        quarantine_time: float = QUARANTINE_TIME,
    ) -> None:
        super().__init__(queue_name="orphaned_pods_nodes")
        self.client = client
        self.terminated_pod_gc_threshold = terminated_pod_gc_threshold
        self.gc_check_period = gc_check_period
        self.quarantine_time = quarantine_time
        self.pods = self.watch(informers.informer(rest.PODS))
        self.nodes = self.watch(informers.informer(rest.NODES))
        self._stopped = asyncio.Event()

    async def work(self, workers: int) -> None:
        """Upstream's wait.UntilWithContext(gc, gcCheckPeriod): a pass, then a pause."""
        while not self._stopped.is_set():
            try:
                await self.gc()
            except Exception:
                log.exception("%s: garbage collection pass failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.gc_check_period)

    def shut_down(self) -> None:
        super().shut_down()
        self._stopped.set()

    async def gc(self) -> None:
        """One pass over the cached pods and nodes."""
        pods = self.pods.indexer.list()
        nodes = self.nodes.indexer.list()
        if self.terminated_pod_gc_threshold > 0:
            await self.gc_terminated(pods)
        await self.gc_terminating(pods)
        await self.gc_orphaned(pods, nodes)
        await self.gc_unscheduled_terminating(pods)

    async def gc_terminated(self, pods: list[Object]) -> None:
        terminated = [p for p in pods if is_terminated(p)]
        excess = len(terminated) - self.terminated_pod_gc_threshold
        if excess <= 0:
            return
        log.info("%s: garbage collecting %d terminated pods", self.name, excess)
        await self._delete_all(sorted(terminated, key=deletion_order)[:excess])

    async def gc_terminating(self, pods: list[Object]) -> None:
        doomed = []
        for pod in pods:
            if not is_terminating(pod):
                continue
            node = self.nodes.indexer.get(node_name(pod))
            if node is None:
                # Upstream logs the failed lister Get and leaves the pod to the other passes.
                continue
            if is_out_of_service(node):
                doomed.append(pod)
        if doomed:
            log.info(
                "%s: garbage collecting %d terminating pods on out-of-service nodes",
                self.name,
                len(doomed),
            )
            await self._delete_all(sorted(doomed, key=deletion_order))

    async def gc_orphaned(self, pods: list[Object], nodes: list[Object]) -> None:
        existing = {n["metadata"]["name"] for n in nodes}
        for pod in pods:
            name = node_name(pod)
            if name and name not in existing:
                self.queue.add_after(name, self.quarantine_time)
        deleted = await self._discover_deleted_nodes(existing)
        for pod in pods:
            if node_name(pod) not in deleted:
                continue
            log.info(
                "%s: pod %s is bound to node %s, which no longer exists: deleting it",
                self.name,
                informer.meta_namespace_key(pod),
                node_name(pod),
            )
            await self._delete_quietly(pod, orphan_condition(pod))

    async def _discover_deleted_nodes(self, existing: set[str]) -> set[str]:
        """The quarantined node names now due that a live GET still cannot find."""
        deleted: set[str] = set()
        while len(self.queue) > 0:
            try:
                name = await self.queue.get()
            except workqueue.ShutDown:
                return set()
            try:
                if name not in existing and not await self._node_exists(name):
                    deleted.add(name)
            except rest.ApiError as exc:
                # A later pass quarantines the node again if its pods still name it.
                log.warning("%s: getting node %s failed: %s", self.name, name, exc)
            finally:
                self.queue.done(name)
        return deleted

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get(rest.NODES, name)
        except rest.ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def gc_unscheduled_terminating(self, pods: list[Object]) -> None:
        for pod in pods:
            if not is_terminating(pod) or node_name(pod):
                continue
            log.info(
                "%s: pod %s is terminating but was never scheduled: deleting it",
                self.name,
                informer.meta_namespace_key(pod),
            )
            await self._delete_quietly(pod)

    async def _delete_all(self, pods: list[Object]) -> None:
        limit = asyncio.Semaphore(MAX_CONCURRENT_DELETES)

        async def one(pod: Object) -> None:
            async with limit:
                await self._delete_quietly(pod)

        await asyncio.gather(*(one(pod) for pod in pods))

    async def _delete_quietly(self, pod: Object, condition: Object | None = None) -> None:
        """Fail and force-delete ``pod``; an error is logged and the next pass tries again."""
        try:
            await self.mark_failed_and_delete(pod, condition)
        except rest.ApiError as exc:
            if not exc.not_found:
                log.warning(
                    "%s: deleting pod %s failed: %s",
                    self.name,
                    informer.meta_namespace_key(pod),
                    exc,
                )

    async def mark_failed_and_delete(self, pod: Object, condition: Object | None = None) -> None:
        """Upstream's markFailedAndDeletePodWithCondition.

        A pod not yet Succeeded or Failed is patched to Failed first: an
        orphan has no kubelet left to do it, and a Job counts a pod by its
        terminal phase. Then it is deleted at once (grace period 0).
        """
        meta = pod["metadata"]
        log.info("%s: force deleting pod %s", self.name, informer.meta_namespace_key(pod))
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            new_status = failed_status(pod, condition, now=times.now_rfc3339())
            await self.client.patch(
                rest.PODS,
                meta["name"],
                status_patch(pod, new_status),
                namespace=meta["namespace"],
                patch_type="strategic",
                subresource="status",
            )
        await self.client.delete(
            rest.PODS, meta["name"], namespace=meta["namespace"], grace_period_seconds=0
        )
