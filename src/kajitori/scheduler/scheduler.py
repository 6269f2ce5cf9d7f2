"""kube-scheduler: assigns unscheduled pods to nodes, talking only to the API.

Mirrors pkg/scheduler (scheduler.go, schedule_one.go, eventhandlers.go).
Informers on pods and nodes feed the ``SchedulingQueue`` and a cache; one
task pops a pod at a time and runs a scheduling cycle:

1. the pod is re-read from the informer (gone, bound or deleting: dropped);
2. the snapshot is every node with its assigned pods, as the cache
   (``cache.py``) keeps it from informer events — including pods this
   scheduler has bound but the informer has not shown yet ("assumed"
   pods), so two quick decisions never double-book a node;
3. ``schedule_pod`` (pure) runs PreFilter, Filter and Score over it; from
   100 nodes on, Filter stops after ``num_feasible_nodes_to_find`` fits
   and each cycle starts where the last one stopped (upstream's
   percentageOfNodesToScore and nextStartNodeIndex); a node's weighted
   score total is remembered until its pods change, when every scorer
   allows it (decision 0052), by its position in the snapshot, as is
   whether it has room for the pod (decision 0077);
4. on a fit the pod is assumed and bound (``POST pods/{name}/binding``;
   the API server sets ``PodScheduled=True``) and a ``Scheduled`` event
   says ``Successfully assigned ns/name to node``. The binding runs in a
   task of its own (at most ``MAX_CONCURRENT_BINDS`` at once), as
   upstream's binding cycle does, so the loop goes on with the next pod;
   a pod whose PersistentVolumeClaims still have to bind first goes
   through VolumeBinding's Reserve and PreBind there (PreBind waits for
   the claims to bind);
5. when nothing fits, DefaultPreemption looks for lower-priority victims:
   they are marked (``DisruptionTarget``) and deleted and the pod's
   ``status.nominatedNodeName`` set; either way the pod gets a
   ``FailedScheduling`` event and ``PodScheduled=False`` with reason
   ``Unschedulable`` and upstream's diagnosis message, and waits in the
   unschedulable queue until the cluster changes. Both conditions carry
   the generation of the pod they are about, as this scheduler saw it, as
   ``observedGeneration`` (KEP-5067).

Cluster changes that may make a waiting pod fit (a node added or updated,
an assigned pod added, updated or deleted) move every unschedulable pod
back. Pods whose ``spec.schedulerName`` is another scheduler, that are
being deleted or that still have scheduling gates are not this
scheduler's business.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from kajitori.api.core_v1 import pod_conditions
from kajitori.client import events, informer, rest
from kajitori.machinery import times
from kajitori.scheduler import cache as scheduler_cache
from kajitori.scheduler import framework
from kajitori.scheduler import queue as scheduling_queue
from kajitori.scheduler.plugins import (
    default_binder,
    default_preemption,
    dynamic_resources,
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
    volume_binding,
)

log = logging.getLogger(__name__)

Object = dict[str, Any]

COMPONENT = framework.DEFAULT_SCHEDULER_NAME
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
FLUSH_INTERVAL = 1.0
# Upstream's minFeasibleNodesToFind and minFeasibleNodesPercentageToFind:
# in a large cluster a cycle stops filtering once it has found this many fits.
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
# Bindings in flight at once; the scheduling loop waits for a slot beyond this.
MAX_CONCURRENT_BINDS = 32


class NoNodesAvailableError(Exception):
    """The cluster has no nodes at all (upstream's ErrNoNodesAvailable)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """The plugins of one scheduling profile, by extension point."""

    pre_filters: Sequence[framework.PreFilterPlugin]
    filters: Sequence[framework.FilterPlugin]
    scorers: Sequence[framework.ScorePlugin]


def default_profile(
    volumes: volume_binding.VolumeBinding | None = None,
    devices: dynamic_resources.DynamicResources | None = None,
) -> Profile:
    """Upstream's default plugin set, in its Filter order.

    VolumeBinding and DynamicResources need the cluster's claims, volumes,
    slices and classes, so they are in the profile only when given (the
    ``Scheduler`` builds them over its informers).
    """
    fit = node_resources_fit.NodeResourcesFit()
    affinity = node_affinity.NodeAffinity()
    taints = taint_toleration.TaintToleration()
    spread = pod_topology_spread.PodTopologySpread()
    pod_affinity = inter_pod_affinity.InterPodAffinity()
    ports = node_ports.NodePorts()
    volume_plugins = (volumes,) if volumes is not None else ()
    # Upstream's place for DynamicResources: after InterPodAffinity.
    device_plugins = (devices,) if devices is not None else ()
    unschedulable, name = node_unschedulable.NodeUnschedulable(), node_name.NodeName()
    return Profile(
        # The first three have no PreFilter upstream: theirs only skip a Filter
        # that would pass every node (none cordoned, none tainted, no nodeName).
        pre_filters=(
            unschedulable,
            name,
            taints,
            affinity,
            ports,
            fit,
            *volume_plugins,
            spread,
            pod_affinity,
            *device_plugins,
        ),
        filters=(
            unschedulable,
            name,
            taints,
            affinity,
            ports,
            fit,
            *volume_plugins,
            spread,
            pod_affinity,
            *device_plugins,
        ),
        scorers=(
            taints,
            affinity,
            fit,
            node_resources_fit.BalancedAllocation(),
            spread,
            pod_affinity,
        ),
    )


# --- the pure decision ------------------------------------------------------------


def num_feasible_nodes_to_find(num_nodes: int) -> int:
    """Upstream's adaptive percentageOfNodesToScore: 50% less 1% per 125 nodes, at least 5%.

    Small clusters (under 100 nodes) are searched whole; 1,000 nodes stop at 420 fits.
    """
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    percentage = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def find_feasible(
    pod: Object,
    nodes: list[framework.NodeInfo],
    profile: Profile,
    state: framework.CycleState,
    *,
    limit: int = 0,
    start: int = 0,
) -> tuple[list[framework.NodeInfo], framework.Diagnosis]:
    """PreFilter then Filter: the nodes that fit and why the others do not.

    With ``limit`` the search stops at that many fits, and it begins at node
    index ``start`` (wrapping), so that successive cycles look at different
    nodes first, as upstream's nextStartNodeIndex does.
    """
    diagnosis = framework.Diagnosis()
    skipped: set[int] = set()
    for plugin in profile.pre_filters:
        status = plugin.pre_filter(state, pod, nodes)
        if status.code == framework.Code.SKIP:
            # As upstream: a plugin that skips at PreFilter is not run at Filter.
            skipped.add(id(plugin))
        elif status.code == framework.Code.ERROR:
            reason = ", ".join(status.reasons)
            raise framework.PluginError(f'running PreFilter plugin "{plugin.name}": {reason}')
        elif status.rejected:
            diagnosis.pre_filter_message = ", ".join(status.reasons)
            diagnosis.node_statuses = {n.name: status for n in nodes}
            return [], diagnosis
    active = [p for p in profile.filters if id(p) not in skipped]
    filters = [(p.filter, p.name) for p in active]
    limit = limit or len(nodes)
    batched = [getattr(p, "filter_many", None) for p in active]
    if active and all(batched):
        ordered: list[framework.NodeInfo] | _Rotated
        if isinstance(nodes, framework.NodeList) and not nodes.retired and 0 <= start < len(nodes):
            # Snapshot positions let a plugin answer from what it remembers of each node,
            # and the runs are cut from the snapshot itself (no rotated copy of it all).
            batched = [
                _windowed(p, nodes, start) or b for p, b in zip(active, batched, strict=True)
            ]
            ordered = _Rotated(nodes, start)
        else:
            ordered = nodes[start:] + nodes[:start] if start else nodes
        feasible = _filter_batched(pod, ordered, batched, filters, state, diagnosis, limit)
        if feasible is not None:
            return feasible, diagnosis
    ordered = nodes[start:] + nodes[:start] if start else nodes
    feasible = []
    for info in ordered:
        if _filter_one(pod, info, filters, state, diagnosis):
            feasible.append(info)
            if len(feasible) >= limit:
                break
    return feasible, diagnosis


_Filters = list[tuple[Any, str]]


class _Rotated:
    """``nodes[start:] + nodes[:start]`` for ``len`` and slices, without building it."""

    __slots__ = ("nodes", "start")

    def __init__(self, nodes: list[framework.NodeInfo], start: int) -> None:
        self.nodes, self.start = nodes, start

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, run: slice) -> list[framework.NodeInfo]:
        nodes, size = self.nodes, len(self.nodes)
        begin, end, _ = run.indices(size)
        if end <= begin:
            return []
        begin, end = begin + self.start, end + self.start
        if begin >= size:
            return nodes[begin - size : end - size]
        return nodes[begin:end] if end <= size else nodes[begin:] + nodes[: end - size]


def _windowed(plugin: Any, nodes: framework.NodeList, start: int) -> Any:
    """``plugin.filter_window`` as a ``filter_many`` of runs of ``nodes[start:] + nodes[:start]``
    (each run follows the last; the first asks whether the plugin declines); None without one."""
    filter_window = getattr(plugin, "filter_window", None)
    if filter_window is None:
        return None
    position = start

    def filter_many(
        state: framework.CycleState, pod: Object, run: list[framework.NodeInfo]
    ) -> list[bool] | None:
        nonlocal position
        fits: list[bool] | None = filter_window(state, pod, nodes, position, len(run))
        position = (position + len(run)) % len(nodes)
        return fits

    return filter_many


def _filter_one(
    pod: Object,
    info: framework.NodeInfo,
    filters: _Filters,
    state: framework.CycleState,
    diagnosis: framework.Diagnosis,
) -> bool:
    """Run the Filters on one node; False (and its status recorded) when one rejects it."""
    success = framework.SUCCESS
    for check, plugin_name in filters:
        status = check(state, pod, info)
        if status is not success and status.code == framework.Code.ERROR:
            reason = ", ".join(status.reasons)
            raise framework.PluginError(f'running "{plugin_name}" filter plugin: {reason}')
        if status is not success and not status.ok:
            diagnosis.node_statuses[info.name] = dataclasses.replace(status, plugin=plugin_name)
            return False
    return True


def _filter_batched(
    pod: Object,
    ordered: list[framework.NodeInfo] | _Rotated,
    batched: list[Any],
    filters: _Filters,
    state: framework.CycleState,
    diagnosis: framework.Diagnosis,
    limit: int,
) -> list[framework.NodeInfo] | None:
    """Filter with each plugin's ``filter_many`` over runs of nodes; None if one declines.

    Each run is as long as the fits still wanted, so the search stops at the
    same node as the one-by-one loop; a node some plugin rejects goes through
    the Filters one by one, which records its status (the reasons) as before.
    """
    # Whether a plugin declines depends on the pod alone: asked with no nodes, it says.
    if any(filter_many(state, pod, []) is None for filter_many in batched):
        return None
    feasible: list[framework.NodeInfo] = []
    position = 0
    while position < len(ordered) and len(feasible) < limit:
        run = ordered[position : position + limit - len(feasible)]
        masks: list[list[bool]] = [filter_many(state, pod, run) for filter_many in batched]
        mask = masks[0] if len(masks) == 1 else [all(fits) for fits in zip(*masks, strict=True)]
        if all(mask):
            feasible.extend(run)
        else:
            for info, fits in zip(run, mask, strict=True):
                if fits or _filter_one(pod, info, filters, state, diagnosis):
                    feasible.append(info)
        position += len(run)
    return feasible


def score_nodes(
    pod: Object, feasible: list[framework.NodeInfo], profile: Profile, state: framework.CycleState
) -> dict[str, int]:
    """Each plugin's normalized score times its weight, summed per node."""
    names = [info.name for info in feasible]
    return dict(zip(names, _score_totals(pod, feasible, profile, state), strict=True))


def _score_totals(
    pod: Object, feasible: list[framework.NodeInfo], profile: Profile, state: framework.CycleState
) -> list[int]:
    """``score_nodes`` as a list in the order of ``feasible`` (lists: this runs per pod)."""
    scorers = _scorers(pod, feasible, profile, state)
    key = _totals_key(pod, scorers, state)
    if key is None:
        return _weighted_sums(pod, feasible, scorers, state)
    # Every scorer left scores a node from that node alone and ``key``: the weighted
    # sum is remembered per node until its pods change (``NodeInfo.score_memo``), so
    # between two pods asking the same only the nodes that changed are scored.
    totals = [info.score_memo.get(key) for info in feasible]
    if None in totals:
        missing = [info for info, total in zip(feasible, totals, strict=True) if total is None]
        computed = iter(_weighted_sums(pod, missing, scorers, state))
        for index, total in enumerate(totals):
            if total is None:
                totals[index] = feasible[index].score_memo[key] = next(computed)
    return totals  # type: ignore[return-value]  # no None left


def _scorers(
    pod: Object, feasible: list[framework.NodeInfo], profile: Profile, state: framework.CycleState
) -> list[framework.ScorePlugin]:
    """The profile's scorers but those skipping themselves for this pod.

    A scorer may skip itself (upstream's PreScore returning Skip) when it
    would give every node the same score.
    """
    scorers = []
    for plugin in profile.scorers:
        pre_score = getattr(plugin, "pre_score", None)
        if pre_score is None or pre_score(state, pod, feasible).code != framework.Code.SKIP:
            scorers.append(plugin)
    return scorers


def _window_totals(
    pod: Object,
    nodes: framework.NodeList,
    start: int,
    feasible: list[framework.NodeInfo],
    profile: Profile,
    state: framework.CycleState,
) -> list[int]:
    """``_score_totals`` when ``feasible`` is the run of ``nodes`` from ``start`` (wrapping).

    The totals are kept by position in the snapshot (``NodeList.window``):
    the cycle slices them out and computes only the positions whose node
    changed since (a few per pod), not a memo read per feasible node.
    """
    scorers = _scorers(pod, feasible, profile, state)
    key = _totals_key(pod, scorers, state)
    if key is None:
        return _weighted_sums(pod, feasible, scorers, state)
    return nodes.window(
        key, start, len(feasible), lambda infos: _weighted_sums(pod, infos, scorers, state)
    )


def _totals_key(
    pod: Object, scorers: Sequence[framework.ScorePlugin], state: framework.CycleState
) -> str | None:
    """A text naming the scorers, their weights and what each scores by; None if one cannot."""
    parts = []
    for plugin in scorers:
        score_key = getattr(plugin, "score_key", None)
        if score_key is None or getattr(plugin, "normalizes", True):
            return None
        part = score_key(state, pod)
        if part is None:
            return None
        parts.append(f"{plugin.name}*{plugin.weight}:{part}")
    return "+".join(parts) if parts else None


def _weighted_sums(
    pod: Object,
    feasible: list[framework.NodeInfo],
    scorers: Sequence[framework.ScorePlugin],
    state: framework.CycleState,
) -> list[int]:
    """Each node's scores (normalized where the plugin does) times their weights, summed."""
    totals = [0] * len(feasible)
    first = True
    for plugin in scorers:
        # ``score_many``: the plugin's scores for all nodes in one call, where it has one.
        score_many = getattr(plugin, "score_many", None)
        if score_many is not None:
            values = score_many(state, pod, feasible)
        else:
            values = [plugin.score(state, pod, info) for info in feasible]
        if getattr(plugin, "normalizes", True):
            scores = dict(zip((info.name for info in feasible), values, strict=True))
            plugin.normalize(state, pod, scores)
            values = list(scores.values())  # normalize rewrites values, keeping the order
        weight = plugin.weight
        if first and weight == 1:
            totals = list(values)  # the usual first scorer: nothing to add to yet
        else:
            totals = [total + value * weight for total, value in zip(totals, values, strict=True)]
        first = False
    return totals


def schedule_pod(pod: Object, nodes: list[framework.NodeInfo], profile: Profile) -> str:
    """The node for ``pod``; raises ``FitError`` (or ``NoNodesAvailableError``).

    Ties go to the first node by name; upstream picks among them at random.
    """
    return place_pod(pod, nodes, profile)[0]


def place_pod(
    pod: Object, nodes: list[framework.NodeInfo], profile: Profile, *, start: int = 0
) -> tuple[str, int]:
    """``schedule_pod`` searching from node index ``start``: (node, nodes looked at).

    In clusters of 100 nodes or more only ``num_feasible_nodes_to_find``
    fits are scored; the count of nodes looked at tells the caller where
    the next cycle should start.
    """
    if not nodes:
        raise NoNodesAvailableError(NO_NODES_AVAILABLE)
    state: framework.CycleState = {}
    limit = num_feasible_nodes_to_find(len(nodes))
    start = start % len(nodes) if limit < len(nodes) else 0
    feasible, diagnosis = find_feasible(pod, nodes, profile, state, limit=limit, start=start)
    processed = len(feasible) + len(diagnosis.node_statuses)
    if not feasible:
        raise framework.FitError(len(nodes), diagnosis)
    if len(feasible) == 1:
        return feasible[0].name, processed
    if isinstance(nodes, framework.NodeList) and not nodes.retired and not diagnosis.node_statuses:
        # No node was rejected: the Filters passed the run of nodes from ``start``.
        totals = _window_totals(pod, nodes, start, feasible, profile, state)
    else:
        totals = _score_totals(pod, feasible, profile, state)
    best = max(totals)
    first = totals.index(best)
    if isinstance(nodes, framework.NodeList):
        return _first_tie_by_name(feasible, totals, best, first), processed
    if totals.count(best) == 1:
        return feasible[first].name, processed
    names = [info.name for info in feasible]
    return min(itertools.compress(names, [total == best for total in totals])), processed


def _first_tie_by_name(
    feasible: list[framework.NodeInfo], totals: list[int], best: int, first: int
) -> str:
    """The smallest name among the nodes scoring ``best``, without reading every name.

    ``feasible`` follows the name-sorted snapshot (a ``NodeList``) from the
    cycle's start index, wrapping once: names rise, drop once below the first
    one, and rise again. So the smallest tied name is the first tie after that
    drop, if there is one, else the first tie. Homogeneous clusters tie on
    hundreds of nodes per pod, and building every name cost as much as scoring.
    """
    head = feasible[0].name
    wrap = bisect.bisect_left(feasible, True, lo=first, key=lambda info: info.name < head)
    with contextlib.suppress(ValueError):
        first = totals.index(best, wrap)
    return feasible[first].name


# --- the component ----------------------------------------------------------------


def is_assigned(pod: Object) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


class Scheduler:
    """Schedules pods for ``scheduler_name``; ``start()``, then ``await stop()``."""

    def __init__(
        self,
        client: rest.Client,
        *,
        informers: informer.InformerFactory | None = None,
        recorder: events.EventsRecorder | None = None,
        event_client: rest.Client | None = None,
        scheduler_name: str = framework.DEFAULT_SCHEDULER_NAME,
        profile: Profile | None = None,
        scheduling_queue_: scheduling_queue.SchedulingQueue | None = None,
    ) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self.informers = informers or informer.InformerFactory(
            client, transform=informer.strip_managed_fields
        )
        # Upstream's scheduler writes events.k8s.io/v1 Events, reported by its
        # profile's name, through a client of their own (its eventClient).
        self._broadcaster: events.EventsBroadcaster | None = None
        if recorder is None:
            self._broadcaster = events.EventsBroadcaster(event_client or client)
            recorder = self._broadcaster.new_recorder(scheduler_name)
        self.recorder = recorder
        self.queue = scheduling_queue_ or scheduling_queue.SchedulingQueue()
        listers = volume_binding.InformerListers(self.informers)
        # A claim, volume or class that changes may let a waiting pod fit.
        listers.on_change(self.queue.move_all_to_active_or_backoff)
        self.volume_binding = volume_binding.VolumeBinding(listers, client)
        device_listers = dynamic_resources.InformerListers(self.informers)
        # A claim freed, a slice published or a class added may let a waiting pod fit.
        device_listers.on_change(self.queue.move_all_to_active_or_backoff)
        self.dynamic_resources = dynamic_resources.DynamicResources(device_listers, client)
        device_listers.claim_informer.add_event_handler(
            informer.EventHandler(
                on_add=self.dynamic_resources.claim_written,
                on_update=lambda _, new: self.dynamic_resources.claim_written(new),
                on_delete=lambda obj: self.dynamic_resources.claim_deleted(informer.unwrap(obj)),
            )
        )
        self.profile = profile or default_profile(self.volume_binding, self.dynamic_resources)
        # Binding cycles of pods with volumes run beside the scheduling loop,
        # as upstream's do, since PreBind waits for their claims to bind.
        self._binding_tasks: set[asyncio.Task[None]] = set()
        # Every binding runs beside the loop (upstream's binding cycle
        # goroutine): the pod is assumed, so the next cycle already counts
        # it, and the loop need not wait for the API's answer.
        self._bind_slots = asyncio.Semaphore(MAX_CONCURRENT_BINDS)
        self.binder = default_binder.DefaultBinder(client)
        self.pods = self.informers.informer(rest.PODS)
        self.nodes = self.informers.informer(rest.NODES)
        # Pods bound by this scheduler that the informer does not show as bound yet.
        self.assumed: dict[str, Object] = {}
        # NodeInfos kept current from the events below (bound and assumed pods).
        self.cache = scheduler_cache.Cache()
        self._next_start = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.pods.add_event_handler(
            informer.EventHandler(
                on_add=self._add_pod, on_update=self._update_pod, on_delete=self._delete_pod
            )
        )
        self.nodes.add_event_handler(
            informer.EventHandler(
                on_add=self._set_node,
                on_update=lambda _, new: self._set_node(new),
                on_delete=lambda obj: self.cache.remove_node(
                    informer.unwrap(obj)["metadata"]["name"]
                ),
            )
        )

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if self._broadcaster is not None:
            self._broadcaster.start()
        self.informers.start()
        self._tasks = [
            asyncio.ensure_future(self._run()),
            asyncio.ensure_future(self._flush_loop()),
        ]

    async def stop(self) -> None:
        self.queue.close()
        self._tasks.extend(self._binding_tasks)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.informers.stop()
        if self._broadcaster is not None:
            await self._broadcaster.stop()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.queue.flush()

    async def _run(self) -> None:
        await self.informers.wait_for_sync()
        while True:
            queued = await self.queue.pop()
            if queued is None:
                return
            try:
                await self.schedule_one(queued)
            except Exception:
                log.exception("scheduling %s failed", queued.key)
                self.queue.add_unschedulable(queued, error=True)

    # --- event handlers -----------------------------------------------------------

    def _responsible(self, pod: Object) -> bool:
        spec = pod.get("spec") or {}
        return (
            spec.get("schedulerName", framework.DEFAULT_SCHEDULER_NAME) == self.scheduler_name
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and not spec.get("schedulingGates")
        )

    def _set_node(self, node: Object) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active_or_backoff()

    def _cache_pod(self, key: str, pod: Object) -> None:
        """Record ``pod`` in the cache, unless it is an unbound view of a pod assumed bound."""
        if is_assigned(pod) or key not in self.assumed:
            self.cache.set_pod(key, pod)

    def _forget_assumed(self, key: str) -> None:
        """A binding failed: the pod counts where the informer says it is, if anywhere."""
        self.assumed.pop(key, None)
        current = self.pods.indexer.get(key)
        if current is None:
            self.cache.remove_pod(key)
        else:
            self.cache.set_pod(key, current)

    def _add_pod(self, pod: Object) -> None:
        key = scheduling_queue.pod_key(pod)
        self._cache_pod(key, pod)
        if is_assigned(pod):
            self.assumed.pop(key, None)
            self.queue.move_all_to_active_or_backoff()
        elif self._responsible(pod):
            self.queue.add(pod)

    def _update_pod(self, old: Object, new: Object) -> None:
        if old.get("metadata", {}).get("resourceVersion") == new.get("metadata", {}).get(
            "resourceVersion"
        ):
            return
        self._cache_pod(scheduling_queue.pod_key(new), new)
        if is_assigned(new):
            self.assumed.pop(scheduling_queue.pod_key(new), None)
            if not is_assigned(old):
                self.queue.delete(new)
            self.queue.move_all_to_active_or_backoff()
        elif self._responsible(new):
            self.queue.update(new)
        else:
            self.queue.delete(new)

    def _delete_pod(self, obj: Object | informer.DeletedFinalStateUnknown) -> None:
        pod = informer.unwrap(obj)
        self.assumed.pop(scheduling_queue.pod_key(pod), None)
        self.cache.remove_pod(scheduling_queue.pod_key(pod))
        self.queue.delete(pod)
        if is_assigned(pod):
            self.queue.move_all_to_active_or_backoff()

    # --- one scheduling cycle -----------------------------------------------------

    def snapshot(self) -> list[framework.NodeInfo]:
        """Every node with its assigned pods, assumed pods included (live, from the cache)."""
        return self.cache.node_infos()

    async def schedule_one(self, queued: scheduling_queue.QueuedPod) -> None:
        """Steps 1-5 of the module docstring for one popped pod."""
        pod = self.pods.indexer.get(queued.key)
        if pod is None or is_assigned(pod) or not self._responsible(pod):
            self.queue.done(queued)
            return
        queued.pod = pod
        if self.dynamic_resources.pre_enqueue(pod):
            # Upstream's PreEnqueue: not an attempt; a claim event brings it back.
            queued.attempts -= 1
            self.queue.add_unschedulable(queued)
            return
        nodes = self.snapshot()
        try:
            node, processed = place_pod(pod, nodes, self.profile, start=self._next_start)
            self._next_start = (self._next_start + processed) % max(len(nodes), 1)
        except framework.FitError as fit:
            nominated = await self._preempt(pod, nodes, fit)
            await self._record_failure(pod, fit.message, nominated=nominated)
            self.queue.add_unschedulable(queued)
            return
        except (NoNodesAvailableError, framework.PluginError) as exc:
            await self._record_failure(pod, str(exc), reason="SchedulerError")
            self.queue.add_unschedulable(queued, error=True)
            return
        await self._bind(queued, pod, node, nodes)

    async def _bind(
        self,
        queued: scheduling_queue.QueuedPod,
        pod: Object,
        node: str,
        nodes: Sequence[framework.NodeInfo] = (),
    ) -> None:
        """Assume, Reserve (volumes), then bind — in a task of its own when volumes must bind."""
        key = queued.key
        self.assumed[key] = {**pod, "spec": {**pod["spec"], "nodeName": node}}
        self.cache.set_pod(key, self.assumed[key])
        claims = volume_binding.claim_names(pod) or dynamic_resources.has_claims(pod)
        info = next((n for n in nodes if n.name == node), None) if claims else None
        if info is not None:
            try:
                reserved = self.volume_binding.reserve(pod, info)
            except volume_binding.VolumeBindingError as exc:
                await self._binding_failed(
                    queued, pod, f'running Reserve plugin "VolumeBinding": {exc}'
                )
                return
            try:
                devices = self.dynamic_resources.reserve(pod, info)
            except dynamic_resources.DynamicResourcesError as exc:
                self.volume_binding.unreserve(pod)
                await self._binding_failed(
                    queued, pod, f'running Reserve plugin "DynamicResources": {exc}'
                )
                return
            if not reserved.empty or not devices.empty:
                task = asyncio.ensure_future(self._bind_with_volumes(queued, pod, node))
                self._binding_tasks.add(task)
                task.add_done_callback(self._binding_tasks.discard)
                return
        await self._bind_slots.acquire()
        task = asyncio.ensure_future(self._bind_in_background(queued, pod, node))
        self._binding_tasks.add(task)
        task.add_done_callback(self._binding_tasks.discard)

    async def _bind_in_background(
        self, queued: scheduling_queue.QueuedPod, pod: Object, node: str
    ) -> None:
        """``_bind_pod`` in a task of its own; nobody awaits it, so every failure ends here."""
        try:
            await self._bind_pod(queued, pod, node)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("binding %s failed", queued.key)
            self._forget_assumed(queued.key)
            self.queue.add_unschedulable(queued, error=True)
        finally:
            self._bind_slots.release()

    async def _bind_with_volumes(
        self, queued: scheduling_queue.QueuedPod, pod: Object, node: str
    ) -> None:
        """PreBind, then bind; nobody awaits this task, so every failure ends here."""
        plugin, failed = volume_binding.NAME, False
        try:
            await self.volume_binding.pre_bind(pod, node)
            plugin = dynamic_resources.NAME
            await self.dynamic_resources.pre_bind(pod, node)
            failed = not await self._bind_pod(queued, pod, node)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed = True
            expected = (
                volume_binding.VolumeBindingError,
                dynamic_resources.DynamicResourcesError,
                rest.ApiError,
            )
            if not isinstance(exc, expected):
                log.exception("binding %s with its volumes or devices failed", queued.key)
            await self._binding_failed(queued, pod, f'running PreBind plugin "{plugin}": {exc}')
        finally:
            self.volume_binding.unreserve(pod)
            await self.dynamic_resources.unreserve(pod, failed=failed)

    async def _binding_failed(
        self, queued: scheduling_queue.QueuedPod, pod: Object, message: str
    ) -> None:
        self._forget_assumed(queued.key)
        await self._record_failure(pod, message, reason="SchedulerError")
        self.queue.add_unschedulable(queued, error=True)

    async def _bind_pod(self, queued: scheduling_queue.QueuedPod, pod: Object, node: str) -> bool:
        """Bind; False (failure recorded, pod requeued) when the API refused the binding."""
        key = queued.key
        try:
            await self.binder.bind(pod, node)
        except rest.ApiError as exc:
            self._forget_assumed(key)
            await self._record_failure(pod, f"Binding rejected: {exc}", reason="SchedulerError")
            self.queue.add_unschedulable(queued, error=True)
            return False
        self.queue.done(queued)
        meta = pod["metadata"]
        self.recorder.event(
            _as_pod(pod),
            "Normal",
            "Scheduled",
            "Binding",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
        )
        return True

    async def _preempt(
        self, pod: Object, nodes: list[framework.NodeInfo], fit: framework.FitError
    ) -> str:
        """DefaultPreemption as PostFilter; the nominated node, or "" (and the fit message)."""
        outcome = default_preemption.find_candidate(
            pod, nodes, fit.diagnosis.node_statuses, self.profile.filters
        )
        if outcome.candidate is None:
            fit.diagnosis.post_filter_message = f"preemption: {outcome.message}"
            return ""
        for victim in outcome.candidate.victims:
            await self._evict(victim, pod, outcome.candidate.node_name)
        return outcome.candidate.node_name

    async def _evict(self, victim: Object, preemptor: Object, node: str) -> None:
        meta = victim["metadata"]
        # The victim's generation as this scheduler's cache holds it (upstream stamps victim.Generation).
        condition = pod_conditions.observe(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": times.now_rfc3339(),
            },
            victim,
        )
        with contextlib.suppress(rest.ApiError):
            await self.client.patch(
                rest.PODS,
                meta["name"],
                {"status": {"conditions": [condition]}},
                namespace=meta["namespace"],
                patch_type="strategic",
                subresource="status",
            )
        try:
            await self.client.delete(rest.PODS, meta["name"], namespace=meta["namespace"])
        except rest.ApiError as exc:
            if not exc.not_found:
                raise
        self.recorder.event(
            _as_pod(victim),
            "Normal",
            "Preempted",
            "Preempting",
            f"Preempted by pod {preemptor['metadata'].get('uid', '')} on node {node}",
            related=_as_pod(preemptor),
        )

    async def _record_failure(
        self, pod: Object, message: str, *, reason: str = "Unschedulable", nominated: str = ""
    ) -> None:
        """FailedScheduling event, then PodScheduled=False (and the nomination) if changed."""
        self.recorder.event(_as_pod(pod), "Warning", "FailedScheduling", "Scheduling", message)
        status = pod.get("status") or {}
        old: dict[str, Any] = next(
            (c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), {}
        )
        same = (old.get("status"), old.get("reason"), old.get("message")) == (
            "False",
            reason,
            message,
        )
        if same and (not nominated or status.get("nominatedNodeName") == nominated):
            return
        # Stamped with the generation of the pod this attempt scheduled; a pod whose
        # condition differs only in it is not rewritten (upstream's UpdatePodCondition
        # leaves observedGeneration out of its comparison).
        condition = pod_conditions.observe(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": reason,
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": (
                    old.get("lastTransitionTime") if old.get("status") == "False" else None
                )
                or times.now_rfc3339(),
            },
            pod,
        )
        patch: Object = {"status": {"conditions": [condition]}}
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        meta = pod["metadata"]
        try:
            await self.client.patch(
                rest.PODS,
                meta["name"],
                patch,
                namespace=meta["namespace"],
                patch_type="strategic",
                subresource="status",
            )
        except rest.ApiError as exc:
            if not exc.not_found:
                raise


def _as_pod(pod: Object) -> Object:
    """Informer objects may lack kind/apiVersion; events need them for involvedObject."""
    return {"kind": "Pod", "apiVersion": "v1", **pod}
