"""The ReplicaSet controller: keeps ``spec.replicas`` pods matching a ReplicaSet's selector.

Mirrors upstream's pkg/controller/replicaset (replica_set.go). A sync of one
ReplicaSet key:

1. read the ReplicaSet from the informer cache (gone → forget its expectations);
2. take the namespace's active pods from the pod cache and claim them
   (``common.controller_ref``): adopt matching orphans, release owned pods
   that stopped matching. When there is nothing to adopt or release, the
   claim is skipped and the owned pods are only counted: the pod cache
   keeps a tally of each ReplicaSet's active pods by readiness and labels
   (``OWNED_TALLY``), so a sync of a 10,000-pod ReplicaSet does not walk
   10,000 pods after every pod update;
3. if the expectations for this key are satisfied (the cache has seen our
   previous creates and deletes) and the ReplicaSet is not being deleted,
   create or delete the difference (``manage_replicas``), at most
   ``burst_replicas`` per sync, creating in slow-start batches 1, 2, 4, ...
   so that a failing template does not produce hundreds of errors;
4. compute the status (``calculate_status``) and write it when it changed,
   with ``observedGeneration`` and the ``ReplicaFailure`` condition while
   creating or deleting fails;
5. when every pod is ready but some are not yet available
   (``minReadySeconds``), look again once they can be.

Surplus pods go in upstream's order (``pods_to_delete``): unscheduled before
scheduled, Pending before Unknown before Running, not ready before ready,
lower ``controller.kubernetes.io/pod-deletion-cost`` first, pods sharing a
node with more of their siblings first, more recently ready first, more
restarts first, newer first. Recency compares log2 buckets of age, as
upstream's LogarithmicScaleDown, with the UID breaking ties inside a bucket.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import controller_ref, expectations, pod_control, pod_util
from kajitori.machinery import labels, times

log = logging.getLogger(__name__)

Object = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "ReplicaSet"
# Upstream's BurstReplicas and SlowStartInitialBatchSize.
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
# Pods by "<namespace>/<controller uid>" ("<namespace>/" for orphans): the only
# pods a ReplicaSet can claim, found without walking its whole namespace.
CONTROLLER_INDEX = "replicaset.controllerUID"
# Active pods by the same key, counted by (ready, labels): ``owned_summary``.
OWNED_TALLY = "replicaset.ownedPods"

PodSummary = tuple[bool, frozenset[tuple[str, str]]]


def controller_key(namespace: str, uid: str) -> str:
    """A ``CONTROLLER_INDEX`` value: a controller's pods (uid "": the namespace's orphans)."""
    return f"{namespace}/{uid}"


def index_by_controller(pod: Object) -> list[str]:
    ref = controller_ref.controller_of(pod)
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    return [controller_key(namespace, (ref or {}).get("uid", ""))]


def _owned_key(rs: Object) -> str:
    return controller_key(rs["metadata"].get("namespace", ""), rs["metadata"].get("uid", ""))


def _orphans_key(rs: Object) -> str:
    return controller_key(rs["metadata"].get("namespace", ""), "")


def owned_summary(pod: Object) -> PodSummary | None:
    """What the tally counts an active pod as: its readiness and its labels."""
    if not pod_util.is_active(pod):
        return None
    pod_labels = (pod.get("metadata") or {}).get("labels") or {}
    return pod_util.is_ready(pod), frozenset(pod_labels.items())


# ----- pure planning ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ManageError:
    """Why creating or deleting pods failed, and which (``diff`` < 0: creating)."""

    diff: int
    message: str


def desired_replicas(rs: Object) -> int:
    replicas = (rs.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def _deletion_cost(pod: Object) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _restarts(pod: Object) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _log_bucket(when: datetime.datetime | None, now: datetime.datetime) -> int:
    if when is None:
        return -1
    nanos = (now - when).total_seconds() * 1e9
    return int(math.log2(nanos)) if nanos > 0 else -1


def _compare_recency(
    t1: datetime.datetime | None,
    t2: datetime.datetime | None,
    uids: tuple[str, str],
    now: datetime.datetime,
) -> int:
    """Negative when the first time is more recent (deleted first); 0 when equal."""
    if t1 == t2:
        return 0
    if t1 is None or t2 is None:
        # upstream's afterOrZero: a zero time counts as the most recent.
        return -1 if t1 is None else 1
    diff = _log_bucket(t1, now) - _log_bucket(t2, now)
    if diff == 0:
        return -1 if uids[0] < uids[1] else (1 if uids[0] > uids[1] else 0)
    return -1 if diff < 0 else 1


def _compare_for_deletion(
    a: tuple[Object, int], b: tuple[Object, int], *, now: datetime.datetime
) -> int:
    """Upstream's ActivePodsWithRanks.Less as a comparison: negative deletes ``a`` first."""
    (pa, rank_a), (pb, rank_b) = a, b
    keys = (
        (
            bool((pa.get("spec") or {}).get("nodeName")),
            bool((pb.get("spec") or {}).get("nodeName")),
        ),
        (_PHASE_RANK.get(_phase(pa), 1), _PHASE_RANK.get(_phase(pb), 1)),
        (pod_util.is_ready(pa), pod_util.is_ready(pb)),
        (_deletion_cost(pa), _deletion_cost(pb)),
        (-rank_a, -rank_b),
    )
    for left, right in keys:
        if left != right:
            return -1 if left < right else 1
    uids = (_uid(pa), _uid(pb))
    if pod_util.is_ready(pa) and pod_util.is_ready(pb):
        ready = _compare_recency(_ready_since(pa), _ready_since(pb), uids, now)
        if ready:
            return ready
    if _restarts(pa) != _restarts(pb):
        return -1 if _restarts(pa) > _restarts(pb) else 1
    return _compare_recency(_created(pa), _created(pb), uids, now)


def _phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _uid(pod: Object) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _ready_since(pod: Object) -> datetime.datetime | None:
    return times.parse_time((pod_util.ready_condition(pod) or {}).get("lastTransitionTime"))


def _created(pod: Object) -> datetime.datetime | None:
    return times.parse_time((pod.get("metadata") or {}).get("creationTimestamp"))


def pods_to_delete(
    pods: Sequence[Object],
    count: int,
    *,
    now: datetime.datetime,
    related: Sequence[Object] = (),
) -> list[Object]:
    """The ``count`` pods to delete first; ``related`` pods (siblings) rank colocation."""
    if count >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for pod in related or pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and pod_util.is_active(pod):
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)) for pod in pods]
    compare = functools.partial(_compare_for_deletion, now=now)
    ranked.sort(key=functools.cmp_to_key(compare))
    return [pod for pod, _ in ranked[:count]]


@dataclasses.dataclass(frozen=True, slots=True)
class PodCounts:
    """The counters of a ReplicaSet's status."""

    replicas: int
    fully_labeled: int
    ready: int
    available: int


def _template_labels(rs: Object) -> Object:
    template = (rs.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def _min_ready_seconds(rs: Object) -> int:
    return int((rs.get("spec") or {}).get("minReadySeconds") or 0)


def count_pods(rs: Object, pods: Sequence[Object], *, now: datetime.datetime) -> PodCounts:
    """Count ``pods`` (the ReplicaSet's active pods) as its status does."""
    template_labels = _template_labels(rs).items()
    min_ready = _min_ready_seconds(rs)
    fully_labeled = sum(
        1 for p in pods if template_labels <= ((p["metadata"].get("labels") or {}).items())
    )
    ready = [p for p in pods if pod_util.is_ready(p)]
    return PodCounts(
        replicas=len(pods),
        fully_labeled=fully_labeled,
        ready=len(ready),
        # Available is ready for minReadySeconds, so only ready pods are asked.
        available=len(ready)
        if min_ready <= 0
        else sum(1 for p in ready if pod_util.is_available(p, min_ready, now)),
    )


def tally_pods(pods: Sequence[Object]) -> dict[PodSummary, int]:
    """The tally ``owned_summary`` gives ``pods`` (the ReplicaSet's active pods)."""
    return collections.Counter(s for s in map(owned_summary, pods) if s is not None)


def count_tally(
    rs: Object,
    tally: Mapping[PodSummary, int],
    *,
    now: datetime.datetime,
    pods: Callable[[], Sequence[Object]],
) -> PodCounts:
    """``count_pods`` from the tally of ``owned_summary``; ``pods`` only for minReadySeconds."""
    template_labels = frozenset(_template_labels(rs).items())
    replicas = fully_labeled = ready = 0
    for summary, count in tally.items():
        is_ready, pod_labels = summary
        replicas += count
        ready += count if is_ready else 0
        fully_labeled += count if template_labels <= pod_labels else 0
    min_ready = _min_ready_seconds(rs)
    if min_ready > 0:
        return count_pods(rs, pods(), now=now)
    return PodCounts(replicas, fully_labeled, ready, ready)


def calculate_status(
    rs: Object, pods: Sequence[Object], *, now: datetime.datetime, error: ManageError | None
) -> Object:
    """The status ``pods`` give ``rs`` (``observedGeneration`` is set when it is written)."""
    return status_for(rs, count_pods(rs, pods, now=now), now=now, error=error)


def status_for(
    rs: Object, counts: PodCounts, *, now: datetime.datetime, error: ManageError | None
) -> Object:
    """The status ``counts`` give ``rs``, with its ``ReplicaFailure`` condition."""
    status: Object = {
        "replicas": counts.replicas,
        "fullyLabeledReplicas": counts.fully_labeled,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.available,
    }
    old = rs.get("status") or {}
    conditions = [dict(c) for c in old.get("conditions") or ()]
    failing = any(c.get("type") == "ReplicaFailure" for c in conditions)
    if error is not None and not failing:
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": times.format_time(now),
                "reason": "FailedCreate" if error.diff < 0 else "FailedDelete",
                "message": error.message,
            }
        )
    elif error is None and failing:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    if conditions:
        status["conditions"] = conditions
    if "observedGeneration" in old:
        status["observedGeneration"] = old["observedGeneration"]
    return status


def _status_changed(rs: Object, status: Object) -> bool:
    old = rs.get("status") or {}
    generation = (rs.get("metadata") or {}).get("generation", 0)
    fields = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    return (
        any(int(old.get(f) or 0) != int(status.get(f) or 0) for f in fields)
        or (old.get("conditions") or []) != (status.get("conditions") or [])
        or old.get("observedGeneration", 0) != generation
    )


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes for ``count`` creations: 1, 2, 4, ... (upstream's slowStartBatch)."""
    sizes: list[int] = []
    size, remaining = min(initial, count), count
    while remaining > 0:
        sizes.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return sizes


# ----- the controller -----------------------------------------------------------


class ReplicaSetController(base.QueueController[str]):
    """Reconciles ReplicaSets with their pods; ``run(workers)`` until ``shut_down``."""

    name = "replicaset"

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
        self.rs_informer = self.watch(
            informers.informer(rest.REPLICASETS),
            on_add=self.enqueue,
            on_update=lambda _, new: self.enqueue(new),
            on_delete=self._delete_rs,
        )
        self.pod_informer = informers.informer(rest.PODS)
        self.pod_informer.indexer.add_indexers({CONTROLLER_INDEX: index_by_controller})
        if not self.pod_informer.indexer.has_tally(OWNED_TALLY):
            self.pod_informer.indexer.add_tally(OWNED_TALLY, index_by_controller, owned_summary)
        self.watch(
            self.pod_informer,
            on_add=self._add_pod,
            on_update=self._update_pod,
            on_delete=self._delete_pod,
        )

    # ----- event handlers (enqueue keys only) ----------------------------------

    def _delete_rs(self, rs: Object) -> None:
        key = informer.meta_namespace_key(rs)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: Object | None) -> Object | None:
        return controller_ref.resolve_controller_ref(
            self.rs_informer.indexer, namespace, ref, kind=KIND
        )

    def _matching_rses(self, obj: Object) -> list[Object]:
        return controller_ref.owners_selecting(self.rs_informer.indexer, obj)

    def _add_pod(self, pod: Object) -> None:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._delete_pod(pod)
            return
        namespace = pod["metadata"].get("namespace", "")
        ref = controller_ref.controller_of(pod)
        if ref is not None:
            rs = self._resolve(namespace, ref)
            if rs is not None:
                key = informer.meta_namespace_key(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._matching_rses(pod):
            self.enqueue(rs)

    def _update_pod(self, old: Object, new: Object) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return
        labels_changed = old_meta.get("labels") != new_meta.get("labels")
        if new_meta.get("deletionTimestamp"):
            self._delete_pod(new)
            if labels_changed:
                self._delete_pod(old)
            return
        namespace = new_meta.get("namespace", "")
        old_ref, new_ref = controller_ref.controller_of(old), controller_ref.controller_of(new)
        ref_changed = old_ref != new_ref
        if ref_changed and old_ref is not None:
            rs = self._resolve(namespace, old_ref)
            if rs is not None:
                self.enqueue(rs)
        if new_ref is not None:
            rs = self._resolve(namespace, new_ref)
            if rs is not None:
                self.enqueue(rs)
                self._enqueue_when_available(rs, old, new)
            return
        if labels_changed or ref_changed:
            for rs in self._matching_rses(new):
                self.enqueue(rs)

    def _enqueue_when_available(self, rs: Object, old: Object, new: Object) -> None:
        # A pod that just became ready becomes available minReadySeconds later:
        # no event will say so, so look again then (upstream adds a second).
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and not pod_util.is_ready(old) and pod_util.is_ready(new):
            self.queue.add_after(informer.meta_namespace_key(rs), min_ready + 1)

    def _delete_pod(self, pod: Object) -> None:
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        rs = self._resolve(namespace, controller_ref.controller_of(pod))
        if rs is None:
            return
        key = informer.meta_namespace_key(rs)
        self.expectations.deletion_observed(key, informer.meta_namespace_key(pod))
        self.queue.add(key)

    # ----- sync ------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.rs_informer.indexer.get(key)
        if cached is None:
            self.expectations.delete(key)
            return
        rs = pod_util.with_kind(cached, api_version=API_VERSION, kind=KIND)
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = labels.selector_from_label_selector((rs.get("spec") or {}).get("selector"))
        except labels.SelectorError as exc:
            log.warning("replicaset %s has an invalid selector: %s", key, exc)
            return
        listed: list[Object] | None = None
        tally = self._tally_if_nothing_to_claim(rs, selector)
        if tally is None:
            listed = await self._claim_pods(rs, selector)
            tally = tally_pods(listed)

        def active_pods() -> list[Object]:
            return listed if listed is not None else self._owned_active(rs)

        error: ManageError | None = None
        if needs_sync and not controller_ref.is_being_deleted(rs):
            replicas = sum(tally.values())
            error = await self._manage_replicas(key, rs, replicas, active_pods)
        now = pod_util.now()
        counts = count_tally(rs, tally, now=now, pods=active_pods)
        updated = await self._update_status(rs, status_for(rs, counts, now=now, error=error))
        if error is not None:
            raise RuntimeError(error.message)
        self._requeue_for_availability(key, updated)

    def _tally_if_nothing_to_claim(
        self, rs: Object, selector: labels.Selector
    ) -> Mapping[PodSummary, int] | None:
        """The owned pods' tally when a claim would adopt and release nothing, else None.

        That is: every active owned pod's labels still match the selector and
        no active orphan of the namespace matches it.
        """
        indexer = self.pod_informer.indexer
        tally = cast(Mapping[PodSummary, int], indexer.tally(OWNED_TALLY, _owned_key(rs)))
        for _, pod_labels in tally:
            if not selector.matches(dict(pod_labels)):
                return None
        for orphan in self._active_pods(_orphans_key(rs)):
            if selector.matches(orphan["metadata"].get("labels")):
                return None
        return tally

    def _owned_active(self, rs: Object) -> list[Object]:
        return self._active_pods(_owned_key(rs))

    def _active_pods(self, controller: str) -> list[Object]:
        pods = self.pod_informer.indexer.by_index(CONTROLLER_INDEX, controller)
        return [pod for pod in pods if pod_util.is_active(pod)]

    async def _claim_pods(self, rs: Object, selector: labels.Selector) -> list[Object]:
        # Only its own pods and the namespace's orphans can be claimed; pods of
        # other controllers would be skipped by the claim anyway.
        candidates = self._owned_active(rs) + self._active_pods(_orphans_key(rs))
        manager = controller_ref.manager_for(
            self.client, rest.REPLICASETS, owner=rs, selector=selector
        )
        return await manager.claim(rest.PODS, candidates)

    async def _manage_replicas(
        self, key: str, rs: Object, replicas: int, pods: Callable[[], list[Object]]
    ) -> ManageError | None:
        """Create or delete the difference; ``pods`` lists the active ones, when deleting."""
        diff = replicas - desired_replicas(rs)
        if diff < 0:
            return await self._create_pods(key, rs, min(-diff, self.burst_replicas))
        if diff > 0:
            return await self._delete_pods(key, rs, pods(), min(diff, self.burst_replicas))
        return None

    async def _create_pods(self, key: str, rs: Object, count: int) -> ManageError | None:
        self.expectations.expect_creations(key, count)
        namespace = rs["metadata"].get("namespace", "")
        template = (rs.get("spec") or {}).get("template") or {}
        ref = controller_ref.owner_reference(rs, api_version=API_VERSION, kind=KIND)
        created, failure = 0, ""
        for size in slow_start_batches(count):
            results = await asyncio.gather(
                *(
                    self.pod_control.create_pod(namespace, template, owner=rs, owner_ref=ref)
                    for _ in range(size)
                ),
                return_exceptions=True,
            )
            errors = [
                r
                for r in results
                if isinstance(r, BaseException) and not pod_control.namespace_terminating(r)
            ]
            created += size - len(errors)
            if errors:
                failure = _message(errors[0])
                break
        if created < count:
            self.expectations.lower_creations(key, count - created)
        return ManageError(-count, failure) if failure else None

    async def _delete_pods(
        self, key: str, rs: Object, pods: list[Object], count: int
    ) -> ManageError | None:
        doomed = pods_to_delete(pods, count, now=pod_util.now())
        doomed_keys = [informer.meta_namespace_key(p) for p in doomed]
        self.expectations.expect_deletions(key, doomed_keys)
        namespace = rs["metadata"].get("namespace", "")
        results = await asyncio.gather(
            *(
                self.pod_control.delete_pod(namespace, p["metadata"]["name"], owner=rs)
                for p in doomed
            ),
            return_exceptions=True,
        )
        failure = ""
        for pod_key, result in zip(doomed_keys, results, strict=True):
            if isinstance(result, BaseException):
                # It will never be observed deleted by us; a pod already gone is fine.
                self.expectations.deletion_observed(key, pod_key)
                if not rest.is_not_found(result) and not failure:
                    failure = _message(result)
        return ManageError(count, failure) if failure else None

    async def _update_status(self, rs: Object, status: Object) -> Object:
        """Write ``status`` unless nothing changed; one retry on a conflict, as upstream."""
        if not _status_changed(rs, status):
            return rs
        for attempt in range(2):
            body = {
                **rs,
                "status": {**status, "observedGeneration": rs["metadata"].get("generation", 0)},
            }
            try:
                return await self.client.update_status(rest.REPLICASETS, body)
            except rest.ApiError as exc:
                if attempt or not exc.conflict:
                    raise
                meta = rs["metadata"]
                fresh = await self.client.get(
                    rest.REPLICASETS, meta["name"], namespace=meta["namespace"]
                )
                rs = pod_util.with_kind(fresh, api_version=API_VERSION, kind=KIND)
        return rs

    def _requeue_for_availability(self, key: str, rs: Object) -> None:
        spec, status = rs.get("spec") or {}, rs.get("status") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        replicas = desired_replicas(rs)
        ready = int(status.get("readyReplicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if min_ready > 0 and ready == replicas and available != replicas:
            self.queue.add_after(key, min_ready)


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, rest.ApiError) else str(exc)


def _default_pod_control(
    client: rest.Client, recorder: events.EventRecorder
) -> pod_control.PodControl:
    return pod_control.RealPodControl(client, recorder)
