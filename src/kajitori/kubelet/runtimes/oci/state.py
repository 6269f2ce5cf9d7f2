"""The oci runtime's records: what it knows of each pod and container, on disk and in memory.

Everything needed to carry on after a kubelet restart is on disk under
the runtime's root, written before the step it describes takes effect::

    pods/<uid>/pod.json                          the pod as last synced
    pods/<uid>/ns/{net,ipc,uts}                  the sandbox's pinned namespaces
    pods/<uid>/containers/<name>/<n>/            run n of a container (its restartCount)
        config.json rootfs/ upper/ work/           the OCI bundle over an overlay rootfs
        run.json                                   image, imageID, startedAt (after start)
        shim.pid init.pid runc.log                 written by the shim and runc
        exit.json                                  written by the shim when init exits
    logs/<namespace>_<name>_<uid>/<container>/<n>.log   CRI-format logs (upstream's layout)

In memory a ``Pod`` holds its ``Container`` records, a ``Container`` keeps
its last two runs (the current one and the one ``lastState`` shows) and a
``Run`` is one run of a container; ``load_run`` rebuilds a run from disk. ``container_status`` turns them into the
interface's ``ContainerStatus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Literal

from kajitori.kubelet.runtimes import interface

Object = dict[str, Any]
Kind = Literal["init", "sidecar", "regular", "ephemeral"]

# A container whose shim vanished without an exit record (upstream's reason and code).
UNKNOWN = ("ContainerStatusUnknown", 137)


@dataclasses.dataclass(slots=True)
class Run:
    """One run of a container; ``exit`` is ``None`` while it may still be running."""

    number: int
    container_id: str
    directory: Path
    image: str = ""
    image_id: str = ""
    started_at: float | None = None
    exit: interface.Termination | None = None
    message: str = ""
    shim_pid: int | None = None
    init_pid: int | None = None
    exited: asyncio.Event | None = None
    cleaned: bool = False  # runc delete and unmount done

    @property
    def uri(self) -> str:
        """The ID as pod status shows it (``<runtime>://<id>``)."""
        return f"runc://{self.container_id}"

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.exit is None

    def save(self) -> None:
        record = {"image": self.image, "imageID": self.image_id, "startedAt": self.started_at}
        write_json(self.directory / "run.json", record)

    def exit_event(self) -> asyncio.Event:
        if self.exited is None:
            self.exited = asyncio.Event()
            if self.exit is not None:
                self.exited.set()
        return self.exited


@dataclasses.dataclass(slots=True)
class Container:
    spec: Object
    kind: Kind
    runs: list[Run] = dataclasses.field(default_factory=list)
    reason: str = ""  # why it waits when it has no current run
    message: str = ""
    retry_at: float | None = None  # image pull or sandbox back-off
    pull_failures: int = 0
    poststart_pending: bool = False
    backoff: tuple[int, int] | None = None  # (run number, back-off exponent after that run)
    backoff_announced: int = -1  # the run whose restart back-off was last reported (BackOff)
    resize_restart: int = -1  # the run a RestartContainer resize stopped: restarted at once

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or "")

    @property
    def last(self) -> Run | None:
        return self.runs[-1] if self.runs else None


@dataclasses.dataclass(slots=True)
class Pod:
    """A pod the runtime holds: its spec, containers and where its worker is."""

    uid: str
    pod: Object
    directory: Path
    containers: dict[str, Container]
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

    def of_kind(self, *kinds: Kind) -> list[Container]:
        """The pod's containers of these kinds, in spec order (init containers first)."""
        return [c for c in self.containers.values() if c.kind in kinds]


def containers_of(pod: Object) -> dict[str, Container]:
    spec_ = pod.get("spec") or {}
    found: dict[str, Container] = {}
    for container in spec_.get("initContainers") or ():
        kind: Kind = "sidecar" if container.get("restartPolicy") == "Always" else "init"
        found[container["name"]] = Container(container, kind)
    for container in spec_.get("containers") or ():
        found[container["name"]] = Container(container, "regular")
    add_ephemeral(found, pod)
    return found


def add_ephemeral(found: dict[str, Container], pod: Object) -> bool:
    """Add the pod's ephemeral containers ``found`` does not hold yet; whether any was new."""
    added = False
    for container in (pod.get("spec") or {}).get("ephemeralContainers") or ():
        if isinstance(container, dict) and container.get("name") not in found:
            found[container["name"]] = Container(container, "ephemeral")
            added = True
    return added


def pod_log_dir(logs: Path, record: Pod) -> Path:
    """Upstream's ``<namespace>_<name>_<uid>`` directory of the pod's logs."""
    meta = record.pod.get("metadata") or {}
    return logs / f"{meta.get('namespace')}_{meta.get('name')}_{record.uid}"


def log_path(logs: Path, record: Pod, container: str, run: int) -> Path:
    """The log of one run: ``<pod log dir>/<container>/<restartCount>.log``, as upstream."""
    return pod_log_dir(logs, record) / container / f"{run}.log"


def write_json(path: Path, value: Object) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)


def read_json(path: Path) -> Object | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def termination_of(record: Object, run: Run) -> interface.Termination:
    """``exit.json`` (written by the shim) as the interface's ``Termination``."""
    started = run.started_at if run.started_at is not None else float(record.get("finishedAt", 0))
    finished = float(record.get("finishedAt") or started)
    if "createError" in record:
        return interface.Termination(128, "StartError", started, finished, run.uri)
    code = int(record.get("exitCode", 255))
    if record.get("oomKilled"):
        reason = "OOMKilled"
    else:
        reason = "Completed" if code == 0 else "Error"
    return interface.Termination(code, reason, started, finished, run.uri)


SHIM_COMM = "kajitori-shim"  # the shim's process name (shim.py sets it)


def shim_alive(pid: int | None, bundle: Path) -> bool:
    """Whether ``pid`` is still the shim of the run in ``bundle`` (pids are reused).

    Reads the process's name and working directory only: /proc/<pid>/cmdline
    would need the process's memory lock, which a process stuck in the
    kernel (an OOM in its cgroup) may hold for a long time.
    """
    if pid is None:
        return False
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return comm == SHIM_COMM and cwd == os.path.realpath(bundle)


def load_run(directory: Path, container_id: str) -> Run:
    """A run as its files describe it; one whose shim died without a record is unknown."""
    run = Run(number=int(directory.name), container_id=container_id, directory=directory)
    saved = read_json(directory / "run.json") or {}
    run.image = str(saved.get("image") or "")
    run.image_id = str(saved.get("imageID") or "")
    started = saved.get("startedAt")
    run.started_at = float(started) if started is not None else None
    with contextlib.suppress(OSError, ValueError):
        run.shim_pid = int((directory / "shim.pid").read_text())
    with contextlib.suppress(OSError, ValueError):
        run.init_pid = int((directory / "init.pid").read_text())
    record = read_json(directory / "exit.json")
    if record is not None:
        run.exit = termination_of(record, run)
        run.message = str(record.get("createError") or "")
    elif not shim_alive(run.shim_pid, directory) or run.started_at is None:
        # Lost: the shim is gone, or the kubelet died between create and start.
        reason, code = UNKNOWN
        at = run.started_at or 0.0
        run.exit = interface.Termination(code, reason, at, at, f"runc://{container_id}")
        run.message = "The container could not be located when the pod was restored"
    return run


def container_status(
    container: Container, *, waiting_reason: str, backoff_until: float | None, pod_name: str
) -> interface.ContainerStatus:
    """The interface's view of ``container``; ``backoff_until`` when it waits to restart."""
    image = str(container.spec.get("image") or "")
    last = container.last
    previous = container.runs[-2].exit if len(container.runs) > 1 else None
    if last is None:
        return interface.ContainerStatus(
            name=container.name,
            image=image,
            image_id="",
            container_id="",
            state="waiting",
            reason=container.reason or waiting_reason,
            message=container.message,
        )
    common: Object = {
        "name": container.name,
        "image": last.image or image,
        "image_id": last.image_id,
        "container_id": last.uri,
        "restart_count": last.number,
    }
    if last.exit is None:
        if last.started_at is None or container.poststart_pending:
            return interface.ContainerStatus(
                **common, state="waiting", reason="ContainerCreating", last_termination=previous
            )
        return interface.ContainerStatus(
            **common, state="running", started_at=last.started_at, last_termination=previous
        )
    if backoff_until is not None:
        seconds = max(backoff_until - last.exit.finished_at, 0.0)
        message = (
            f"back-off {seconds:g}s restarting failed container={container.name} pod={pod_name}"
        )
        return interface.ContainerStatus(
            **common,
            state="waiting",
            reason="CrashLoopBackOff",
            message=message,
            last_termination=last.exit,
        )
    return interface.ContainerStatus(
        **common,
        state="terminated",
        message=last.message,
        termination=last.exit,
        last_termination=previous,
    )
