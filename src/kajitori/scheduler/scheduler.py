"""kube-scheduler: assigns unscheduled pods to nodes, talking only to the API.

Mirrors pkg/scheduler (scheduler.go, schedule_one.go, eventhandlers.go).
Informers on pods and nodes feed the ``SchedulingQueue`` and a cache; one
task pops a pod at a time and runs a scheduling cycle:

1. the pod is re-read from the informer (gone, bound or deleting: dropped);
2. a snapshot of every node with its assigned pods is taken — including
   pods this scheduler has bound but the informer has not shown yet
   ("assumed" pods), so two quick decisions never double-book a node;
3. ``schedule_pod`` (pure) runs PreFilter, Filter and Score over it;
4. on a fit the pod is assumed and bound (``POST pods/{name}/binding``;
   the API server sets ``PodScheduled=True``) and a ``Scheduled`` event
   says ``Successfully assigned ns/name to node``;
5. when nothing fits, DefaultPreemption looks for lower-priority victims:
   they are marked (``DisruptionTarget``) and deleted and the pod's
   ``status.nominatedNodeName`` set; either way the pod gets a
   ``FailedScheduling`` event and ``PodScheduled=False`` with reason
   ``Unschedulable`` and upstream's diagnosis message, and waits in the
   unschedulable queue until the cluster changes.

Cluster changes that may make a waiting pod fit (a node added or updated,
an assigned pod added, updated or deleted) move every unschedulable pod
back. Pods whose ``spec.schedulerName`` is another scheduler, that are
being deleted or that still have scheduling gates are not this
scheduler's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Sequence
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.scheduler import framework
from kajitori.scheduler import queue as scheduling_queue
from kajitori.scheduler.plugins import (
    default_binder,
    default_preemption,
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
)

log = logging.getLogger(__name__)

Object = dict[str, Any]

COMPONENT = framework.DEFAULT_SCHEDULER_NAME
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
FLUSH_INTERVAL = 1.0


class NoNodesAvailableError(Exception):
    """The cluster has no nodes at all (upstream's ErrNoNodesAvailable)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """The plugins of one scheduling profile, by extension point."""

    pre_filters: Sequence[framework.PreFilterPlugin]
    filters: Sequence[framework.FilterPlugin]
    scorers: Sequence[framework.ScorePlugin]


def default_profile() -> Profile:
    """Upstream's default plugin set, in its Filter order."""
    fit = node_resources_fit.NodeResourcesFit()
    affinity = node_affinity.NodeAffinity()
    taints = taint_toleration.TaintToleration()
    spread = pod_topology_spread.PodTopologySpread()
    pod_affinity = inter_pod_affinity.InterPodAffinity()
    return Profile(
        pre_filters=(fit, spread, pod_affinity),
        filters=(
            node_unschedulable.NodeUnschedulable(),
            node_name.NodeName(),
            taints,
            affinity,
            node_ports.NodePorts(),
            fit,
            spread,
            pod_affinity,
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


def find_feasible(
    pod: Object, nodes: list[framework.NodeInfo], profile: Profile, state: framework.CycleState
) -> tuple[list[framework.NodeInfo], framework.Diagnosis]:
    """PreFilter then Filter: the nodes that fit and why the others do not."""
    diagnosis = framework.Diagnosis()
    for plugin in profile.pre_filters:
        status = plugin.pre_filter(state, pod, nodes)
        if status.rejected:
            diagnosis.pre_filter_message = ", ".join(status.reasons)
            diagnosis.node_statuses = {n.name: status for n in nodes}
            return [], diagnosis
    feasible = []
    for info in nodes:
        for plugin in profile.filters:
            status = plugin.filter(state, pod, info)
            if not status.ok:
                diagnosis.node_statuses[info.name] = dataclasses.replace(status, plugin=plugin.name)
                break
        else:
            feasible.append(info)
    return feasible, diagnosis


def score_nodes(
    pod: Object, feasible: list[framework.NodeInfo], profile: Profile, state: framework.CycleState
) -> dict[str, int]:
    """Each plugin's normalized score times its weight, summed per node."""
    totals = {info.name: 0 for info in feasible}
    for plugin in profile.scorers:
        scores = {info.name: plugin.score(state, pod, info) for info in feasible}
        plugin.normalize(state, pod, scores)
        for name, value in scores.items():
            totals[name] += value * plugin.weight
    return totals


def schedule_pod(pod: Object, nodes: list[framework.NodeInfo], profile: Profile) -> str:
    """The node for ``pod``; raises ``FitError`` (or ``NoNodesAvailableError``).

    Ties go to the first node by name; upstream picks among them at random.
    """
    if not nodes:
        raise NoNodesAvailableError(NO_NODES_AVAILABLE)
    state: framework.CycleState = {}
    feasible, diagnosis = find_feasible(pod, nodes, profile, state)
    if not feasible:
        raise framework.FitError(len(nodes), diagnosis)
    if len(feasible) == 1:
        return feasible[0].name
    totals = score_nodes(pod, feasible, profile, state)
    return min(totals, key=lambda name: (-totals[name], name))


# --- the component ----------------------------------------------------------------


def is_assigned(pod: Object) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _unwrap(obj: Object | informer.DeletedFinalStateUnknown) -> Object:
    if isinstance(obj, informer.DeletedFinalStateUnknown):
        return obj.obj
    return obj


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scheduler:
    """Schedules pods for ``scheduler_name``; ``start()``, then ``await stop()``."""

    def __init__(
        self,
        client: rest.Client,
        *,
        informers: informer.InformerFactory | None = None,
        recorder: events.EventRecorder | None = None,
        scheduler_name: str = framework.DEFAULT_SCHEDULER_NAME,
        profile: Profile | None = None,
        scheduling_queue_: scheduling_queue.SchedulingQueue | None = None,
    ) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self.profile = profile or default_profile()
        self.informers = informers or informer.InformerFactory(client)
        self.recorder = recorder or events.EventRecorder(client, component=scheduler_name)
        self.queue = scheduling_queue_ or scheduling_queue.SchedulingQueue()
        self.binder = default_binder.DefaultBinder(client)
        self.pods = self.informers.informer(rest.PODS)
        self.nodes = self.informers.informer(rest.NODES)
        # Pods bound by this scheduler that the informer does not show as bound yet.
        self.assumed: dict[str, Object] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.pods.add_event_handler(
            informer.EventHandler(
                on_add=self._add_pod, on_update=self._update_pod, on_delete=self._delete_pod
            )
        )
        self.nodes.add_event_handler(
            informer.EventHandler(
                on_add=lambda _: self.queue.move_all_to_active_or_backoff(),
                on_update=lambda _, __: self.queue.move_all_to_active_or_backoff(),
            )
        )

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self.recorder.start()
        self.informers.start()
        self._tasks = [
            asyncio.ensure_future(self._run()),
            asyncio.ensure_future(self._flush_loop()),
        ]

    async def stop(self) -> None:
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.informers.stop()
        await self.recorder.stop()

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

    def _add_pod(self, pod: Object) -> None:
        if is_assigned(pod):
            self.assumed.pop(scheduling_queue.pod_key(pod), None)
            self.queue.move_all_to_active_or_backoff()
        elif self._responsible(pod):
            self.queue.add(pod)

    def _update_pod(self, old: Object, new: Object) -> None:
        if old.get("metadata", {}).get("resourceVersion") == new.get("metadata", {}).get(
            "resourceVersion"
        ):
            return
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
        pod = _unwrap(obj)
        self.assumed.pop(scheduling_queue.pod_key(pod), None)
        self.queue.delete(pod)
        if is_assigned(pod):
            self.queue.move_all_to_active_or_backoff()

    # --- one scheduling cycle -----------------------------------------------------

    def snapshot(self) -> list[framework.NodeInfo]:
        """Every node with its assigned pods, assumed pods included."""
        pods = {scheduling_queue.pod_key(p): p for p in self.pods.indexer.list()}
        for key, assumed in list(self.assumed.items()):
            current = pods.get(key)
            if current is None or is_assigned(current):
                self.assumed.pop(key, None)
            else:
                pods[key] = assumed
        return framework.snapshot(self.nodes.indexer.list(), pods.values())

    async def schedule_one(self, queued: scheduling_queue.QueuedPod) -> None:
        """Steps 1-5 of the module docstring for one popped pod."""
        pod = self.pods.indexer.get(queued.key)
        if pod is None or is_assigned(pod) or not self._responsible(pod):
            self.queue.done(queued)
            return
        queued.pod = pod
        nodes = self.snapshot()
        try:
            node = schedule_pod(pod, nodes, self.profile)
        except framework.FitError as fit:
            nominated = await self._preempt(pod, nodes, fit)
            await self._record_failure(pod, fit.message, nominated=nominated)
            self.queue.add_unschedulable(queued)
            return
        except NoNodesAvailableError as exc:
            await self._record_failure(pod, str(exc), reason="SchedulerError")
            self.queue.add_unschedulable(queued, error=True)
            return
        await self._bind(queued, pod, node)

    async def _bind(self, queued: scheduling_queue.QueuedPod, pod: Object, node: str) -> None:
        key = queued.key
        self.assumed[key] = {**pod, "spec": {**pod["spec"], "nodeName": node}}
        try:
            await self.binder.bind(pod, node)
        except rest.ApiError as exc:
            self.assumed.pop(key, None)
            await self._record_failure(pod, f"Binding rejected: {exc}", reason="SchedulerError")
            self.queue.add_unschedulable(queued, error=True)
            return
        self.queue.done(queued)
        meta = pod["metadata"]
        self.recorder.event(
            _as_pod(pod),
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
        )

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
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": _now(),
        }
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
            f"Preempted by pod {preemptor['metadata'].get('uid', '')} on node {node}",
        )

    async def _record_failure(
        self, pod: Object, message: str, *, reason: str = "Unschedulable", nominated: str = ""
    ) -> None:
        """FailedScheduling event, then PodScheduled=False (and the nomination) if changed."""
        self.recorder.event(_as_pod(pod), "Warning", "FailedScheduling", message)
        status = pod.get("status") or {}
        old = next(
            (c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), {}
        )
        same = (old.get("status"), old.get("reason"), old.get("message")) == (
            "False",
            reason,
            message,
        )
        if same and (not nominated or status.get("nominatedNodeName") == nominated):
            return
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": (
                old.get("lastTransitionTime") if old.get("status") == "False" else None
            )
            or _now(),
        }
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
