"""Kubelets for many nodes in one process: registration, heartbeats, pod lifecycle.

Owns what upstream's kubelet does towards the API server, shaped so that
one process can run thousands of (simulated) nodes cheaply:

* one pod informer for every node of the process, with a field selector
  (``spec.nodeName=<node>`` for a single kubelet, ``spec.nodeName!=`` for
  many) and an index by ``spec.nodeName`` — or, for many nodes inside the
  API server's process, the pod informer the scheduler and the controller
  manager share there (``informer.InformerFactory``); one node informer; one
  work queue of pod keys and workers (``POD_WORKERS``, more with many nodes);
* registration: each Node is created with its status (kubelet_node_status.go),
  then its Lease in ``kube-node-lease``;
* heartbeats: one loop renews every running node's Lease each
  ``lease_duration / 4`` seconds (upstream: 40 s lease, 10 s renewal),
  concurrently but bounded, and posts node status every
  ``status_report_interval`` or when a node comes back;
* pods: ``sync_pod`` is upstream's syncPod reduced to the API side: start
  the pod in the runtime, write ``pods/status`` when it differs (a change
  that only readies the sandbox is held up to ``SANDBOX_STATUS_DELAY``, so
  the containers' start usually goes out in the same write), and look
  again when the runtime says something changes next. A pod with a
  ``deletionTimestamp`` is killed, its final status written, and then it is
  deleted with grace period 0 (with its UID as a precondition), as the
  kubelet's status manager does;
* pod IPs come from the node's ``spec.podCIDR`` (set by node IPAM): the
  first address is the gateway, pods get the next free ones;
* a Node annotated ``kajitori.io/simulate-stopped: "true"`` stops its
  kubelet (no heartbeats, no pod syncs) until the annotation goes, so that
  node failure can be simulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from kajitori.client import events, informer, rest, workqueue
from kajitori.controllers import base
from kajitori.kubelet import dra, lifecycle, node_status, prober, resize, status
from kajitori.kubelet.runtimes import interface
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]

NODE_NAME_INDEX = "spec.nodeName"
DEFAULT_STATUS_REPORT_INTERVAL = 300.0  # upstream's nodeStatusReportFrequency
POD_WORKERS = 16
# Upstream every kubelet works on each of its pods in a goroutine of its own;
# here one queue serves all the nodes of the process, so its workers grow
# with the nodes (one per node up to this many): at 1,000 nodes 16 workers,
# each waiting on one status write at a time, left pods bound for minutes
# before they started.
MAX_POD_WORKERS = 128
MAX_CONCURRENT_HEARTBEATS = 32
# The nodes renew their Leases in this many groups spread over each renewal interval.
HEARTBEAT_SLICES = 10
# A pod whose sandbox became ready while its containers still wait to be created
# has that status written after this long at most: its containers usually start
# sooner, and one write then carries both (upstream's pod worker likewise
# generates the status once the sandbox and its containers are all started).
SANDBOX_STATUS_DELAY = 0.5


def index_by_node_name(pod: Object) -> list[str]:
    return [(pod.get("spec") or {}).get("nodeName") or ""]


class _FieldSelectedClient(rest.Client):
    """The same connection, with a default field selector for lists and watches."""

    def __init__(self, client: rest.Client, field_selector: str) -> None:
        super().__init__(client.http, default_namespace=client.default_namespace)
        self.field_selector = field_selector

    async def list(self, resource: rest.Resource, **kwargs: Any) -> Object:
        kwargs["field_selector"] = kwargs.get("field_selector") or self.field_selector
        return await super().list(resource, **kwargs)

    def watch(self, resource: rest.Resource, **kwargs: Any) -> Any:
        kwargs["field_selector"] = kwargs.get("field_selector") or self.field_selector
        return super().watch(resource, **kwargs)


@dataclasses.dataclass(slots=True)
class NodeState:
    """One kubelet's view of its node."""

    config: node_status.NodeConfig
    stopped: bool = False
    registered: bool = False
    pod_cidr: str = ""
    lease: Object | None = None
    last_status_post: float = 0.0
    pod_ips: dict[str, str] = dataclasses.field(default_factory=dict)  # pod uid → IP

    def allocate_ip(self, uid: str) -> str:
        """The pod's IP: the lowest free host address above the gateway (``.1``)."""
        if uid in self.pod_ips:
            return self.pod_ips[uid]
        size = _cidr_size(self.pod_cidr)
        taken = set(self.pod_ips.values())
        for offset in range(2, size - 1):
            candidate = _host_address(self.pod_cidr, offset)
            if candidate not in taken:
                self.pod_ips[uid] = candidate
                return candidate
        raise RuntimeError(f"node {self.config.name}: pod CIDR {self.pod_cidr} is full")


# Every status write of a simulated pod asks for its address: parsing the CIDR
# and formatting the node's first addresses once, not per write, is the same answer.
@functools.lru_cache(maxsize=4096)
def _cidr_size(cidr: str) -> int:
    return ipaddress.ip_network(cidr).num_addresses


@functools.lru_cache(maxsize=65536)
def _host_address(cidr: str, offset: int) -> str:
    return str(ipaddress.ip_network(cidr).network_address + offset)


class KubeletHost:
    """Runs the kubelets of ``nodes`` over ``runtime``; ``await start()``, ``await stop()``."""

    def __init__(
        self,
        client: rest.Client,
        nodes: Sequence[node_status.NodeConfig],
        runtime: interface.Runtime,
        *,
        lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
        status_report_interval: float = DEFAULT_STATUS_REPORT_INTERVAL,
        workers: int = POD_WORKERS,
        clock: Any = time.time,
        client_for: Callable[[str], rest.Client] | None = None,
        event_client: rest.Client | None = None,
    ) -> None:
        self.client = client
        # Upstream's kubelet writes Events through a client of their own (kubeDeps.EventClient,
        # eventRecordQPS), so a burst of them never queues its status writes; over HTTPS a
        # client has MAX_IN_FLIGHT requests at a time. None: each node's own client.
        self.event_client = event_client
        # Each node's writes go out as that node (system:node:<name>), so the
        # Node authorizer and NodeRestriction judge them as a real kubelet's;
        # without ``client_for`` every node writes through ``client``.
        self._node_clients = {
            config.name: client_for(config.name) if client_for else client for config in nodes
        }
        self.runtime = runtime
        if isinstance(runtime, interface.NotifyingRuntime):
            runtime.set_on_change(self._runtime_changed)
        self._recorders: dict[str, events.EventRecorder] = {}  # node → its kubelet's recorder
        if isinstance(runtime, interface.HookedRuntime):
            runtime.set_kubelet_hooks(
                interface.KubeletHooks(self._record_event, self._get_secret, self._pod_cidr)
            )
        if hasattr(runtime, "set_object_source"):  # volumes and env (kubelet/volumes), as the node
            from kajitori.kubelet.volumes.source import ClientObjectSource

            runtime.set_object_source(
                ClientObjectSource(
                    self._node_clients[nodes[0].name],
                    host=nodes[0].name,
                    record_event=self._record_event,
                )
            )
        # Probes run only where the runtime can execute them (oci); simulated
        # containers have none run and are ready once running, as before.
        self.prober = (
            prober.ProberManager(
                runtime, on_change=self._runtime_changed, record=self._record_event
            )
            if isinstance(runtime, interface.ProbingRuntime)
            else None
        )
        self.nodes = {config.name: NodeState(config) for config in nodes}
        self.resizes = resize.ResizeManager()  # in-place resize: allocations (kubelet/resize.py)
        self.lease_duration = lease_duration
        self.status_report_interval = status_report_interval
        self.workers = max(workers, min(len(nodes), MAX_POD_WORKERS))
        self.clock = clock
        selector = f"spec.nodeName={nodes[0].name}" if len(nodes) == 1 else "spec.nodeName!="
        self._pod_client = _FieldSelectedClient(client, selector)
        self.pods: informer.Informer
        factory: informer.InformerFactory | None = None
        if len(nodes) > 1 and client.in_process_app is not None:
            # Many nodes inside the API server's process (``kajitori up``): the pod
            # informer the scheduler and the controller manager share there (one
            # watch, one decoded copy of each pod for all). It holds unbound pods
            # too; ``_enqueue_pod`` looks only at pods bound to these nodes.
            factory = informer.InformerFactory(client, transform=informer.strip_managed_fields)
            self.pods = factory.informer(rest.PODS)
            self.pods.indexer.add_indexers({NODE_NAME_INDEX: index_by_node_name})
        else:
            self.pods = informer.Informer(
                self._pod_client,
                rest.PODS,
                indexers={NODE_NAME_INDEX: index_by_node_name},
                transform=informer.strip_managed_fields,
            )
        # A lone kubelet may read only its own Node (the Node authorizer's rule).
        node_reader = (
            _FieldSelectedClient(client, f"metadata.name={nodes[0].name}")
            if len(nodes) == 1
            else client
        )
        self.node_informer = (
            informer.Informer(node_reader, rest.NODES)
            if factory is None
            else factory.informer(rest.NODES)  # shared in process, as the pods
        )
        self.queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue(
            name="kubelet-pods"
        )
        self._uids: dict[str, tuple[str, str]] = {}  # pod key → (uid, node)
        self._held: dict[str, float] = {}  # pod key → when its held status is written anyway
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeats = asyncio.Semaphore(MAX_CONCURRENT_HEARTBEATS)
        self.pods.add_event_handler(
            informer.EventHandler(
                on_add=self._enqueue_pod,
                on_update=self._update_pod,
                on_delete=self._delete_pod,
            )
        )
        self.node_informer.add_event_handler(
            informer.EventHandler(
                on_add=self._update_node, on_update=lambda _, new: self._update_node(new)
            )
        )

    # ----- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Register every node, then start the informers, heartbeats and pod workers."""
        await asyncio.gather(*(self._register(state) for state in self.nodes.values()))
        self.node_informer.start()
        self.pods.start()
        self._tasks.append(asyncio.ensure_future(self._heartbeat_loop()))
        self._tasks.append(asyncio.ensure_future(self._remove_orphaned_pods()))
        self._tasks.append(
            asyncio.ensure_future(
                base.run_workers(self.queue, self.sync_pod, self.workers, name="kubelet")
            )
        )

    async def stop(self) -> None:
        self.queue.shut_down()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.pods.stop()
        await self.node_informer.stop()
        if self.prober is not None:
            await self.prober.aclose()
        for recorder in self._recorders.values():
            await recorder.stop()
        self._recorders.clear()

    # ----- registration and heartbeats ---------------------------------------

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock(), tz=datetime.UTC)

    async def _register(self, state: NodeState) -> None:
        client = self._node_clients[state.config.name]
        async with self._heartbeats:
            node = node_status.initial_node(state.config, self._now())
            try:
                node = await client.create(rest.NODES, node)
            except rest.ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                node = await client.get(rest.NODES, state.config.name)
                state.stopped = node_status.is_stopped(node)
                if not state.stopped:
                    await self._post_status(state, node)
            state.pod_cidr = (node.get("spec") or {}).get("podCIDR") or state.pod_cidr
            state.registered = True
            if not state.stopped:
                await self._renew_lease(state, node)

    async def _renew_lease(self, state: NodeState, node: Object | None = None) -> None:
        """Renew (or create) the node's Lease; the last one written is kept to avoid a GET."""
        client = self._node_clients[state.config.name]
        now = self._now()
        lease = state.lease
        if lease is None:
            node = node or await client.get(rest.NODES, state.config.name)
            fresh = node_status.node_lease(node, duration=self.lease_duration, now=now)
            try:
                state.lease = await client.create(rest.LEASES, fresh)
                return
            except rest.ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                lease = await client.get(
                    rest.LEASES, state.config.name, namespace=node_status.NODE_LEASE_NAMESPACE
                )
        # Copies of the two levels changed (the last answer stays as it was if this fails).
        lease = {**lease, "spec": dict(lease["spec"])}
        lease["spec"]["renewTime"] = times.format_micro_time(now)
        lease["spec"]["holderIdentity"] = state.config.name
        lease["spec"]["leaseDurationSeconds"] = self.lease_duration
        try:
            state.lease = await client.update(rest.LEASES, lease)
        except rest.ApiError:
            state.lease = None  # conflict or gone: read it afresh next time
            raise

    async def _post_status(self, state: NodeState, node: Object | None = None) -> None:
        old = (node or self.node_informer.indexer.get(state.config.name) or {}).get("status") or {}
        body = {"status": node_status.node_status(state.config, old=old, now=self._now())}
        client = self._node_clients[state.config.name]
        await client.patch(rest.NODES, state.config.name, body, subresource="status")
        state.last_status_post = self.clock()

    async def _heartbeat(self, state: NodeState) -> None:
        async with self._heartbeats:
            try:
                await self._renew_lease(state)
                if self.clock() - state.last_status_post >= self.status_report_interval:
                    await self._post_status(state)
            except (rest.ApiError, OSError) as exc:
                log.warning("node %s: heartbeat failed: %s", state.config.name, exc)

    async def _heartbeat_loop(self) -> None:
        """Renew every node once per ``lease_duration / 4``, spread over that interval.

        Upstream each kubelet renews on its own clock; here the nodes of one
        process renew in ``HEARTBEAT_SLICES`` groups, one group every slice of
        the interval, and a round starts one interval after the previous one
        started (not after it ended): a thousand renewals at once made a burst
        every 10 s, and a round slowed by a busy server pushed every Lease
        later each time, towards the node monitor's grace period.
        """
        loop = asyncio.get_running_loop()
        interval = self.lease_duration / 4
        began = loop.time()
        while True:
            began += interval
            await asyncio.sleep(max(began - loop.time(), 0.0))
            due = [s for s in self.nodes.values() if s.registered and not s.stopped]
            slices = min(HEARTBEAT_SLICES, max(len(due), 1))
            for index in range(slices):
                await asyncio.sleep(max(began + interval * index / slices - loop.time(), 0.0))
                group = due[index::slices]
                await asyncio.gather(*(self._heartbeat(state) for state in group))
            began = max(began, loop.time() - interval)  # far behind: do not catch up in a rush

    def _update_node(self, node: Object) -> None:
        state = self.nodes.get(node["metadata"]["name"])
        if state is None:
            return
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        stopped = node_status.is_stopped(node)
        wake = (cidr and not state.pod_cidr) or (state.stopped and not stopped)
        state.pod_cidr = cidr or state.pod_cidr
        if state.stopped and not stopped:
            log.info("node %s: resuming", state.config.name)
            state.last_status_post = 0.0  # post Ready at the next heartbeat
            self._tasks.append(asyncio.ensure_future(self._heartbeat(state)))
        state.stopped = stopped
        if wake:
            for pod in self.pods.indexer.by_index(NODE_NAME_INDEX, state.config.name):
                self._enqueue_pod(pod)

    # ----- pods ---------------------------------------------------------------

    def _enqueue_pod(self, pod: Object) -> None:
        if index_by_node_name(pod)[0] in self.nodes:
            self.queue.add(informer.meta_namespace_key(pod))

    def _update_pod(self, old: Object, new: Object) -> None:
        # A change of status alone (most often the echo of this kubelet's own
        # write) starts no sync, as upstream's pod config source hands such
        # updates to reconcile, not to the pod worker: what the runtime does
        # next is already scheduled (``next_change``).
        if not _only_status_changed(old, new):
            self._enqueue_pod(new)

    def _delete_pod(self, pod: Object | informer.DeletedFinalStateUnknown) -> None:
        obj = informer.unwrap(pod)
        self._enqueue_pod(obj)

    async def sync_pod(self, key: str) -> None:
        """Bring pod ``key`` one step along its lifecycle (see the module docstring)."""
        pod = self.pods.indexer.get(key)
        if pod is None:
            self._forget(key)
            return
        state = self.nodes.get(index_by_node_name(pod)[0])
        if state is None or state.stopped:
            return
        if not state.pod_cidr:
            raise base.RequeueAfter(1.0, "waiting for the node's pod CIDR")
        uid = pod["metadata"]["uid"]
        self._uids[key] = (uid, state.config.name)
        now = self.clock()
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate(pod, state, now)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        if lifecycle.host_ports(pod) and self.runtime.get_pod_status(uid, now=now) is None:
            rejection = lifecycle.admit(pod, self._admitted(state.config.name, uid, now))
            if rejection is not None:
                await self._reject(pod, state, rejection, now)
                return
        if await self._claims_unprepared(pod, state, uid, now):
            raise base.RequeueAfter(dra.RETRY_SECONDS, "dynamic resources not prepared")
        # The runtime runs what is allocated; a resize the node cannot take yet waits.
        allocated = self.resizes.allocated_pod(pod, self._room(state, uid, now), now=now)
        self.runtime.sync_pod(allocated, now=now)
        runtime_status = self.runtime.get_pod_status(uid, now=now)
        assert runtime_status is not None
        if await self.resizes.actuate(allocated, self.runtime, _running(runtime_status), now=now):
            runtime_status = self.runtime.get_pod_status(uid, now=now)  # e.g. restarted
            assert runtime_status is not None
        if self.prober is not None:
            self.prober.update(pod, runtime_status)
            runtime_status = self.prober.apply(runtime_status)
        await self._write_status(pod, state, runtime_status, now, key=key)
        if runtime_status.next_change is not None:
            self.queue.add_after(key, max(runtime_status.next_change - now, 0.0))
        if self.resizes.deferred(uid):  # upstream retries deferred resizes as pods come and go
            self.queue.add_after(key, resize.DEFERRED_RETRY_SECONDS)

    async def _claims_unprepared(self, pod: Object, state: NodeState, uid: str, now: float) -> bool:
        """Upstream's PrepareDynamicResources before a new pod's sandbox (``kubelet/dra.py``)."""
        spec = pod.get("spec") or {}
        if not spec.get("resourceClaims") or dra.prepares_claims(self.runtime.type):
            return False
        if self.runtime.get_pod_status(uid, now=now) is not None:
            return False
        reason = await dra.prepare_error(self._node_clients[state.config.name], pod)
        if reason is None:
            return False
        self._record_event(pod, "Warning", dra.REASON, dra.EVENT_PREFIX + reason)
        return True

    def _room(self, state: NodeState, uid: str, now: float) -> resize.NodeRoom:
        """What a resize of pod ``uid`` is judged against (read only when one is asked)."""
        allocatable = resize.node_allocatable(state.config.cpu, state.config.memory)
        return resize.NodeRoom(allocatable, lambda: self._admitted(state.config.name, uid, now))

    def _admitted(self, node: str, uid: str, now: float) -> list[Object]:
        """The node's other pods that were admitted (the runtime holds them) and not finished."""
        return [
            other
            for other in self.pods.indexer.by_index(NODE_NAME_INDEX, node)
            if other["metadata"]["uid"] != uid
            and (other.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and self.runtime.get_pod_status(other["metadata"]["uid"], now=now) is not None
        ]

    async def _reject(
        self, pod: Object, state: NodeState, rejection: lifecycle.Rejection, now: float
    ) -> None:
        """Upstream's rejectPod: a Warning event, then phase Failed with the reason."""
        log.info("rejecting pod %s: %s", informer.meta_namespace_key(pod), rejection.message)
        self._record_event(pod, "Warning", rejection.reason, rejection.message)
        new = lifecycle.rejected_status(pod, rejection, start_time=status.rfc3339(now))
        await self._patch_status(self._node_clients[state.config.name], pod, new)

    async def _write_status(
        self,
        pod: Object,
        state: NodeState,
        runtime_status: interface.PodStatus,
        now: float,
        *,
        key: str | None = None,
    ) -> None:
        """Write the pod's status if it changed; with ``key``, hold a sandbox-only change."""
        pod_ip = runtime_status.pod_ip
        if pod_ip is None:  # the runtime does not network pods: simulate an address
            pod_ip = state.allocate_ip(pod["metadata"]["uid"])
        new = status.generate_pod_status(
            pod,
            runtime_status,
            now=now,
            pod_ip=pod_ip,
            host_ip=state.config.internal_ip,
        )
        self.resizes.decorate(pod, new, running=_running(runtime_status), now=now)
        if new == pod.get("status"):
            return
        if key is not None and _sandbox_progress_only(pod.get("status") or {}, new):
            hold_until = self._held.setdefault(key, time.monotonic() + SANDBOX_STATUS_DELAY)
            if hold_until > time.monotonic():
                self.queue.add_after(key, hold_until - time.monotonic())
                return
        if key is not None:
            self._held.pop(key, None)
        await self._patch_status(self._node_clients[state.config.name], pod, new)

    async def _patch_status(self, client: rest.Client, pod: Object, new: Object) -> None:
        """PATCH ``pods/status`` as upstream's status manager (``status.status_patch``).

        The answer (the whole pod) is not read: the informer brings it back
        anyway. A pod gone (404), or another pod under its name (409 on the
        uid precondition), is not written: the informer brings that news too,
        and the sync then forgets this pod or starts the new one, as upstream
        drops a deleted or recreated pod's status. Another conflict (the
        informer's copy is not the stored one) is raised, so the key is synced
        again once the informer has caught up.
        """
        body = status.status_patch(pod, new)
        if not body:
            return
        meta = pod["metadata"]
        path = rest.PODS.path(namespace=meta["namespace"], name=meta["name"], subresource="status")
        try:
            await client.request(
                "PATCH",
                path,
                body=body,
                content_type=rest.PATCH_CONTENT_TYPES["strategic"],
                decode=False,
            )
        except rest.ApiError as exc:
            if not exc.not_found and not _uid_refused(exc):
                raise
            log.info(
                "pod %s/%s (uid %s) is gone: status not written: %s",
                meta["namespace"],
                meta["name"],
                meta["uid"],
                exc,
            )

    async def _terminate(self, pod: Object, state: NodeState, now: float) -> None:
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        self.runtime.kill_pod(
            meta["uid"], now=now, grace_period=None if grace is None else float(grace)
        )
        final = self.runtime.get_pod_status(meta["uid"], now=now)
        if final is not None and self.prober is not None:
            final = self.prober.apply(final)  # a container stopping keeps its last verdict
        if final is not None:
            await self._write_status(pod, state, final, now)
            if any(c.state == "running" for c in (*final.init_containers, *final.containers)):
                return  # still stopping (grace period); the runtime tells us when it changes
        try:
            await self._node_clients[state.config.name].delete(
                rest.PODS,
                meta["name"],
                namespace=meta["namespace"],
                grace_period_seconds=0,
                uid=meta["uid"],
            )
        except rest.ApiError as exc:
            if not exc.not_found and not exc.conflict:
                raise

    async def _remove_orphaned_pods(self) -> None:
        """Once the pods are listed, drop what the runtime still runs for pods that are gone.

        A runtime whose containers outlive the kubelet (oci) reloads every pod
        it held; those deleted while the kubelet was down are never synced
        again, so they are removed here (upstream's HandlePodCleanups).
        """
        await self.pods.wait_for_sync()
        known = {pod["metadata"]["uid"] for pod in self.pods.indexer.list()}
        for uid in self.runtime.get_pods():
            if uid not in known:
                log.info("removing the containers of pod %s, which no longer exists", uid)
                self.runtime.remove_pod(uid)

    # ----- hooks for the runtime (interface.KubeletHooks) ----------------------

    def _record_event(
        self, pod: Object, event_type: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        """An Event about ``pod`` (or its container at ``field_path``) from its node's kubelet."""
        node = index_by_node_name(pod)[0]
        client = self._node_clients.get(node)
        if client is None:
            return
        client = self.event_client or client
        recorder = self._recorders.get(node)
        if recorder is None:
            recorder = events.EventRecorder(client, component="kubelet", host=node)
            recorder.start()
            self._recorders[node] = recorder
        involved = {"apiVersion": "v1", "kind": "Pod", "metadata": pod.get("metadata") or {}}
        kind: events.EventType = "Warning" if event_type == "Warning" else "Normal"
        recorder.event(involved, kind, reason, message, field_path=field_path)

    async def _get_secret(self, node: str, namespace: str, name: str) -> Object | None:
        client = self._node_clients.get(node, self.client)
        try:
            return await client.get(rest.SECRETS, name, namespace=namespace)
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise

    def _pod_cidr(self, node: str) -> str:
        state = self.nodes.get(node)
        return state.pod_cidr if state is not None else ""

    def _runtime_changed(self, uid: str) -> None:
        """A NotifyingRuntime's pod changed by itself: sync it again."""
        for key, (known, _) in list(self._uids.items()):
            if known == uid:
                self.queue.add(key)

    def _forget(self, key: str) -> None:
        self._held.pop(key, None)
        known = self._uids.pop(key, None)
        if known is None:
            return
        uid, node = known
        if self.prober is not None:
            self.prober.remove_pod(uid)
        self.runtime.remove_pod(uid)
        self.resizes.forget(uid)
        state = self.nodes.get(node)
        if state is not None:
            state.pod_ips.pop(uid, None)


# What upstream's pod config compares to tell an update the pod worker must see
# (podsDifferSemantically) from a status change; plus the uid (a pod recreated).
_SYNCED_METADATA = (
    "uid",
    "labels",
    "annotations",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def _running(runtime_status: interface.PodStatus) -> set[str]:
    """The names of the pod's running containers (the ones a resize applies to now)."""
    containers = (*runtime_status.init_containers, *runtime_status.containers)
    return {c.name for c in containers if c.state == "running"}


def _uid_refused(exc: rest.ApiError) -> bool:
    """Whether the server refused a status patch for naming another pod's uid.

    The uid in the patch is a precondition (upstream's BeforeUpdate): a 409
    whose message is "Precondition failed: UID in precondition: ...".
    """
    return exc.conflict and "UID in precondition" in exc.message


def _only_status_changed(old: Object, new: Object) -> bool:
    """Whether ``new`` differs from ``old`` in nothing a pod sync acts on."""
    if old.get("spec") != new.get("spec"):
        return False
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return all(old_meta.get(field) == new_meta.get(field) for field in _SYNCED_METADATA)


def _sandbox_progress_only(old: Object, new: Object) -> bool:
    """Whether ``new`` only adds a ready sandbox (and its address) to a pod still Pending."""
    if old.get("phase") != "Pending" or new.get("phase") != "Pending":
        return False
    sandbox = "PodReadyToStartContainers"
    if not any(c["type"] == sandbox and c["status"] == "True" for c in new["conditions"]):
        return False

    def rest_of(status: Object) -> Object:
        kept = {k: v for k, v in status.items() if k not in ("podIP", "podIPs", "conditions")}
        kept["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != sandbox]
        return kept

    return rest_of(old) == rest_of(new)
