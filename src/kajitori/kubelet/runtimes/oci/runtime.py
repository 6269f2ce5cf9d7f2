"""The ``oci`` runtime: pods as real containers under runc, one asyncio worker per pod.

The ``Runtime`` protocol is synchronous and cheap, so ``sync_pod`` only
records the pod and starts (or wakes) the pod's worker; the worker does the
slow work and calls the ``on_change`` callback the kubelet registered after
every step that changes what ``get_pod_status`` reports. The worker follows
upstream's SyncPod (pkg/kubelet/kuberuntime/kuberuntime_manager.go,
``computePodActions``), reduced:

1. the sandbox: new network (loopback only; CNI is not wired yet), IPC and
   UTS namespaces pinned to files (pinns.py), hostname = ``spec.hostname``
   or the pod's name;
2. init containers one at a time, in order; a sidecar (an init container
   with ``restartPolicy: Always``) only has to be started for the next one
   to go, and is restarted whenever it exits;
3. then every regular container; exits are restarted per ``restartPolicy``
   after upstream's back-off (10 s doubling to 300 s; CrashLoopBackOff);
   an init container failing under ``Never`` fails the pod.

A container run: image from the ``ImageProvider``, an overlay rootfs, the
config.json of spec.py, ``runc create`` through the shim (shim.py), ``runc
start``, then the postStart exec hook. The worker learns of an exit by a
pidfd on the shim, readable once the shim has written ``exit.json``.

``kill_pod`` runs upstream's graceful termination: preStop exec hooks and
SIGTERM for the regular containers, SIGKILL when the grace period is over;
then the sidecars, in reverse order. ``remove_pod`` deletes everything the
pod had: runc containers, mounts, cgroups, namespaces, files.

Containers survive the runtime: a new ``OciRuntime`` over the same root
reads the pods back from disk (state.py), finds the shims still running
and watches them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kajitori.kubelet.runtimes import interface, simulated
from kajitori.kubelet.runtimes.oci import busybox, images, mounts, runc, spec, state

log = logging.getLogger(__name__)

Object = dict[str, Any]

DEFAULT_BACKOFF_BASE = 10.0
DEFAULT_BACKOFF_CAP = 300.0
DEFAULT_GRACE_SECONDS = 30.0
MINIMUM_GRACE_SECONDS = 2.0  # upstream's minimum for sidecars after the main containers
KILL_WAIT_SECONDS = 10.0  # after SIGKILL, how long to wait for the shim's record
CGROUP_PARENT = "kajitori"


@dataclasses.dataclass(slots=True)
class _Pod:
    uid: str
    pod: Object
    directory: Path
    containers: dict[str, state.Container]
    sandbox_ready: bool = False
    sandbox_message: str = ""
    failed: bool = False
    killing: bool = False
    grace: float | None = None
    killed: bool = False
    removing: bool = False
    wake: asyncio.Event | None = None
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        meta = self.pod.get("metadata") or {}
        return f"{meta.get('name')}_{meta.get('namespace')}({self.uid})"

    def of_kind(self, *kinds: state.Kind) -> list[state.Container]:
        return [c for c in self.containers.values() if c.kind in kinds]


def _containers_of(pod: Object) -> dict[str, state.Container]:
    spec_ = pod.get("spec") or {}
    found: dict[str, state.Container] = {}
    for container in spec_.get("initContainers") or ():
        kind: state.Kind = "sidecar" if container.get("restartPolicy") == "Always" else "init"
        found[container["name"]] = state.Container(container, kind)
    for container in spec_.get("containers") or ():
        found[container["name"]] = state.Container(container, "regular")
    return found


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
    ) -> None:
        self.root = root
        self.images = images
        self.runc = runc.Runc(root / "runc", binary=runc_binary)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._pods: dict[str, _Pod] = {}
        self._on_change: Callable[[str], None] | None = None
        self._removals: set[asyncio.Task[None]] = set()
        (root / "pods").mkdir(parents=True, exist_ok=True)
        self._load()

    # ----- the Runtime protocol ----------------------------------------------

    def set_on_change(self, callback: Callable[[str], None]) -> None:
        self._on_change = callback

    def sync_pod(self, pod: Object, *, now: float) -> None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        record = self._pods.get(uid)
        if record is None:
            directory = self.root / "pods" / uid
            directory.mkdir(parents=True, exist_ok=True)
            record = _Pod(uid, pod, directory, _containers_of(pod))
            self._pods[uid] = record
            state.write_json(directory / "pod.json", pod)
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
        ready = record.sandbox_ready and not record.killed
        return interface.PodStatus(uid, ready, inits, regular, None)

    def remove_pod(self, uid: str) -> None:
        record = self._pods.pop(uid, None)
        if record is None:
            return
        record.removing = True
        task = asyncio.ensure_future(self._remove(record))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

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

    def log_path(self, uid: str, container: str, run: int) -> Path:
        """The CRI-format log of run ``run`` (the restart count) of ``container``."""
        meta = self._pods[uid].pod.get("metadata") or {}
        pod_dir = f"{meta.get('namespace')}_{meta.get('name')}_{uid}"
        return self.root / "logs" / pod_dir / container / f"{run}.log"

    async def aclose(self) -> None:
        """Stop the workers (containers keep running) and wait for pending removals."""
        for record in self._pods.values():
            if record.task is not None:
                record.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await record.task
                record.task = None
        while self._removals:
            await asyncio.gather(*list(self._removals), return_exceptions=True)

    # ----- status ------------------------------------------------------------

    def _backoff(self, number: int) -> float:
        return float(min(self.backoff_base * 2**number, self.backoff_cap))

    def _restarts(self, record: _Pod, container: state.Container) -> bool:
        run = container.last
        if run is None or run.exit is None or record.killing or record.failed:
            return False
        if container.kind == "sidecar":
            return True
        policy = (record.pod.get("spec") or {}).get("restartPolicy") or "Always"
        if container.kind == "init":
            return policy != "Never" and run.exit.exit_code != 0
        return simulated.restarts(policy, run.exit.exit_code)

    def _restart_at(self, record: _Pod, container: state.Container) -> float | None:
        if not self._restarts(record, container):
            return None
        run = container.last
        assert run is not None and run.exit is not None
        return run.exit.finished_at + self._backoff(run.number)

    def _status(self, record: _Pod, container: state.Container) -> interface.ContainerStatus:
        initialized = all(self._init_done(c) for c in record.of_kind("init", "sidecar"))
        waiting = (
            "ContainerCreating" if container.kind != "regular" or initialized else "PodInitializing"
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

    def _changed(self, record: _Pod) -> None:
        if record.wake is not None:
            record.wake.set()
        if self._on_change is not None and not record.removing:
            self._on_change(record.uid)

    # ----- the worker --------------------------------------------------------

    def _ensure_worker(self, record: _Pod) -> None:
        if record.wake is None:
            record.wake = asyncio.Event()
        if record.task is None or record.task.done():
            record.task = asyncio.ensure_future(self._work(record))
        record.wake.set()

    async def _work(self, record: _Pod) -> None:
        assert record.wake is not None
        self._watch_runs(record)
        try:
            while not record.killing:
                record.wake.clear()
                if await self._step(record):
                    continue
                delay = self._next_timer(record)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(record.wake.wait(), delay)
            await self._kill(record)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s: worker failed", record.name)

    def _next_timer(self, record: _Pod) -> float | None:
        times = [self._restart_at(record, c) for c in record.containers.values()]
        times += [c.retry_at for c in record.containers.values()]
        pending = [t for t in times if t is not None]
        return max(min(pending) - time.time(), 0.0) if pending else None

    async def _step(self, record: _Pod) -> bool:
        """Take the next action the pod needs; ``False`` when there is nothing to do yet."""
        if not record.sandbox_ready:
            return await self._create_sandbox(record)
        if record.failed:
            return False
        for container in record.of_kind("init", "sidecar"):
            if self._due(record, container):
                await self._start(record, container)
                return True
            if not self._init_done(container):
                self._fail_if_init_failed(record, container)
                return False
        for container in record.of_kind("sidecar", "regular"):
            if self._due(record, container):
                await self._start(record, container)
                return True
        return False

    def _due(self, record: _Pod, container: state.Container) -> bool:
        now = time.time()
        if container.retry_at is not None and now < container.retry_at:
            return False
        if container.last is None:
            return True
        restart_at = self._restart_at(record, container)
        return restart_at is not None and now >= restart_at

    def _fail_if_init_failed(self, record: _Pod, container: state.Container) -> None:
        run = container.last
        if run is not None and run.exit is not None and not self._restarts(record, container):
            record.failed = True
            self._changed(record)

    async def _create_sandbox(self, record: _Pod) -> bool:
        nsdir = record.directory / "ns"
        if not all((nsdir / name).exists() for name in ("net", "ipc", "uts")):
            mounts.unmount_all(nsdir)
            nsdir.mkdir(parents=True, exist_ok=True)
            try:
                await runc.pin_namespaces(nsdir, hostname=spec.hostname_of(record.pod))
            except runc.RuncError as exc:
                for container in record.containers.values():
                    container.message = f"failed to create pod sandbox: {exc}"
                    container.retry_at = time.time() + 1.0
                self._changed(record)
                return False
        record.sandbox_ready = True
        for container in record.containers.values():
            container.message, container.retry_at = "", None
        self._changed(record)
        return True

    def _sandbox(self, record: _Pod) -> spec.Sandbox:
        nsdir = record.directory / "ns"
        return spec.Sandbox(
            netns=nsdir / "net",
            ipcns=nsdir / "ipc",
            utsns=nsdir / "uts",
            cgroup_parent=f"/{CGROUP_PARENT}/pod{record.uid}",
        )

    # ----- one container run ---------------------------------------------------

    async def _start(self, record: _Pod, container: state.Container) -> None:
        container.reason, container.message = "ContainerCreating", ""
        self._changed(record)
        pulled = await self._pull(record, container)
        if pulled is None:
            return
        rootfs, config = pulled
        number = container.last.number + 1 if container.last else 0
        run = state.Run(
            number=number,
            container_id=f"{record.uid}-{container.name}-{number}",
            directory=record.directory / "containers" / container.name / str(number),
            image=simulated.normalize_image(str(container.spec.get("image") or "")),
            image_id=_image_id(str(container.spec.get("image") or ""), config),
        )
        await self._forget_old_runs(container)
        container.runs.append(run)
        container.reason = ""
        try:
            self._prepare(record, container, run, rootfs, config)
            created = await self.runc.create(
                run.container_id, bundle=run.directory, log=self._log_file(record, container, run)
            )
        except (runc.RuncError, OSError, ValueError) as exc:
            self._start_failed(record, run, str(exc))
            return
        run.shim_pid, run.init_pid = created.shim_pid, created.init_pid
        self._watch(record, run)
        await self._run_started(record, container, run)

    async def _pull(self, record: _Pod, container: state.Container) -> tuple[Path, Object] | None:
        image = str(container.spec.get("image") or "")
        policy = str(container.spec.get("imagePullPolicy") or "IfNotPresent")
        try:
            pulled = await self.images.ensure(image, policy, record.pod)
        except images.ImagePullError as exc:
            backoff = self._backoff(container.pull_failures)
            container.pull_failures += 1
            container.reason = (
                "ErrImagePull" if container.pull_failures == 1 else "ImagePullBackOff"
            )
            container.message = str(exc)
            container.retry_at = time.time() + backoff
            self._changed(record)
            return None
        container.pull_failures, container.retry_at = 0, None
        return pulled

    def _prepare(
        self, record: _Pod, container: state.Container, run: state.Run, rootfs: Path, config: Object
    ) -> None:
        """The bundle: overlay rootfs and config.json."""
        for name in ("rootfs", "upper", "work"):
            (run.directory / name).mkdir(parents=True, exist_ok=True)
        run.save()
        mounts.mount_overlay(
            run.directory / "rootfs",
            lower=rootfs,
            upper=run.directory / "upper",
            work=run.directory / "work",
        )
        image = spec.ImageConfig.from_config(config)
        image_uid, image_gid = spec.lookup_user(rootfs, image.user)
        user = spec.user_of(record.pod, container.spec, image_uid=image_uid, image_gid=image_gid)
        document = spec.container_spec(
            record.pod,
            container.spec,
            image,
            rootfs=run.directory / "rootfs",
            sandbox=self._sandbox(record),
            container_id=run.container_id,
            user=user,
        )
        (run.directory / "config.json").write_text(json.dumps(document))

    def _log_file(self, record: _Pod, container: state.Container, run: state.Run) -> Path:
        path = self.log_path(record.uid, container.name, run.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _start_failed(self, record: _Pod, run: state.Run, message: str) -> None:
        now = time.time()
        run.exit = interface.Termination(128, "StartError", now, now, run.uri)
        run.message = message
        run.exit_event().set()
        state.write_json(run.directory / "exit.json", {"createError": message, "finishedAt": now})
        mounts.unmount(run.directory / "rootfs")
        self._changed(record)

    async def _run_started(self, record: _Pod, container: state.Container, run: state.Run) -> None:
        hook = ((container.spec.get("lifecycle") or {}).get("postStart") or {}).get("exec")
        container.poststart_pending = hook is not None
        try:
            await self.runc.start(run.container_id, init_pid=run.init_pid or 0)
        except runc.RuncError as exc:
            await self.runc.delete(run.container_id)
            self._start_failed(record, run, str(exc))
            return
        run.started_at = time.time()
        run.save()
        self._changed(record)
        if hook is not None:
            code, out, err = await self._exec_hook(run, hook, timeout=None)
            container.poststart_pending = False
            if code != 0 and run.exit is None:
                run.message = (
                    f"PostStartHookError: exec {hook.get('command')} exited {code}: {err or out}"
                )
                await self.runc.kill(run.container_id, "SIGKILL")
            self._changed(record)

    async def _exec_hook(
        self, run: state.Run, hook: Object, *, timeout: float | None
    ) -> tuple[int, str, str]:
        argv = [str(a) for a in hook.get("command") or ()]
        try:
            code, out, err = await self.runc.exec(run.container_id, argv, timeout=timeout or 60.0)
        except TimeoutError:
            return 124, "", "hook timed out"
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    async def _forget_old_runs(self, container: state.Container) -> None:
        """Keep only the last run (``lastState``) before adding a new one."""
        while len(container.runs) > 1:
            old = container.runs.pop(0)
            await self._clean_run(old)
            shutil.rmtree(old.directory, ignore_errors=True)

    # ----- exits -----------------------------------------------------------------

    def _watch_runs(self, record: _Pod) -> None:
        for container in record.containers.values():
            for run in container.runs:
                if run.exit is None and run.shim_pid is not None:
                    self._watch(record, run)
                elif run.exit is not None and not run.cleaned:
                    task = asyncio.ensure_future(self._clean_run(run))
                    self._removals.add(task)
                    task.add_done_callback(self._removals.discard)

    def _watch(self, record: _Pod, run: state.Run) -> None:
        """Call ``_exited`` once the run's shim has exited (it wrote exit.json first)."""
        assert run.shim_pid is not None
        event = run.exit_event()
        if event.is_set():
            return
        try:
            fd = os.pidfd_open(run.shim_pid)
        except ProcessLookupError:
            self._exited(record, run)
            return
        loop = asyncio.get_running_loop()

        def readable() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._exited(record, run)

        loop.add_reader(fd, readable)

    def _exited(self, record: _Pod, run: state.Run) -> None:
        if run.exit is not None:
            return
        saved = state.read_json(run.directory / "exit.json")
        if saved is None:
            reason, code = state.UNKNOWN
            now = time.time()
            run.exit = interface.Termination(code, reason, run.started_at or now, now, run.uri)
        else:
            run.exit = state.termination_of(saved, run)
        run.exit_event().set()
        self._changed(record)
        if not record.removing:
            task = asyncio.ensure_future(self._clean_run(run))
            self._removals.add(task)
            task.add_done_callback(self._removals.discard)

    async def _clean_run(self, run: state.Run) -> None:
        """runc's record and the overlay of a run that has ended (its files stay)."""
        if run.cleaned:
            return
        run.cleaned = True
        await self.runc.delete(run.container_id)
        mounts.unmount(run.directory / "rootfs")

    # ----- termination and removal ---------------------------------------------

    async def _kill(self, record: _Pod) -> None:
        spec_ = record.pod.get("spec") or {}
        grace = record.grace
        if grace is None:
            grace = float(spec_.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
        deadline = time.time() + grace
        await asyncio.gather(
            *(self._stop(record, c, deadline) for c in record.of_kind("init", "regular"))
        )
        for container in reversed(record.of_kind("sidecar")):
            await self._stop(record, container, max(deadline, time.time() + MINIMUM_GRACE_SECONDS))
        record.killed = True
        self._changed(record)

    async def _stop(self, record: _Pod, container: state.Container, deadline: float) -> None:
        """preStop, SIGTERM, the rest of the grace period, then SIGKILL."""
        run = container.last
        if run is None or run.exit is not None:
            return
        if run.started_at is None:
            await self.runc.delete(run.container_id)
            return
        hook = ((container.spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        if hook is not None:
            await self._exec_hook(run, hook, timeout=max(deadline - time.time(), 0.1))
        await self.runc.kill(run.container_id, "SIGTERM")
        event = run.exit_event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(deadline - time.time(), 0.0))
        if not event.is_set():
            await self.runc.kill(run.container_id, "SIGKILL")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), KILL_WAIT_SECONDS)

    async def _remove(self, record: _Pod) -> None:
        if record.task is not None:
            record.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await record.task
        prefix = f"{record.uid}-"
        for found in await self.runc.list():
            if str(found.get("id", "")).startswith(prefix):
                await self.runc.delete(found["id"])
        for container in record.containers.values():
            for run in container.runs:
                if run.exit is None and run.shim_pid is not None:
                    await _wait_gone(run.shim_pid, KILL_WAIT_SECONDS)
        mounts.unmount_all(record.directory)
        meta = record.pod.get("metadata") or {}
        logs = self.root / "logs" / f"{meta.get('namespace')}_{meta.get('name')}_{record.uid}"
        shutil.rmtree(record.directory, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        mounts.remove_cgroups(f"/{CGROUP_PARENT}/pod{record.uid}")

    # ----- recovery ------------------------------------------------------------

    def _load(self) -> None:
        """Pods of an earlier runtime over the same root, with their runs."""
        for directory in sorted((self.root / "pods").iterdir()):
            pod = state.read_json(directory / "pod.json")
            if pod is None:
                continue
            record = _Pod(directory.name, pod, directory, _containers_of(pod))
            record.sandbox_ready = (directory / "ns" / "net").exists()
            for container in record.containers.values():
                runs_dir = directory / "containers" / container.name
                numbers = sorted(int(p.name) for p in runs_dir.glob("*") if p.name.isdigit())
                container.runs = [
                    state.load_run(runs_dir / str(n), f"{record.uid}-{container.name}-{n}")
                    for n in numbers[-2:]
                ]
            self._pods[record.uid] = record


def _image_id(image: str, config: Object) -> str:
    """``<repository>@sha256:<digest of the image config>``, as CRI reports imageID."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    repository = simulated.normalize_image(image).split("@")[0].rsplit(":", 1)[0]
    return f"{repository}@sha256:{digest}"


async def _wait_gone(pid: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            status = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if ") Z " in status:
            return  # exited; waiting for init to reap it
        await asyncio.sleep(0.01)


def check_host(runc_binary: str = "runc") -> str | None:
    """Why this machine cannot run the oci runtime, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "the oci runtime needs root (rootless runc is not supported yet)"
    if shutil.which(runc_binary) is None:
        return f"the oci runtime needs {runc_binary} (Debian package runc)"
    return None


def new_runtime(root: Path, **options: Any) -> OciRuntime:
    """An ``OciRuntime`` under ``root`` with busybox images (busybox.py) until the image store lands."""
    problem = check_host()
    if problem is not None:
        raise RuntimeError(problem)
    return OciRuntime(root, busybox.BusyboxImages(root / "images"), **options)
