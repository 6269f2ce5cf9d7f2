"""Streams for the ``oci`` runtime: its CRI log files, and ``runc exec`` with live pipes.

An adapter over what the runtime already shows (``log_path``, the ``runc``
state root and binary) and over the pod's status (``containerID`` is
``runc://<id>``), so the kubelet API (``kubelet/server.py``) serves real
containers without the runtime knowing about HTTP. Attach follows the
running container's log from its end (the shim owns the container's stdio and
copies it there): what the container writes from then on, until it exits; to
an exited container it answers "container ... not found in pod ...", as
upstream's kubelet does.
Not yet here: a terminal (``runc exec -t`` needs a console socket; with
``tty`` the process runs on pipes, stderr merged into stdout), stdin for
attach (containers get none) and port-forward (entering the pod's network
namespace needs ``setns``, which Python has from 3.12).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet import streaming
from kajitori.kubelet.runtimes import interface

Object = dict[str, Any]


class RuncProcess:
    """A ``runc exec`` subprocess as a ContainerProcess."""

    def __init__(self, proc: asyncio.subprocess.Process, *, tty: bool) -> None:
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = None if tty else proc.stderr

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """No terminal yet, so nothing to resize."""

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


def _status(pod: Object, container: str) -> Object:
    status = pod.get("status") or {}
    for entry in (
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
        *(status.get("ephemeralContainerStatuses") or ()),
    ):
        if entry.get("name") == container:
            found: Object = entry
            return found
    return {}


class OciStreaming:
    """The StreamingRuntime of an ``oci`` runtime (``runtimes/oci/runtime.py``)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def log_path(self, pod: Object, container: str, *, previous: bool) -> Path | None:
        status = _status(pod, container)
        restarts = int(status.get("restartCount") or 0)
        running = "running" in (status.get("state") or {})
        # Logs are named by restart count; backing off, the last run is current and previous.
        run = restarts - 1 if previous and running else restarts
        if run < 0:
            return None
        try:
            path: Path = self.runtime.log_path(pod["metadata"]["uid"], container, run)
        except KeyError:  # the runtime does not hold the pod (any more)
            return None
        return path

    def is_running(self, pod: Object, container: str) -> bool:
        return "running" in (_status(pod, container).get("state") or {})

    async def exec(
        self, pod: Object, container: str, argv: Sequence[str], *, stdin: bool, tty: bool
    ) -> RuncProcess:
        status = _status(pod, container)
        container_id = (status.get("containerID") or "").partition("://")[2]
        if not container_id or "running" not in (status.get("state") or {}):
            raise streaming.StreamingError(
                f"container {container} is not running in pod {pod['metadata']['name']}"
            )
        runc = self.runtime.runc
        process = await asyncio.create_subprocess_exec(
            runc.binary,
            "--root",
            str(runc.root),
            "exec",
            container_id,
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if tty else asyncio.subprocess.PIPE,
        )
        return RuncProcess(process, tty=tty)

    async def attach(
        self, pod: Object, container: str, *, stdin: bool, tty: bool
    ) -> streaming.LogAttach:
        uid = pod["metadata"]["uid"]
        current = self._current(uid, container)
        # The runtime's own view, not the pod's status: that lags an exit by a status write.
        if current is None or current.state != "running":
            raise streaming.StreamingError(streaming.not_running(pod, container), 500)
        try:
            path: Path = self.runtime.log_path(uid, container, current.restart_count)
        except KeyError:  # removed since
            raise streaming.StreamingError(streaming.not_running(pod, container), 500) from None

        def running() -> bool:
            now = self._current(uid, container)
            return (
                now is not None
                and now.state == "running"
                and now.container_id == current.container_id
            )

        return streaming.LogAttach(path, running=running, tty=tty)

    def _current(self, uid: str, container: str) -> interface.ContainerStatus | None:
        """The runtime's ContainerStatus of ``container`` now (None if it holds no such)."""
        status = self.runtime.get_pod_status(uid, now=time.time())
        if status is None:
            return None
        every = (*status.init_containers, *status.containers, *status.ephemeral_containers)
        return next((c for c in every if c.name == container), None)

    async def port_forward(
        self, pod: Object, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise streaming.StreamingError("port-forward is not supported by the oci runtime yet")
