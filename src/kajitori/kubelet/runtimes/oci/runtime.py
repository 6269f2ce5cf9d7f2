"""The ``oci`` runtime: pods as real containers under runc, one asyncio worker per pod.

The ``Runtime`` protocol is synchronous and cheap, so ``sync_pod`` only
records the pod and starts (or wakes) the pod's worker; the worker does the
slow work and calls the ``on_change`` callback the kubelet registered after
every step that changes what ``get_pod_status`` reports. The worker follows
upstream's SyncPod (pkg/kubelet/kuberuntime/kuberuntime_manager.go,
``computePodActions``), reduced:

1. the sandbox: new network, IPC and UTS namespaces pinned to files
   (pinns.py), hostname = ``spec.hostname`` or the pod's name; with a
   ``SandboxNetwork`` (sandbox_network.py) the network namespace is then
   ADDed to the node's pod network (the kubelet's podCIDR, through
   ``KubeletHooks.pod_cidr``), its IP reported as ``PodStatus.pod_ip`` and
   the pod's /etc/hosts and /etc/resolv.conf written for every container;
   without one, pods have loopback only;
2. init containers one at a time, in order; a sidecar (an init container
   with ``restartPolicy: Always``) only has to be started for the next one
   to go, and is restarted whenever it exits;
3. then every regular container; exits are restarted per ``restartPolicy``
   after upstream's back-off (10 s doubling to 300 s; CrashLoopBackOff);
   an init container failing under ``Never`` fails the pod.

What one container run involves (image, overlay rootfs, config.json,
shim and runc, hooks, exit watching, stopping) is containers.py's; this
module decides which container needs what, and when.

``kill_pod`` runs upstream's graceful termination: preStop exec hooks and
SIGTERM for the regular containers, SIGKILL when the grace period is over;
then the sidecars, in reverse order. ``remove_pod`` deletes everything the
pod had: runc containers, mounts, cgroups, namespaces, files.

Containers survive the runtime: a new ``OciRuntime`` over the same root
reads the pods back from disk (state.py), finds the shims still running
and watches them again. A run the old kubelet created but never started
(it died mid-start) is deleted and the container started again at once,
whatever the restart policy (upstream restarts a container left in the
created state); a sandbox whose CNI ADD may have been cut short is DELed
and ADDed again; and before the first ADD, the CNI attachments of sandboxes
the runtime no longer holds are released (``SandboxNetwork.gc``).

Faults are reported as upstream's kubelet does, through
``KubeletHooks.record_event``: ``Failed`` (``Error: <message>``) for a start
or config error, ``BackOff`` once per exit a container waits out,
``FailedCreatePodSandBox`` when the sandbox cannot be made and
``SandboxChanged`` when a pod that ran lost its sandbox (a reboot took its
namespaces) and gets a new one; each run's Created/Started/Killing are
containers.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from kajitori.kubelet.images import puller, registry, store
from kajitori.kubelet.network import cni, pod_network
from kajitori.kubelet.runtimes import interface, simulated
from kajitori.kubelet.runtimes.oci import (
    busybox,
    containers,
    gate,
    images,
    mounts,
    probes,
    runc,
    sandbox_network,
    spec,
    state,
    store_images,
)
from kajitori.kubelet.runtimes.oci import resize as oci_resize
from kajitori.kubelet.runtimes.oci import rootless as rootless_mode

log = logging.getLogger(__name__)

Object = dict[str, Any]

DEFAULT_BACKOFF_BASE = 10.0
DEFAULT_BACKOFF_CAP = 300.0
DEFAULT_GRACE_SECONDS = 30.0
MINIMUM_GRACE_SECONDS = 2.0  # upstream's minimum for sidecars after the main containers
CLOSE_TIMEOUT = 60.0  # how long aclose waits for removals and clean-ups under way
NETWORK_FILE = "network.json"  # the sandbox's podCIDR and IP, once attached


class OciRuntime:
    """Pods under runc, state under ``root``; see the module docstring."""

    type = "oci"

    def __init__(
        self,
        root: Path,
        images: images.ImageProvider,
        *,
        runc_binary: str = "runc",
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        network: sandbox_network.SandboxNetwork | None = None,
        rootless: rootless_mode.Rootless | None = None,
    ) -> None:
        self.root = root
        self.images = images
        self.network = network
        self.rootless = rootless  # not root: user namespaces, no cgroups, no CNI (0033)
        self.hooks: interface.KubeletHooks | None = None
        self._ips: dict[str, str] = {}  # pod uid → its IP on the pod network
        self.runc = runc.Runc(root / "runc", binary=runc_binary)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._pods: dict[str, state.Pod] = {}
        self._on_change: Callable[[str], None] | None = None
        self._removals: set[asyncio.Task[None]] = set()
        self._probe_kills: set[asyncio.Task[None]] = set()  # liveness stops under way
        self._sandbox_changed: set[str] = set()  # pods whose SandboxChanged event was recorded
        self.runs = containers.Runs(
            runc=self.runc,
            images=images,
            logs=root / "logs",
            changed=self._changed,
            backoff=self._backoff,
            background=self._background,
            event=self._event,
            rootless=rootless,
        )
        (root / "pods").mkdir(parents=True, exist_ok=True)
        self._reattach: set[str] = set()  # restored pods whose ADD may be half done
        self._load()
        # CNI attachments of sandboxes that are gone (removed while no runtime ran, or a
        # kubelet killed mid-ADD) are released once, before this runtime ADDs anything.
        self._network_gc: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: the first ADD starts it
            asyncio.get_running_loop()
            if network is not None:
                self._start_network_gc()

    # ----- the Runtime protocol ----------------------------------------------

    def set_on_change(self, callback: Callable[[str], None]) -> None:
        self._on_change = callback

    def set_object_source(self, source: Any) -> None:
        """Volumes and env from the API through ``source`` (kubelet/volumes/source.py)."""
        from kajitori.kubelet.volumes import manager  # the runtime only bind-mounts its output

        self.volumes = manager.VolumeManager(source, pod_ip=lambda uid: self._ips.get(uid, ""))
        for record in self._pods.values():  # pods of an earlier runtime keep getting updates
            self.volumes.adopt(record.pod, record.directory)
        self.runs.configure = self.volumes.container_config

    def set_kubelet_hooks(self, hooks: interface.KubeletHooks) -> None:
        self.hooks = hooks
        if isinstance(self.images, interface.HookedRuntime):  # pull secrets and events
            self.images.set_kubelet_hooks(hooks)

    def sync_pod(self, pod: Object, *, now: float) -> None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        record = self._pods.get(uid)
        if record is None:
            directory = self.root / "pods" / uid
            directory.mkdir(parents=True, exist_ok=True)
            record = state.Pod(uid, pod, directory, state.containers_of(pod))
            self._pods[uid] = record
            state.write_json(directory / "pod.json", pod)
        elif not record.killing and state.add_ephemeral(record.containers, pod):
            # ``kubectl debug`` added some: kept on disk so a new runtime knows them.
            state.write_json(record.directory / "pod.json", pod)
        record.pod = pod
        self._ensure_worker(record)

    def kill_pod(self, uid: str, *, now: float, grace_period: float | None = None) -> None:
        record = self._pods.get(uid)
        if record is None or record.killing:
            return
        record.killing = True
        record.grace = grace_period
        self._ensure_worker(record)

    def get_pod_status(self, uid: str, *, now: float) -> interface.PodStatus | None:
        record = self._pods.get(uid)
        if record is None:
            return None
        inits = tuple(self._status(record, c) for c in record.of_kind("init", "sidecar"))
        regular = tuple(self._status(record, c) for c in record.of_kind("regular"))
        ephemeral = tuple(self._status(record, c) for c in record.of_kind("ephemeral"))
        ready = record.sandbox_ready and not record.killed
        pod_ip = None if self.network is None else self._ips.get(uid, "")
        return interface.PodStatus(
            uid, ready, inits, regular, None, pod_ip, ephemeral_containers=ephemeral
        )

    def remove_pod(self, uid: str) -> None:
        record = self._pods.pop(uid, None)
        self._sandbox_changed.discard(uid)
        if record is None:
            return
        record.removing = True
        if record.wake is not None:
            record.wake.set()
        self._background(self._remove(record))

    def get_pods(self) -> list[str]:
        return list(self._pods)

    # ----- beyond the protocol -----------------------------------------------

    async def exec(
        self, uid: str, container: str, argv: list[str], *, tty: bool = False, timeout: float = 60.0
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` in a running container: ``(exit code, stdout, stderr)``."""
        if tty:
            raise NotImplementedError("exec with a terminal needs streaming, which is not here yet")
        record = self._pods.get(uid)
        found = record.containers.get(container) if record else None
        run = found.last if found else None
        if run is None or not run.running:
            raise LookupError(f"container {container} of pod {uid} is not running")
        return await self.runc.exec(run.container_id, argv, timeout=timeout)

    async def probe(
        self, uid: str, container: str, action: Object, *, timeout: float
    ) -> tuple[bool, str]:
        """One probe action against the container's current run (interface.ProbingRuntime)."""
        record = self._pods.get(uid)
        found = record.containers.get(container) if record else None
        run = found.last if found else None
        if record is None or found is None or run is None or not run.running:
            raise LookupError(f"container {container} of pod {uid} is not running")
        netns = containers.sandbox_of(record).netns
        current = self.get_pod_status(uid, now=time.time())
        pod_ip = (current.pod_ip if current is not None else None) or ""
        return await probes.run(
            self.runc, run.container_id, netns, action, found.spec, timeout, pod_ip
        )

    def kill_container(
        self, uid: str, container: str, *, grace_period: float | None, reason: str
    ) -> None:
        """Stop the container's current run (a failed liveness probe); it restarts per policy."""
        record = self._pods.get(uid)
        found = record.containers.get(container) if record else None
        if record is None or found is None or record.killing or record.removing:
            return
        if grace_period is None:
            pod_grace = (record.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            grace_period = DEFAULT_GRACE_SECONDS if pod_grace is None else float(pod_grace)
        log.info("pod %s: stopping container %s (%s)", record.name, container, reason)
        # Not a _background task: aclose cancels it with the workers, as it does a pod's _kill.
        # The prober recorded upstream's Killing event for this stop ("failed liveness probe").
        stopping = self.runs.stop(record, found, time.time() + grace_period, announce=False)
        task = asyncio.ensure_future(stopping)
        self._probe_kills.add(task)
        task.add_done_callback(self._probe_kills.discard)

    async def resize_container(
        self, uid: str, name: str, resources: Object, *, restart: bool, now: float
    ) -> str | None:
        """New resources for a running container (kubelet/resize.py): oci/resize.py applies them."""
        record = self._pods.get(uid)
        found = record.containers.get(name) if record else None
        if record is None or found is None or record.killing or record.removing:
            return None
        pod_grace = (record.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = DEFAULT_GRACE_SECONDS if pod_grace is None else float(pod_grace)
        return await oci_resize.apply(
            self.runc,
            self.runs,
            self._event,
            record,
            found,
            resources,
            restart=restart,
            cgroups=not self.rootless,
            grace_period=grace,
            now=now,
        )

    def log_path(self, uid: str, container: str, run: int) -> Path:
        """The CRI-format log of run ``run`` (the restart count) of ``container``."""
        return state.log_path(self.root / "logs", self._pods[uid], container, run)

    def run_directory(self, uid: str, container: str) -> Path | None:
        """The bundle of the last run of ``container`` (its shim's attach socket is there)."""
        record = self._pods.get(uid)
        found = record.containers.get(container) if record is not None else None
        run = found.last if found is not None else None
        return run.directory if run is not None else None

    async def aclose(self) -> None:
        """Stop the workers (containers keep running) and wait for pending removals."""
        for record in self._pods.values():
            if record.task is not None:
                await _cancel(record.task)
                record.task = None
        for task in list(self._probe_kills):
            await _cancel(task)
        self.runs.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT
        while self._removals:  # a removal may start clean-ups of its own
            if loop.time() >= deadline:
                for task in list(self._removals):
                    log.warning("oci runtime: background work still running at close: %s", task)
                    task.cancel()
                break
            await asyncio.wait(list(self._removals), timeout=deadline - loop.time())

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task ``aclose`` waits for."""
        task = asyncio.ensure_future(work)
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    # ----- status ------------------------------------------------------------

    def _backoff(self, number: int) -> float:
        return float(min(self.backoff_base * 2**number, self.backoff_cap))

    def _restarts(self, record: state.Pod, container: state.Container) -> bool:
        run = container.last
        if run is None or run.exit is None or record.killing or record.failed:
            return False
        if container.kind == "ephemeral":
            return False  # upstream never restarts them
        if container.resize_restart == run.number:
            return True  # stopped for a RestartContainer resize: upstream starts it again
        if container.kind == "sidecar" or _never_started(run):
            return True  # upstream restarts a container left created or unknown whatever the policy
        policy = (record.pod.get("spec") or {}).get("restartPolicy") or "Always"
        if container.kind == "init":
            return policy != "Never" and run.exit.exit_code != 0
        return simulated.restarts(policy, run.exit.exit_code)

    def _restart_at(self, record: state.Pod, container: state.Container) -> float | None:
        if not self._restarts(record, container):
            return None
        run = container.last
        assert run is not None and run.exit is not None
        if _never_started(run) or container.resize_restart == run.number:
            return run.exit.finished_at  # nothing failed (nothing ran, or a resize): no back-off
        return run.exit.finished_at + self._backoff(self._backoff_exponent(container, run))

    def _backoff_exponent(self, container: state.Container, run: state.Run) -> int:
        """How many times the back-off has doubled for the restart after ``run``.

        As upstream's flowcontrol.Backoff: it doubles with each quick failure
        and starts over once a run lasted more than twice the cap (10 min).
        Without the previous run's figure (after a restart) every earlier run
        counts as a quick failure.
        """
        if container.backoff is not None and container.backoff[0] == run.number:
            return container.backoff[1]
        assert run.exit is not None
        ran = run.exit.finished_at - (run.started_at or run.exit.finished_at)
        if run.number == 0 or ran > 2 * self.backoff_cap:
            exponent = 0
        elif container.backoff is not None and container.backoff[0] == run.number - 1:
            exponent = container.backoff[1] + 1
        else:
            exponent = run.number
        container.backoff = (run.number, exponent)
        return exponent

    def _status(self, record: state.Pod, container: state.Container) -> interface.ContainerStatus:
        initialized = all(self._init_done(c) for c in record.of_kind("init", "sidecar"))
        waiting = (
            "ContainerCreating" if container.kind != "regular" or initialized else "PodInitializing"
        )
        run = container.last
        at_once = run is not None and (
            _never_started(run) or container.resize_restart == run.number
        )
        if run is not None and at_once and self._restarts(record, container):
            # Restarted at once (no back-off): it is being created again, not crash-looping.
            return interface.ContainerStatus(
                name=container.name,
                image=run.image or str(container.spec.get("image") or ""),
                image_id=run.image_id,
                container_id=run.uri,
                state="waiting",
                reason="ContainerCreating",
                restart_count=run.number,
                last_termination=run.exit,
            )
        return state.container_status(
            container,
            waiting_reason=waiting,
            backoff_until=self._restart_at(record, container),
            pod_name=record.name,
        )

    @staticmethod
    def _init_done(container: state.Container) -> bool:
        run = container.last
        if container.kind == "sidecar":
            return run is not None and run.started_at is not None
        return run is not None and run.exit is not None and run.exit.exit_code == 0

    def _event(
        self, record: state.Pod, event_type: str, reason: str, message: str, *, container: str = ""
    ) -> None:
        """An event about the pod, or its ``container`` (upstream's fieldPath) when named."""
        if self.hooks is not None and not record.removing:
            field_path = interface.container_field_path(record.pod, container) if container else ""
            self.hooks.record_event(record.pod, event_type, reason, message, field_path=field_path)

    def _announce_backoff(self, record: state.Pod) -> None:
        """Upstream's BackOff event, once per exit a container waits out before restarting."""
        now = time.time()
        for container in record.containers.values():
            run = container.last
            restart_at = self._restart_at(record, container)
            if run is None or restart_at is None or restart_at <= now:
                continue
            if container.backoff_announced != run.number:
                container.backoff_announced = run.number
                message = (
                    f"Back-off restarting failed container {container.name} in pod {record.name}"
                )
                self._event(record, "Warning", "BackOff", message, container=container.name)

    def _changed(self, record: state.Pod) -> None:
        if record.wake is not None:
            record.wake.set()
        if self._on_change is not None and not record.removing:
            self._on_change(record.uid)

    # ----- the worker --------------------------------------------------------

    def _ensure_worker(self, record: state.Pod) -> None:
        if record.wake is None:
            record.wake = asyncio.Event()
        if record.task is None or record.task.done():
            record.task = asyncio.ensure_future(self._work(record))
        record.wake.set()

    async def _work(self, record: state.Pod) -> None:
        assert record.wake is not None
        self.runs.watch_runs(record)
        try:
            while not (record.killing or record.removing):
                record.wake.clear()
                if await self._step(record):
                    continue
                self._announce_backoff(record)
                await containers.wait_event(record.wake, self._next_timer(record))
            if not record.removing:
                await self._kill(record)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s: worker failed", record.name)

    def _next_timer(self, record: state.Pod) -> float | None:
        times = [self._restart_at(record, c) for c in record.containers.values()]
        times += [c.retry_at for c in record.containers.values()]
        pending = [t for t in times if t is not None]
        return max(min(pending) - time.time(), 0.0) if pending else None

    async def _step(self, record: state.Pod) -> bool:
        """Take the next action the pod needs; ``False`` when there is nothing to do yet."""
        if not record.sandbox_ready:
            async with self.runs.gate.slot(gate.SANDBOX):  # after containers under way (gate.py)
                return await self._create_sandbox(record)
        if record.failed:
            return False
        for container in record.of_kind("ephemeral"):
            # Upstream's computePodActions starts them whatever the init containers do.
            if self._due(record, container):
                await self.runs.start(record, container)
                return True
        for container in record.of_kind("init", "sidecar"):
            if self._due(record, container):
                await self.runs.start(record, container)
                return True
            if not self._init_done(container):
                self._fail_if_init_failed(record, container)
                return False
        for container in record.of_kind("sidecar", "regular"):
            if self._due(record, container):
                await self.runs.start(record, container)
                return True
        return False

    def _due(self, record: state.Pod, container: state.Container) -> bool:
        now = time.time()
        if container.retry_at is not None and now < container.retry_at:
            return False
        if container.last is None:
            return True
        restart_at = self._restart_at(record, container)
        return restart_at is not None and now >= restart_at

    def _fail_if_init_failed(self, record: state.Pod, container: state.Container) -> None:
        run = container.last
        if run is not None and run.exit is not None and not self._restarts(record, container):
            record.failed = True
            self._changed(record)

    async def _create_sandbox(self, record: state.Pod) -> bool:
        nsdir = record.directory / "ns"
        if not all((nsdir / name).exists() for name in ("net", "ipc", "uts")):
            ran = any(c.runs for c in record.containers.values())
            if ran and record.uid not in self._sandbox_changed:
                self._sandbox_changed.add(record.uid)  # once, not at every retry of a failing one
                message = "Pod sandbox changed, it will be killed and re-created."
                self._event(record, "Normal", "SandboxChanged", message)
            if nsdir.exists():
                # What is left of an earlier (or half-made) sandbox. A new pod has no ns
                # directory and so nothing mounted there: skipping the read of the whole
                # mount table (which grows with every pod) saves ~5 ms of a wave's start.
                mounts.unmount_all(nsdir)
            nsdir.mkdir(parents=True, exist_ok=True)
            try:
                pin = runc.pin_namespaces if self.rootless is None else self.rootless.pin_namespaces
                await pin(nsdir, hostname=spec.hostname_of(record.pod))
                if self.rootless is not None:
                    self._event(record, *rootless_mode.limits_event(record.pod))
            except runc.RuncError as exc:
                self._sandbox_failed(record, exc)
                return False
        if self.network is not None and not await self._attach(record):
            return False
        record.sandbox_ready = True
        for container in record.containers.values():
            container.message, container.retry_at = "", None
        self._changed(record)
        return True

    async def _attach(self, record: state.Pod) -> bool:
        """ADD the sandbox to the pod network and write its name files (once)."""
        assert self.network is not None
        saved = record.directory / NETWORK_FILE
        if saved.exists():
            return True
        node = str((record.pod.get("spec") or {}).get("nodeName") or "")
        cidr = self.hooks.pod_cidr(node) if self.hooks is not None else ""
        if self._network_gc is None:
            self._start_network_gc()
        assert self._network_gc is not None
        if not self._network_gc.done():  # its live set must not miss a sandbox ADDed meanwhile
            await asyncio.wait({self._network_gc})
        try:
            if not cidr:
                raise pod_network.NetworkSetupError(f"node {node!r} has no podCIDR yet")
            if record.uid in self._reattach:  # an ADD cut short: DEL what it made, then ADD anew
                await self.network.teardown(record.uid, record.directory / "ns/net", cidr)
                self._reattach.discard(record.uid)
            ip = await self.network.setup(record.pod, record.uid, record.directory / "ns/net", cidr)
            self.network.write_files(record.directory, record.pod, ip)
        except (pod_network.NetworkSetupError, OSError) as exc:
            self._sandbox_failed(record, exc)
            return False
        state.write_json(saved, {"podCIDR": cidr, "ip": ip})
        self._ips[record.uid] = ip
        return True

    def _sandbox_failed(self, record: state.Pod, exc: Exception) -> None:
        """Upstream's FailedCreatePodSandBox; the pod's containers wait and it retries in 1 s."""
        for container in record.containers.values():
            container.message = f"failed to create pod sandbox: {exc}"
            container.retry_at = time.time() + 1.0
        # Repeats are aggregated by the recorder (one Event, its count going up).
        self._event(
            record, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}"
        )
        self._changed(record)

    def _start_network_gc(self) -> None:
        task = asyncio.ensure_future(self._gc_network())
        self._network_gc = task
        self._removals.add(task)  # aclose waits for it as for a removal
        task.add_done_callback(self._removals.discard)

    async def _gc_network(self) -> None:
        """DEL cached attachments and IPAM reservations of sandboxes this runtime does not hold."""
        if self.network is None:
            return
        live = {uid for uid in self._pods if uid not in self._reattach}
        try:
            released = await self.network.gc(live)
        except (cni.PluginError, pod_network.NetworkSetupError, OSError) as exc:
            log.warning("oci runtime: CNI garbage collection failed: %s", exc)
            return
        if released:
            log.info("oci runtime: released the CNI attachments of gone sandboxes: %s", released)

    async def _kill(self, record: state.Pod) -> None:
        spec_ = record.pod.get("spec") or {}
        grace = record.grace
        if grace is None:
            grace = float(spec_.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
        deadline = time.time() + grace
        await asyncio.gather(
            *(
                self.runs.stop(record, c, deadline)
                for c in record.of_kind("init", "regular", "ephemeral")
            )
        )
        for container in reversed(record.of_kind("sidecar")):
            await self.runs.stop(
                record, container, max(deadline, time.time() + MINIMUM_GRACE_SECONDS)
            )
        record.killed = True
        self._changed(record)

    async def _remove(self, record: state.Pod) -> None:
        if record.task is not None:
            await _cancel(record.task)
        prefix = f"{record.uid}-"
        for found in await self.runc.list():
            if str(found.get("id", "")).startswith(prefix):
                await self.runc.delete(found["id"])
        await asyncio.gather(
            *(self._reap_shim(path) for path in record.directory.glob("containers/*/*/shim.pid"))
        )
        await self._detach(record)
        mounts.unmount_all(record.directory)
        if self.rootless is not None:
            self.rootless.release(record.directory / "ns")
        shutil.rmtree(record.directory, ignore_errors=True)
        shutil.rmtree(state.pod_log_dir(self.root / "logs", record), ignore_errors=True)
        mounts.remove_cgroups(f"/{containers.CGROUP_PARENT}/pod{record.uid}")

    async def _detach(self, record: state.Pod) -> None:
        """DEL the sandbox from the pod network, before its namespace goes."""
        self._ips.pop(record.uid, None)
        saved = state.read_json(record.directory / NETWORK_FILE)
        if self.network is None or saved is None:
            return
        try:
            await self.network.teardown(
                record.uid, record.directory / "ns/net", str(saved.get("podCIDR") or "")
            )
        except pod_network.NetworkSetupError as exc:
            log.warning("pod %s: %s", record.name, exc)

    async def _reap_shim(self, pid_file: Path) -> None:
        """Delete the run's container until its shim is gone.

        The shim may still be inside ``runc create`` (the worker was cancelled
        mid-start), in which case the first ``runc list`` missed it.
        """
        run_dir = pid_file.parent
        container_id = f"{run_dir.parent.parent.parent.name}-{run_dir.parent.name}-{run_dir.name}"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            deadline = time.monotonic() + containers.KILL_WAIT_SECONDS
            while state.shim_alive(pid, run_dir) and time.monotonic() < deadline:
                await self.runc.delete(container_id)
                await asyncio.sleep(0.02)

    # ----- recovery ------------------------------------------------------------

    def _load(self) -> None:
        """Pods of an earlier runtime over the same root, with their runs."""
        for directory in sorted((self.root / "pods").iterdir()):
            pod = state.read_json(directory / "pod.json")
            if pod is None:
                continue
            record = state.Pod(directory.name, pod, directory, state.containers_of(pod))
            record.sandbox_ready = (directory / "ns" / "net").exists()
            saved = state.read_json(directory / NETWORK_FILE)
            if saved is not None:
                self._ips[record.uid] = str(saved.get("ip") or "")
            elif self.network is not None:
                record.sandbox_ready = False  # attach it (again) at the next step
                self._reattach.add(record.uid)
            for container in record.containers.values():
                runs_dir = directory / "containers" / container.name
                numbers = sorted(int(p.name) for p in runs_dir.glob("*") if p.name.isdigit())
                container.runs = [
                    state.load_run(runs_dir / str(n), f"{record.uid}-{container.name}-{n}")
                    for n in numbers[-2:]
                ]
            self._pods[record.uid] = record


def _never_started(run: state.Run) -> bool:
    """A run created but never started, found so after a restart (the kubelet died mid-start)."""
    return run.started_at is None and run.exit is not None and run.exit.reason == state.UNKNOWN[0]


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again should it swallow one."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.warning("oci runtime: worker ended with %r", task.exception())


def check_host(runc_binary: str = "runc") -> str | None:
    """Why this machine cannot run the oci runtime, or ``None`` when it can."""
    if shutil.which(runc_binary) is None:
        return f"the oci runtime needs {runc_binary} (Debian package runc)"
    if os.geteuid() != 0:  # rootless: only if this user may have user namespaces
        return rootless_mode.check_host()
    return None


def new_runtime(
    root: Path,
    *,
    image_store: Path | None = None,
    network: sandbox_network.NetworkOptions | None = None,
    **options: Any,
) -> OciRuntime:
    """An ``OciRuntime`` under ``root``.

    With ``image_store`` images are pulled from registries into that store
    (store_images.py); without, only busybox images exist (busybox.py). With
    ``network`` sandboxes join the node's pod network; without, loopback only.
    """
    problem = check_host()
    if problem is not None:
        raise RuntimeError(problem)
    if os.geteuid() != 0:
        if network is not None:
            log.warning("oci runtime: rootless, so pods have loopback only (no CNI without root)")
        network = None
        options.setdefault("rootless", rootless_mode.Rootless())
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)  # tmpfs-less volumes keep secrets on disk here
    provider: images.ImageProvider
    if image_store is None:
        provider = busybox.BusyboxImages(root / "images")
    else:
        # Registry CAs as containerd's certs.d, beside the store: <data-dir>/certs.d (0032).
        client = registry.RegistryClient(hosts_dir=image_store.parent / "certs.d")
        manager = puller.ImageManager(store.ImageStore(image_store), client)
        provider = store_images.StoreImages(manager)
    attach = None if network is None else sandbox_network.SandboxNetwork(network)
    return OciRuntime(root, provider, network=attach, **options)
