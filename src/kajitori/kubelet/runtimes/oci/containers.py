"""One run of a container: from image to running, its hooks, its exit, its stop.

``Runs`` is the part of the oci runtime that acts on a single container
(runtime.py decides *which* container needs *what*):

* ``start``: the image from the ``ImageProvider`` (``ErrImagePull`` /
  ``ImagePullBackOff`` on failure), the user and ``runAsNonRoot`` checks
  (``CreateContainerConfigError``), a new run directory with an overlay
  rootfs and config.json (spec.py), ``runc create`` through the shim, ``runc
  start`` and the postStart exec hook. A create or start failure is a run
  that ended at once: exit code 128, reason ``StartError`` and runc's
  message, as containerd reports it, with a ``Failed`` event (``event``);
* exits: a pidfd on each run's shim turns readable once the shim has
  written ``exit.json`` and exited; the run's exit is then read, runc's record
  deleted and the overlay unmounted (``clean_run``; for a run never started
  it deletes until the shim is gone: that shim may still be in ``runc create``);
* ``stop``: preStop exec hook, SIGTERM, the rest of the grace period, SIGKILL.

Events are upstream kubelet's (kuberuntime_container.go), through ``event``
(the kubelet's recorder): ``Created`` ("Created container: c") once runc
created the run, ``Started`` ("Started container c") once it started,
``FailedPostStartHook`` then ``Killing`` when the postStart hook fails,
``Killing`` ("Stopping container c") as a stop begins, ``FailedPreStopHook``
and ``ExceededGracePeriod``. Hook events carry no hook output, as upstream's
(it may hold secrets).

Every change to what a status would show goes through ``changed(pod)``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from kajitori.kubelet.runtimes import interface, simulated
from kajitori.kubelet.runtimes.oci import (
    gate,
    images,
    mounts,
    runc,
    sandbox_network,
    shim,
    spec,
    state,
)
from kajitori.kubelet.volumes import errors as volume_errors

Object = dict[str, Any]

KILL_WAIT_SECONDS = 10.0  # after SIGKILL, how long to wait for the shim's record
HOOK_TIMED_OUT = "hook timed out"  # exec_hook's stderr when the grace period ran out first
CGROUP_PARENT = "kajitori"


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; whether it is set.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation
    that arrives as the event is set, and a worker cancelled that way would
    wait for ever.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()


@functools.cache
def host_capabilities() -> tuple[str, ...]:
    """This process's bounding set: what a privileged container can be given."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return spec.capabilities_of(int(line.split()[1], 16))
    return spec.ALL_CAPABILITIES


def sandbox_of(record: state.Pod) -> spec.Sandbox:
    """Where the pod's pinned namespaces are, and its cgroup parent."""
    nsdir = record.directory / "ns"
    return spec.Sandbox(
        netns=nsdir / "net",
        ipcns=nsdir / "ipc",
        utsns=nsdir / "uts",
        cgroup_parent=f"/{CGROUP_PARENT}/pod{record.uid}",
    )


class EventSink(Protocol):
    """The runtime's event recorder; ``container`` names the container an event is about."""

    def __call__(
        self,
        record: state.Pod,
        event_type: str,
        reason: str,
        message: str,
        /,
        *,
        container: str = "",
    ) -> None: ...


class Runs:
    """Starts, watches and stops container runs for the runtime."""

    def __init__(
        self,
        *,
        runc: runc.Runc,
        images: images.ImageProvider,
        logs: Path,
        changed: Callable[[state.Pod], None],
        backoff: Callable[[int], float],
        background: Callable[[Coroutine[Any, Any, None]], None],
        event: EventSink | None = None,
        rootless: Any = None,
    ) -> None:
        self.runc = runc
        self.images = images
        self.logs = logs
        self._changed = changed
        self._backoff = backoff
        self._background = background
        # The kubelet's event recorder: upstream's container events (Failed on a start error).
        self._event: EventSink = event or (lambda *_, **__: None)
        self._pidfds: set[int] = set()  # shims being watched
        self.gate = gate.StartGate()  # sandbox and container creations at once (gate.py)
        self.rootless = rootless  # rootless.Rootless: rootfs copies and spec changes (0033)
        # The kubelet's volume manager (kubelet/volumes/manager.py): env and mounts per container.
        self.configure: Callable[[Object, Object, Path], Awaitable[Any]] | None = None

    def close(self) -> None:
        """Stop watching shims (the containers run on; a new runtime adopts them)."""
        loop = asyncio.get_running_loop()
        for fd in self._pidfds:
            loop.remove_reader(fd)
            os.close(fd)
        self._pidfds.clear()

    async def start(self, record: state.Pod, container: state.Container) -> None:
        """Start the container's next run; on failure it waits (pull, config) or ends at once."""
        container.reason, container.message = "ContainerCreating", ""
        self._changed(record)
        pulled = await self._pull(record, container)
        if pulled is None:
            return
        rootfs, config = pulled
        settings = self._settings(record, container, rootfs, config)
        if settings is None:
            return
        extras = await self._configure(record, container)
        if extras is None:
            return
        number = container.last.number + 1 if container.last else 0
        run = state.Run(
            number=number,
            container_id=f"{record.uid}-{container.name}-{number}",
            directory=record.directory / "containers" / container.name / str(number),
            image=simulated.normalize_image(str(container.spec.get("image") or "")),
            image_id=_image_id(str(container.spec.get("image") or ""), config),
        )
        await self._forget_old_runs(record, container)
        container.runs.append(run)
        container.reason = ""
        try:
            async with self.gate.slot(gate.CONTAINER):  # as many as cores, before new sandboxes
                if self.rootless is not None:  # no overlay without privilege: a copy per run
                    await self.rootless.make_rootfs(rootfs, run.directory / "rootfs")
                self._prepare(record, container, run, rootfs, settings, extras)
                created = await self.runc.create(
                    run.container_id,
                    bundle=run.directory,
                    log=self._log_file(record, container, run),
                    cgroup=f"{sandbox_of(record).cgroup_parent}/{run.container_id}",
                )
        except (runc.RuncError, OSError, ValueError) as exc:
            self._start_failed(record, container, run, str(exc))
            return
        run.shim_pid, run.init_pid = created.shim_pid, created.init_pid
        self._event(
            record,
            "Normal",
            "Created",
            f"Created container: {container.name}",
            container=container.name,
        )
        self._watch(record, run)
        await self._run_started(record, container, run)

    async def _pull(
        self, record: state.Pod, container: state.Container
    ) -> tuple[Path, Object] | None:
        image = str(container.spec.get("image") or "")
        policy = str(container.spec.get("imagePullPolicy") or "IfNotPresent")
        try:
            field_path = interface.container_field_path(record.pod, container.name)
            pulled = await self.images.ensure(image, policy, record.pod, field_path=field_path)
        except images.ImagePullError as exc:
            backoff = self._backoff(container.pull_failures)
            container.pull_failures += 1
            container.reason = exc.reason or (
                "ErrImagePull" if container.pull_failures == 1 else "ImagePullBackOff"
            )
            container.message = str(exc)
            retry = backoff if exc.retry_after is None else exc.retry_after
            container.retry_at = time.time() + retry
            self._changed(record)
            return None
        container.pull_failures, container.retry_at = 0, None
        return pulled

    def _settings(
        self, record: state.Pod, container: state.Container, rootfs: Path, config: Object
    ) -> tuple[spec.ImageConfig, tuple[int, int, list[int]]] | None:
        """The image config and user; ``None`` (CreateContainerConfigError) when they do not fit."""
        image = spec.ImageConfig.from_config(config)
        try:
            image_uid, image_gid = spec.lookup_user(rootfs, image.user)
            spec.verify_run_as_non_root(
                record.pod, container.spec, image_user=image.user, uid=image_uid
            )
        except ValueError as exc:
            container.reason, container.message = "CreateContainerConfigError", str(exc)
            container.retry_at = time.time() + self._backoff(0)
            self._event(record, "Warning", "Failed", f"Error: {exc}", container=container.name)
            self._changed(record)
            return None
        user = spec.user_of(record.pod, container.spec, image_uid=image_uid, image_gid=image_gid)
        return image, user

    async def _configure(self, record: state.Pod, container: state.Container) -> Object | None:
        """Env and volume mounts from the volume manager; ``None`` when the container must wait.

        A volume not ready keeps it in ContainerCreating, a missing Secret,
        ConfigMap or key is CreateContainerConfigError (kubelet/volumes/errors.py).
        """
        if self.configure is None:
            return {}
        try:
            config = await self.configure(record.pod, container.spec, record.directory)
        except volume_errors.PodConfigError as exc:
            container.reason, container.message = exc.reason, str(exc)
            container.retry_at = time.time() + self._backoff(0)
            self._changed(record)
            return None
        return {"resolved_env": config.env, "volume_mounts": config.mounts}

    def _prepare(
        self,
        record: state.Pod,
        container: state.Container,
        run: state.Run,
        rootfs: Path,
        settings: tuple[spec.ImageConfig, tuple[int, int, list[int]]],
        extras: Object | None = None,
    ) -> None:
        """The bundle: overlay rootfs and config.json."""
        for name in ("rootfs", "upper", "work"):
            (run.directory / name).mkdir(parents=True, exist_ok=True)
        run.save()
        if self.rootless is None:
            mounts.mount_overlay(
                run.directory / "rootfs",
                lower=rootfs,
                upper=run.directory / "upper",
                work=run.directory / "work",
            )
        image, user = settings
        document = spec.container_spec(
            record.pod,
            container.spec,
            image,
            rootfs=run.directory / "rootfs",
            sandbox=sandbox_of(record),
            container_id=run.container_id,
            user=user,
            available=host_capabilities(),
            **(extras or {}),
        )
        document["mounts"].extend(sandbox_network.mounts(record.directory))  # hosts, resolv.conf
        target = container.spec.get("targetContainerName") if container.kind == "ephemeral" else ""
        if target:
            spec.join_pid_namespace(document, _target_pid_namespace(record, str(target)))
        if self.rootless is not None:
            self.rootless.adapt(document, record.directory)
        (run.directory / "config.json").write_text(json.dumps(document))
        stdio = [word for word in ("stdin", "stdinOnce", "tty") if container.spec.get(word)]
        if stdio:  # the shim holds the container's stdin or terminal for attach (shim.py)
            (run.directory / shim.STDIO_FILE).write_text(" ".join(stdio))

    def _log_file(self, record: state.Pod, container: state.Container, run: state.Run) -> Path:
        path = state.log_path(self.logs, record, container.name, run.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _start_failed(
        self, record: state.Pod, container: state.Container, run: state.Run, message: str
    ) -> None:
        now = time.time()
        run.exit = interface.Termination(128, "StartError", now, now, run.uri)
        run.message = message
        run.exit_event().set()
        state.write_json(run.directory / "exit.json", {"createError": message, "finishedAt": now})
        mounts.unmount(run.directory / "rootfs")
        # upstream's kubelet: FailedToStartContainer, "Error: <the runtime's message>".
        self._event(record, "Warning", "Failed", f"Error: {message}", container=container.name)
        self._changed(record)

    async def _run_started(
        self, record: state.Pod, container: state.Container, run: state.Run
    ) -> None:
        hook = ((container.spec.get("lifecycle") or {}).get("postStart") or {}).get("exec")
        container.poststart_pending = hook is not None
        try:
            await self.runc.start(run.container_id, init_pid=run.init_pid or 0)
        except runc.RuncError as exc:
            await self.runc.delete(run.container_id)
            self._start_failed(record, container, run, str(exc))
            return
        run.started_at = time.time()
        run.save()
        message = f"Started container {container.name}"
        self._event(record, "Normal", "Started", message, container=container.name)
        self._changed(record)
        if hook is not None:
            code, out, err = await self.exec_hook(run, hook, timeout=None)
            container.poststart_pending = False
            if code != 0 and run.exit is None:
                run.message = (
                    f"PostStartHookError: exec {hook.get('command')} exited {code}: {err or out}"
                )
                # upstream: no hook output in the event (it may hold secrets), then Killing.
                failed = "FailedPostStartHook"
                self._event(
                    record, "Warning", failed, "PostStartHook failed", container=container.name
                )
                self._event(record, "Normal", "Killing", failed, container=container.name)
                await self.runc.kill(run.container_id, "SIGKILL")
            self._changed(record)

    async def exec_hook(
        self, run: state.Run, hook: Object, *, timeout: float | None
    ) -> tuple[int, str, str]:
        argv = [str(a) for a in hook.get("command") or ()]
        try:
            code, out, err = await self.runc.exec(run.container_id, argv, timeout=timeout or 60.0)
        except TimeoutError:
            return 124, "", HOOK_TIMED_OUT
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    async def _forget_old_runs(self, record: state.Pod, container: state.Container) -> None:
        """Keep only the last run (``lastState``, ``logs --previous``) before adding a new one."""
        while len(container.runs) > 1:
            old = container.runs.pop(0)
            await self.clean_run(old)
            shutil.rmtree(old.directory, ignore_errors=True)
            state.log_path(self.logs, record, container.name, old.number).unlink(missing_ok=True)

    # ----- exits -----------------------------------------------------------------

    def watch_runs(self, record: state.Pod) -> None:
        for container in record.containers.values():
            for run in container.runs:
                if run.exit is None and run.shim_pid is not None:
                    self._watch(record, run)
                elif run.exit is not None and not run.cleaned:
                    self._background(self.clean_run(run))

    def _watch(self, record: state.Pod, run: state.Run) -> None:
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
            self._pidfds.discard(fd)
            self._exited(record, run)

        self._pidfds.add(fd)
        loop.add_reader(fd, readable)

    def _exited(self, record: state.Pod, run: state.Run) -> None:
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
            self._background(self.clean_run(run))

    async def clean_run(self, run: state.Run) -> None:
        """runc's record and the overlay of a run that has ended (its files stay)."""
        if run.cleaned:
            return
        run.cleaned = True
        await self.runc.delete(run.container_id)
        if run.started_at is None:
            # Never started: its shim may still be inside ``runc create`` (a kubelet killed
            # mid-start), and would create the container after this delete. Delete until it ends.
            deadline = time.monotonic() + KILL_WAIT_SECONDS
            while state.shim_alive(run.shim_pid, run.directory) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                await self.runc.delete(run.container_id)
        mounts.unmount(run.directory / "rootfs")

    async def stop(
        self,
        record: state.Pod,
        container: state.Container,
        deadline: float,
        *,
        announce: bool = True,
    ) -> None:
        """``Killing``, preStop, SIGTERM, the rest of the grace period, then SIGKILL.

        ``announce=False`` when the caller recorded its own Killing event (the
        prober's "failed liveness probe, will be restarted").
        """
        run = container.last
        if run is None or run.exit is not None:
            return
        if run.started_at is None:
            await self.runc.delete(run.container_id)
            return
        if announce:
            message = f"Stopping container {container.name}"
            self._event(record, "Normal", "Killing", message, container=container.name)
        hook = ((container.spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        if hook is not None:
            code, _, err = await self.exec_hook(run, hook, timeout=max(deadline - time.time(), 0.1))
            if code != 0 and err != HOOK_TIMED_OUT:  # upstream leaves the output out, as above
                failed = "PreStopHook failed"
                self._event(
                    record, "Warning", "FailedPreStopHook", failed, container=container.name
                )
        await self.runc.kill(run.container_id, "SIGTERM")
        event = run.exit_event()
        if not await wait_event(event, max(deadline - time.time(), 0.0)):
            await self.runc.kill(run.container_id, "SIGKILL")
            if not await wait_event(event, KILL_WAIT_SECONDS):
                message = "Container runtime did not kill the pod within specified grace period."
                self._event(
                    record, "Warning", "ExceededGracePeriod", message, container=container.name
                )


def _target_pid_namespace(record: state.Pod, name: str) -> Path:
    """The PID namespace of the running container ``name`` (a debug container's target).

    ``ValueError`` (a start error, as upstream's runtime fails the start)
    when it does not run.
    """
    found = record.containers.get(name)
    run = found.last if found is not None else None
    if run is None or run.exit is not None or not run.init_pid:
        raise ValueError(f"target container {name} is not running")
    return Path(f"/proc/{run.init_pid}/ns/pid")


def _image_id(image: str, config: Object) -> str:
    """``<repository>@sha256:<digest of the image config>``, as CRI reports imageID."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    repository = simulated.normalize_image(image).split("@")[0].rsplit(":", 1)[0]
    return f"{repository}@sha256:{digest}"
