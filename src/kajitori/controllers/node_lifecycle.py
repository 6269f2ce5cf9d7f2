"""The node lifecycle controller: notices silent kubelets, taints nodes, evicts pods.

Mirrors pkg/controller/nodelifecycle (node_lifecycle_controller.go) and the
NoExecute taint eviction of pkg/controller/tainteviction, in three parts:

1. monitoring, every ``node_monitor_period`` (upstream 5 s): a node's probe
   time is when this controller last *saw* its Lease ``renewTime`` or its
   Ready ``lastHeartbeatTime`` change (its own clock, so kubelets' clock
   skew does not matter). Past ``node_monitor_grace_period`` (upstream 40 s)
   the Ready, MemoryPressure, DiskPressure and PIDPressure conditions become
   ``Unknown``, reason ``NodeStatusUnknown``, message "Kubelet stopped
   posting node status." (``NodeStatusNeverUpdated`` if it never posted),
   and the pods on the node get ``Ready=False`` (``MarkPodsNotReady``);
2. tainting: the node's taints follow its conditions — Ready False →
   ``node.kubernetes.io/not-ready``, Unknown → ``node.kubernetes.io/unreachable``
   (each NoSchedule and NoExecute, the latter with ``timeAdded``), pressure
   conditions and ``spec.unschedulable`` → their NoSchedule taints;
3. eviction: a pod on a node with NoExecute taints that it does not
   tolerate is deleted at once; one that tolerates them all is deleted
   after the smallest ``tolerationSeconds`` among the tolerations used
   (never, if none has one), counted from when this controller first saw
   it needing eviction. Before deleting, the pod gets the condition
   ``DisruptionTarget`` (reason ``DeletionByTaintManager``), as upstream.

Both pod conditions this controller writes (``Ready=False`` and
``DisruptionTarget``) carry the generation of the pod as its informer holds
it, as ``observedGeneration`` (KEP-5067).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from kajitori.api.core_v1 import pod_conditions
from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]

DEFAULT_MONITOR_PERIOD = 5.0
DEFAULT_GRACE_PERIOD = 40.0
NODE_LEASE_NAMESPACE = "kube-node-lease"
# Upstream's taint eviction runs as a controller of its own, which names its Events.
TAINT_EVICTION_COMPONENT = "taint-eviction-controller"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# (condition, status that means trouble, taint key), NoSchedule only.
_PRESSURE_TAINTS = (
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
)
_MANAGED_KEYS = frozenset(
    {NOT_READY, UNREACHABLE, UNSCHEDULABLE, *(key for _, _, key in _PRESSURE_TAINTS)}
)
_UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
NODE_NAME_INDEX = "spec.nodeName"


def ready_condition(node: Object) -> Object | None:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition  # type: ignore[no-any-return]
    return None


def desired_taints(node: Object) -> list[Object]:
    """The taints this controller wants on ``node`` (without ``timeAdded``)."""
    conditions = {
        c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or ()
    }
    wanted: list[Object] = []
    ready = conditions.get("Ready")
    key = NOT_READY if ready == "False" else UNREACHABLE if ready == "Unknown" else ""
    if key:
        wanted += [{"key": key, "effect": "NoSchedule"}, {"key": key, "effect": "NoExecute"}]
    for kind, bad, taint_key in _PRESSURE_TAINTS:
        if conditions.get(kind) == bad:
            wanted.append({"key": taint_key, "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return wanted


def reconcile_taints(node: Object, now: str) -> list[Object] | None:
    """The node's new taint list, or ``None`` when it already has exactly what it should."""
    current = list((node.get("spec") or {}).get("taints") or ())
    managed = {(t.get("key"), t.get("effect")): t for t in current if t.get("key") in _MANAGED_KEYS}
    wanted = {(t["key"], t["effect"]): t for t in desired_taints(node)}
    if managed.keys() == wanted.keys():
        return None
    kept = [
        t
        for t in current
        if t.get("key") not in _MANAGED_KEYS or (t.get("key"), t.get("effect")) in wanted
    ]
    for pair, taint in wanted.items():
        if pair not in managed:
            added = dict(taint)
            if taint["effect"] == "NoExecute":
                added["timeAdded"] = now
            kept.append(added)
    return kept


def _no_execute_taints(node: Object) -> list[Object]:
    taints = (node.get("spec") or {}).get("taints") or ()
    return [t for t in taints if t.get("effect") == "NoExecute"]


def tolerates(toleration: Object, taint: Object) -> bool:
    """Upstream's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_delay(pod: Object, taints: list[Object]) -> float | None:
    """Seconds the pod may stay with these NoExecute taints: 0 now, ``None`` forever.

    Upstream's GetMatchingTolerations + getMinTolerationTime: each taint must
    be tolerated (first matching toleration counts); the smallest
    ``tolerationSeconds`` among those wins, a negative one means at once.
    """
    tolerations = (pod.get("spec") or {}).get("tolerations") or ()
    used = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        used.append(match)
    seconds = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not used:
        return 0.0
    if not seconds:
        return None
    return float(max(min(seconds), 0))


@dataclasses.dataclass(slots=True)
class _Probe:
    observed: tuple[str, str]
    at: float


class NodeLifecycleController(base.QueueController[str]):
    """Monitors node health, taints nodes and evicts pods; ``run(workers)`` until ``shut_down``."""

    name = "nodelifecycle"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        node_monitor_period: float = DEFAULT_MONITOR_PERIOD,
        node_monitor_grace_period: float = DEFAULT_GRACE_PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.eviction_recorder = recorder.broadcaster.new_recorder(TAINT_EVICTION_COMPONENT)
        self.monitor_period = node_monitor_period
        self.grace_period = node_monitor_grace_period
        self.clock = clock
        # The node queue is ``self.queue``; the taint-eviction manager's is its own.
        self.node_queue = self.queue
        self.eviction_queue = self.new_queue("tainteviction")
        self._probes: dict[str, _Probe] = {}
        self._eviction_since: dict[str, float] = {}  # pod UID → first seen needing eviction
        self._stopping = asyncio.Event()
        # Pods first: a shared node informer that has already synced calls
        # _add_node for every node as soon as it is watched, and that looks pods up.
        self.pods = informers.informer(rest.PODS)
        self.pods.indexer.add_indexers(
            {NODE_NAME_INDEX: lambda pod: [(pod.get("spec") or {}).get("nodeName") or ""]}
        )
        self.watch(self.pods, on_add=self._enqueue_pod, on_update=self._update_pod)
        self.nodes = self.watch(
            informers.informer(rest.NODES), on_add=self._add_node, on_update=self._update_node
        )
        self.leases = self.watch(informers.informer(rest.LEASES, namespace=NODE_LEASE_NAMESPACE))

    def _add_node(self, node: Object) -> None:
        self.enqueue(node)
        self._enqueue_pods_on(node["metadata"]["name"])

    def _update_node(self, old: Object, new: Object) -> None:
        self.enqueue(new)
        # As upstream's taint manager (NodeUpdated): a node's pods are looked at
        # again only when its NoExecute taints change, not on every heartbeat.
        if _no_execute_taints(old) != _no_execute_taints(new):
            self._enqueue_pods_on(new["metadata"]["name"])

    def _enqueue_pods_on(self, node_name: str) -> None:
        for pod in self.pods.indexer.by_index(NODE_NAME_INDEX, node_name):
            self._enqueue_pod(pod)

    def _update_pod(self, old: Object, new: Object) -> None:
        # Upstream's PodUpdated: only a new node or new tolerations can change
        # what the taints mean for a pod (its status writes cannot).
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if old_spec.get("nodeName") != new_spec.get("nodeName") or old_spec.get(
            "tolerations"
        ) != new_spec.get("tolerations"):
            self._enqueue_pod(new)

    def _enqueue_pod(self, pod: Object) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.eviction_queue.add(informer.meta_namespace_key(pod))

    async def work(self, workers: int) -> None:
        monitor = asyncio.ensure_future(self._monitor_loop())
        try:
            await asyncio.gather(
                super().work(workers),
                base.run_workers(self.eviction_queue, self.sync_pod, workers, name="tainteviction"),
            )
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor

    async def _monitor_loop(self) -> None:
        while True:
            for name in self.nodes.indexer.keys():
                self.node_queue.add(name)
            await asyncio.sleep(self.monitor_period)

    # ----- monitoring and tainting ------------------------------------------

    def _probe_age(self, node: Object) -> float:
        """Seconds since this controller last saw the node's kubelet heartbeat change."""
        name = node["metadata"]["name"]
        lease = self.leases.indexer.get(f"{NODE_LEASE_NAMESPACE}/{name}") or {}
        ready = ready_condition(node) or {}
        observed = (
            (lease.get("spec") or {}).get("renewTime") or "",
            ready.get("lastHeartbeatTime") or "",
        )
        now = self.clock()
        probe = self._probes.get(name)
        if probe is None or probe.observed != observed:
            self._probes[name] = probe = _Probe(observed, now)
        return now - probe.at

    async def sync(self, name: str) -> None:
        node = self.nodes.indexer.get(name)
        if node is None:
            self._probes.pop(name, None)
            return
        ready = ready_condition(node)
        if self._probe_age(node) > self.grace_period and (ready or {}).get("status") != "Unknown":
            node = await self._mark_unknown(node, never=ready is None)
            await self._mark_pods_not_ready(name)
        taints = reconcile_taints(node, times.now_rfc3339())
        if taints is not None:
            body = copy.deepcopy(node)
            body.setdefault("spec", {})["taints"] = taints
            if not taints:
                body["spec"].pop("taints")
            await self.client.update(rest.NODES, body)  # its pods are queued when it is seen

    async def _mark_unknown(self, node: Object, *, never: bool) -> Object:
        reason, message = (
            ("NodeStatusNeverUpdated", "Kubelet never posted node status.")
            if never
            else ("NodeStatusUnknown", "Kubelet stopped posting node status.")
        )
        now = times.now_rfc3339()
        conditions = copy.deepcopy((node.get("status") or {}).get("conditions") or [])
        by_type = {c.get("type"): c for c in conditions}
        for kind in _UNKNOWN_CONDITIONS:
            condition = by_type.get(kind)
            if condition is None:
                condition = {"type": kind, "lastHeartbeatTime": now}
                conditions.append(condition)
            if condition.get("status") != "Unknown":
                condition["lastTransitionTime"] = now
            condition.update(status="Unknown", reason=reason, message=message)
        log.info("node %s: %s", node["metadata"]["name"], message)
        self.recorder.event(
            node,
            "Normal",
            "NodeNotReady",
            f"Node {node['metadata']['name']} status is now: NodeNotReady",
        )
        return await self.client.patch(
            rest.NODES,
            node["metadata"]["name"],
            {"status": {"conditions": conditions}},
            subresource="status",
        )

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Upstream's MarkPodsNotReady: the node cannot vouch for its pods any more."""
        for pod in self.pods.indexer.by_index(NODE_NAME_INDEX, node_name):
            conditions = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
            changed = False
            for condition in conditions:
                if condition.get("type") == "Ready" and condition.get("status") != "False":
                    condition.update(status="False", lastTransitionTime=times.now_rfc3339())
                    pod_conditions.observe(condition, pod)
                    changed = True
            if changed:
                meta = pod["metadata"]
                with contextlib.suppress(rest.ApiError):
                    await self.client.patch(
                        rest.PODS,
                        meta["name"],
                        {"status": {"conditions": conditions}},
                        namespace=meta["namespace"],
                        subresource="status",
                    )

    # ----- taint eviction -----------------------------------------------------

    async def sync_pod(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        uid = pod["metadata"]["uid"]
        node = self.nodes.indexer.get((pod.get("spec") or {}).get("nodeName") or "")
        taints = [
            t
            for t in ((node or {}).get("spec") or {}).get("taints") or ()
            if t.get("effect") == "NoExecute"
        ]
        delay = eviction_delay(pod, taints) if taints else None
        if delay is None:
            self._eviction_since.pop(uid, None)
            return
        since = self._eviction_since.setdefault(uid, self.clock())
        remaining = since + delay - self.clock()
        if remaining > 0:
            raise base.RequeueAfter(remaining, "waiting for tolerationSeconds")
        await self._evict(pod)
        self._eviction_since.pop(uid, None)

    async def _evict(self, pod: Object) -> None:
        meta = pod["metadata"]
        conditions = [
            c
            for c in (pod.get("status") or {}).get("conditions") or ()
            if c.get("type") != "DisruptionTarget"
        ]
        conditions.append(
            pod_conditions.observe(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByTaintManager",
                    "message": "Taint manager: deleting due to NoExecute taint",
                    "lastTransitionTime": times.now_rfc3339(),
                },
                pod,
            )
        )
        self.eviction_recorder.event(
            pod,
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
        )
        try:
            await self.client.patch(
                rest.PODS,
                meta["name"],
                {"status": {"conditions": conditions}},
                namespace=meta["namespace"],
                subresource="status",
            )
            await self.client.delete(
                rest.PODS, meta["name"], namespace=meta["namespace"], uid=meta["uid"]
            )
        except rest.ApiError as exc:
            if not exc.not_found and not exc.conflict:
                raise
