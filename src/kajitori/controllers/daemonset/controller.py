"""The DaemonSet controller: one pod of a DaemonSet on every node that should run it.

Mirrors upstream's pkg/controller/daemon (daemon_controller.go, update.go).
Handlers only enqueue DaemonSet keys: pods and ControllerRevisions by their
controller (or, for orphans, every DaemonSet selecting them), nodes by the
DaemonSets whose answer to ``placement.should_run`` the add, change or
removal affects. A sync of one key:

1. read the DaemonSet from the cache (gone → forget its expectations); a
   selector that selects everything gets a ``SelectingAll`` warning and
   nothing else; a DaemonSet being deleted is left to the garbage collector;
2. construct its history (``revisions.Revisions.construct``): the current
   ControllerRevision's ``controller-revision-hash`` labels new pods;
3. claim its pods (adopt matching orphans, release mismatches) and group
   them by target node;
4. while earlier creates and deletes are still unobserved, only refresh the
   status (without ``observedGeneration``); otherwise
5. manage (``planning.plan_manage``): create pods for nodes that need one,
   unbound with node affinity ``metadata.name In [node]`` so the scheduler
   binds them, in slow-start batches of at most ``burst_replicas``; delete
   surplus, finished and misplaced pods (Failed ones under a per-node
   backoff, with a ``FailedDaemonPod`` event);
6. when that changed nothing, roll out a new template under RollingUpdate
   (``planning.plan_rolling_update``); OnDelete waits for users to delete;
7. delete old revisions beyond ``revisionHistoryLimit`` that no pod runs;
8. write the status counters and ``observedGeneration``.

The pods are claimed once per sync and that snapshot serves every step; any
pod created or deleted in step 5 is awaited through expectations before step
6 acts, exactly as upstream, whose steps re-read the same lagging cache.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base, replicaset
from kajitori.controllers.common import controller_ref, expectations, pod_control, pod_util
from kajitori.controllers.daemonset import placement, planning, revisions
from kajitori.machinery import labels

log = logging.getLogger(__name__)

Object = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "DaemonSet"
# Upstream's daemon controller BurstReplicas and SlowStartInitialBatchSize.
BURST_REPLICAS = 250
SLOW_START_INITIAL_BATCH = 1
# Upstream's failedPodsBackoff: flowcontrol.NewBackOff(1s, 15min).
FAILED_POD_BACKOFF = (1.0, 900.0)


@dataclasses.dataclass(slots=True)
class _Entry:
    delay: float
    updated: float


class Backoff:
    """Per-key exponential backoff (client-go's flowcontrol.Backoff, as the controller uses it)."""

    def __init__(
        self, initial: float, maximum: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def in_backoff(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and self.clock() - entry.updated < entry.delay

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def next(self, key: str) -> None:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.updated > 2 * self.maximum:
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.updated = now


class DaemonSetController(base.QueueController[str]):
    """Reconciles DaemonSets with their pods on the cluster's nodes; ``run`` until ``shut_down``."""

    name = "daemonset"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        pod_control: pod_control.PodControl | None = None,
        burst_replicas: int = BURST_REPLICAS,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.pod_control = pod_control or _default_pod_control(client, recorder)
        self.burst_replicas = burst_replicas
        self.expectations = expectations.Expectations()
        self.failed_pods_backoff = Backoff(*FAILED_POD_BACKOFF)
        self.ds_informer = self.watch(informers.informer(rest.DAEMONSETS), on_change=self.enqueue)
        self.history_informer = self.watch(
            informers.informer(rest.CONTROLLERREVISIONS),
            on_add=self._add_history,
            on_update=self._update_history,
            on_delete=self._delete_history,
        )
        self.pod_informer = self.watch(
            informers.informer(rest.PODS),
            on_add=self._add_pod,
            on_update=self._update_pod,
            on_delete=self._delete_pod,
        )
        self.node_informer = self.watch(
            informers.informer(rest.NODES),
            on_add=self._add_node,
            on_update=self._update_node,
            on_delete=self._delete_node,
        )
        self.revisions = revisions.Revisions(
            client, self.history_informer.indexer, self.pod_informer.indexer
        )

    # ----- DaemonSet and ControllerRevision handlers --------------------------------------

    def _resolve(self, namespace: str, ref: Object | None) -> Object | None:
        return controller_ref.resolve_controller_ref(
            self.ds_informer.indexer, namespace, ref, kind=KIND
        )

    def _enqueue_owner_or_selecting(self, obj: Object) -> None:
        """Its controller if it has one; else every DaemonSet that might adopt it."""
        ref = controller_ref.controller_of(obj)
        if ref is not None:
            ds = self._resolve(obj["metadata"].get("namespace", ""), ref)
            if ds is not None:
                self.enqueue(ds)
            return
        for ds in controller_ref.owners_selecting(self.ds_informer.indexer, obj):
            self.enqueue(ds)

    def _add_history(self, revision: Object) -> None:
        if controller_ref.is_being_deleted(revision):
            self._delete_history(revision)
            return
        self._enqueue_owner_or_selecting(revision)

    def _update_history(self, old: Object, new: Object) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return
        old_ref = controller_ref.controller_of(old)
        if old_ref is not None and old_ref != controller_ref.controller_of(new):
            ds = self._resolve(old_meta.get("namespace", ""), old_ref)
            if ds is not None:
                self.enqueue(ds)
        self._enqueue_owner_or_selecting(new)

    def _delete_history(self, revision: Object) -> None:
        namespace = (revision.get("metadata") or {}).get("namespace", "")
        ds = self._resolve(namespace, controller_ref.controller_of(revision))
        if ds is not None:
            self.enqueue(ds)

    # ----- pod handlers ------------------------------------------------------------------

    def _add_pod(self, pod: Object) -> None:
        if controller_ref.is_being_deleted(pod):
            # After a restart a pod may first be seen already deleting: not a creation.
            self._delete_pod(pod)
            return
        ref = controller_ref.controller_of(pod)
        if ref is None:
            self._enqueue_owner_or_selecting(pod)
            return
        ds = self._resolve(pod["metadata"].get("namespace", ""), ref)
        if ds is not None:
            key = informer.meta_namespace_key(ds)
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _update_pod(self, old: Object, new: Object) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return
        if new_meta.get("deletionTimestamp"):
            # Graceful deletion: replace the pod now rather than when it is finally gone.
            self._delete_pod(new)
            return
        namespace = new_meta.get("namespace", "")
        old_ref, new_ref = controller_ref.controller_of(old), controller_ref.controller_of(new)
        if old_ref is not None and old_ref != new_ref:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self.enqueue(previous)
        if new_ref is not None:
            ds = self._resolve(namespace, new_ref)
            if ds is not None:
                self.enqueue(ds)
                self._enqueue_when_available(ds, old, new)
            return
        if old_meta.get("labels") != new_meta.get("labels") or old_ref != new_ref:
            self._enqueue_owner_or_selecting(new)

    def _enqueue_when_available(self, ds: Object, old: Object, new: Object) -> None:
        # Becoming available minReadySeconds after Ready raises no event: look
        # again then (upstream adds a second against clock skew).
        min_ready = planning.min_ready_seconds(ds)
        if min_ready > 0 and not pod_util.is_ready(old) and pod_util.is_ready(new):
            self.queue.add_after(informer.meta_namespace_key(ds), min_ready + 1)

    def _delete_pod(self, pod: Object) -> None:
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        ds = self._resolve(namespace, controller_ref.controller_of(pod))
        if ds is None:
            return
        key = informer.meta_namespace_key(ds)
        self.expectations.deletion_observed(key, informer.meta_namespace_key(pod))
        self.queue.add(key)

    # ----- node handlers --------------------------------------------------------------------

    def _add_node(self, node: Object) -> None:
        for ds in self.ds_informer.indexer.list():
            if placement.should_run(node, ds).should_run:
                self.enqueue(ds)

    def _update_node(self, old: Object, new: Object) -> None:
        if placement.only_heartbeat_changed(old, new):
            return
        for ds in self.ds_informer.indexer.list():
            if placement.should_run(old, ds) != placement.should_run(new, ds):
                self.enqueue(ds)

    def _delete_node(self, node: Object) -> None:
        # Upstream waits for the pod garbage collector's deletes (or a resync);
        # looking at once keeps the counters right and removes unbound pods
        # that were meant for the node.
        for ds in self.ds_informer.indexer.list():
            if placement.should_run(node, ds).should_continue_running:
                self.enqueue(ds)

    # ----- sync --------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.ds_informer.indexer.get(key)
        if cached is None:
            self.expectations.delete(key)
            return
        ds = pod_util.with_kind(cached, api_version=API_VERSION, kind=KIND)
        selector = self._selector(ds)
        if selector is None or controller_ref.is_being_deleted(ds):
            # Being deleted: its revisions may already be gone, so its status
            # cannot be computed; the garbage collector removes the pods.
            return
        current, old = await self.revisions.construct(ds, selector)
        hash_ = current["metadata"]["labels"].get(placement.HASH_LABEL, "")
        nodes = self.node_informer.indexer.list()
        fits = {n["metadata"]["name"]: placement.should_run(n, ds) for n in nodes}
        pods = await self._claim_pods(ds, selector)
        if not self.expectations.satisfied(key):
            await self._update_status(ds, nodes, fits, pods, hash_, observe=False)
            return
        error: Exception | None = None
        try:
            await self._update_daemonset(key, ds, nodes, fits, pods, hash_, old)
        except Exception as exc:
            error = exc
        try:
            await self._update_status(ds, nodes, fits, pods, hash_, observe=True)
        except Exception:
            if error is None:
                raise
            log.exception("daemonset %s: status update failed after a sync error", key)
        if error is not None:
            raise error

    def _selector(self, ds: Object) -> labels.Selector | None:
        raw = (ds.get("spec") or {}).get("selector")
        if raw == {}:
            self.recorder.event(
                ds,
                "Warning",
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            )
            return None
        try:
            return labels.selector_from_label_selector(raw)
        except labels.SelectorError as exc:
            log.warning("daemonset %s has an invalid selector: %s", ds["metadata"]["name"], exc)
            return None

    async def _claim_pods(self, ds: Object, selector: labels.Selector) -> list[Object]:
        namespace = ds["metadata"].get("namespace", "")
        manager = controller_ref.manager_for(
            self.client, rest.DAEMONSETS, owner=ds, selector=selector
        )
        cached = self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        return await manager.claim(rest.PODS, cached)

    async def _update_daemonset(
        self,
        key: str,
        ds: Object,
        nodes: Sequence[Object],
        fits: dict[str, placement.Fit],
        pods: list[Object],
        hash_: str,
        old: list[Object],
    ) -> None:
        now = pod_util.now()
        node_pods = planning.group_by_node(pods, include_deleted_terminal=False)
        # Step 5: manage.
        plan = planning.plan_manage(ds, nodes, fits, node_pods, hash_=hash_, now=now)
        doomed = plan.delete + self._failed_pods_to_delete(ds, plan)
        self._record_succeeded(ds, plan)
        await self._sync_nodes(key, ds, doomed, plan.create, hash_)
        # Step 6: roll out, once manage's writes have all been observed.
        strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type")
        if self.expectations.satisfied(key) and strategy == "RollingUpdate":
            rolling = planning.plan_rolling_update(ds, nodes, fits, node_pods, hash_=hash_, now=now)
            await self._sync_nodes(key, ds, rolling.delete, rolling.create, hash_)
        # Step 7: history.
        await self.revisions.cleanup(ds, old, pods)

    def _failed_pods_to_delete(self, ds: Object, plan: planning.ManagePlan) -> list[str]:
        doomed: list[str] = []
        meta = ds["metadata"]
        observed = (ds.get("status") or {}).get("observedGeneration", 0)
        for node_name, pod in plan.failed:
            backoff_key = f"{meta['uid']}/{observed}/{node_name}"
            if self.failed_pods_backoff.in_backoff(backoff_key):
                self.queue.add_after(
                    informer.meta_namespace_key(ds), self.failed_pods_backoff.delay(backoff_key)
                )
                continue
            self.failed_pods_backoff.next(backoff_key)
            message = (
                f"Found failed daemon pod {meta['namespace']}/{pod['metadata']['name']} "
                f"on node {node_name}, will try to kill it"
            )
            self.recorder.event(ds, "Warning", "FailedDaemonPod", message)
            doomed.append(pod["metadata"]["name"])
        return doomed

    def _record_succeeded(self, ds: Object, plan: planning.ManagePlan) -> None:
        for node_name, pod in plan.succeeded:
            message = (
                f"Found succeeded daemon pod {ds['metadata']['namespace']}/"
                f"{pod['metadata']['name']} on node {node_name}, will try to delete it"
            )
            self.recorder.event(ds, "Normal", "SucceededDaemonPod", message)

    async def _sync_nodes(
        self, key: str, ds: Object, doomed: Sequence[str], nodes_needing: Sequence[str], hash_: str
    ) -> None:
        """Create pods for ``nodes_needing`` and delete ``doomed``, under expectations."""
        create = list(nodes_needing[: self.burst_replicas])
        delete = list(doomed[: self.burst_replicas])
        namespace = ds["metadata"].get("namespace", "")
        # Expect both before writing anything (upstream's SetExpectations).
        self.expectations.expect_creations(key, len(create))
        self.expectations.expect_deletions(key, [f"{namespace}/{name}" for name in delete])
        errors = await self._create_pods(key, ds, create, hash_)
        errors += await self._delete_pods(key, ds, delete)
        if errors:
            raise errors[0]

    async def _create_pods(
        self, key: str, ds: Object, nodes: Sequence[str], hash_: str
    ) -> list[BaseException]:
        namespace = ds["metadata"].get("namespace", "")
        template = placement.pod_template(ds, hash_)
        ref = controller_ref.owner_reference(ds, api_version=API_VERSION, kind=KIND)
        errors: list[BaseException] = []
        position = 0
        for size in replicaset.slow_start_batches(len(nodes), SLOW_START_INITIAL_BATCH):
            batch = nodes[position : position + size]
            position += size
            results = await asyncio.gather(
                *(
                    self.pod_control.create_pod(
                        namespace, placement.pin_to_node(template, node), owner=ds, owner_ref=ref
                    )
                    for node in batch
                ),
                return_exceptions=True,
            )
            failed = [
                r
                for r in results
                if isinstance(r, BaseException) and not pod_control.namespace_terminating(r)
            ]
            for _ in failed:
                self.expectations.lower_creations(key)
            errors.extend(failed)
            if failed and position < len(nodes):
                # Slow start: the rest would likely fail the same way; retry later.
                self.expectations.lower_creations(key, len(nodes) - position)
                break
        return errors

    async def _delete_pods(self, key: str, ds: Object, names: Sequence[str]) -> list[BaseException]:
        namespace = ds["metadata"].get("namespace", "")
        results = await asyncio.gather(
            *(self.pod_control.delete_pod(namespace, name, owner=ds) for name in names),
            return_exceptions=True,
        )
        errors: list[BaseException] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key, f"{namespace}/{name}")
                if not rest.is_not_found(result):
                    errors.append(result)
        return errors

    async def _update_status(
        self,
        ds: Object,
        nodes: Sequence[Object],
        fits: dict[str, placement.Fit],
        pods: list[Object],
        hash_: str,
        *,
        observe: bool,
    ) -> None:
        node_pods = planning.group_by_node(pods, include_deleted_terminal=True)
        counts = planning.calculate_status(
            ds, nodes, fits, node_pods, hash_=hash_, now=pod_util.now()
        )
        await self._store_status(ds, counts, observe=observe)
        min_ready = planning.min_ready_seconds(ds)
        if min_ready > 0 and counts["numberReady"] != counts["numberAvailable"]:
            self.queue.add_after(informer.meta_namespace_key(ds), min_ready)

    async def _store_status(self, ds: Object, counts: dict[str, int], *, observe: bool) -> None:
        """Write the counters unless unchanged; one retry on a fresh copy, as upstream."""
        status = ds.get("status") or {}
        generation = ds["metadata"].get("generation", 0)
        unchanged = all(int(status.get(k) or 0) == v for k, v in counts.items())
        if unchanged and int(status.get("observedGeneration") or 0) >= generation:
            return
        target = ds
        for attempt in range(2):
            new_status = {**(target.get("status") or {}), **counts}
            if observe:
                new_status["observedGeneration"] = generation
            try:
                await self.client.update_status(rest.DAEMONSETS, {**target, "status": new_status})
                return
            except rest.ApiError:
                if attempt:
                    raise
            meta = ds["metadata"]
            target = await self.client.get(
                rest.DAEMONSETS, meta["name"], namespace=meta["namespace"]
            )


def _default_pod_control(
    client: rest.Client, recorder: events.EventRecorder
) -> pod_control.PodControl:
    return pod_control.RealPodControl(client, recorder)
