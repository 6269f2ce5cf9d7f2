"""Streams for the ``oci`` runtime: its CRI log files, and ``runc exec`` with live pipes.

An adapter over what the runtime already shows (``log_path``, the ``runc``
state root and binary) and over the pod's status (``containerID`` is
``runc://<id>``), so the kubelet API (``kubelet/server.py``) serves real
containers without the runtime knowing about HTTP. Attach to a container
with ``stdin`` or ``tty`` goes through its shim's attach socket
(``ShimAttach``; protocol in runtimes/oci/shim.py): stdin into the
container's own stdin pipe or terminal, terminal sizes, output as the
container writes it. Attach to any other container follows its log from
its end (the shim copies the container's stdio there): what it writes from
then on, until it exits. To an exited container attach answers "container
... not found in pod ...", as upstream's kubelet does.
Exec with ``tty`` runs under a real terminal (``TtyExec``): runc hands its
master over a console socket only when it detaches, so a small reaper
(``shim.py --exec``, conmon's part) runs ``runc exec -d -t``, passes the
master here and exits with the process's exit code; resizes set the
master's window size (the process sees SIGWINCH). Exec without ``tty``
runs ``runc exec`` on pipes.
Not yet here: port-forward (entering the pod's network namespace needs
``setns``, which Python has from 3.12).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import shutil
import socket
import struct
import sys
import tempfile
import termios
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet import streaming
from kajitori.kubelet.runtimes import interface
from kajitori.kubelet.runtimes.oci import shim

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
        """On pipes (exec without tty): no terminal to resize."""

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


EOT = b"\x04"  # a terminal's end-of-file character (VEOF's default)
DRAIN = 1.0  # seconds the output may still take after the exit before it is cut


class TtyExec:
    """An exec under a terminal: its master here, its reaper (``shim.py --exec``) a child.

    ``stdout`` carries the terminal's output (stderr merged, as on any
    terminal), or runc's error message when it could not start the process.
    """

    def __init__(self, reaper: asyncio.subprocess.Process, master: int | None) -> None:
        self.reaper = reaper
        self.master = master
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None
        self._ended = asyncio.Event()
        self._ready: asyncio.Future[bool] | None = None  # a write waiting for room
        if master is None:
            self._ended.set()
        else:
            os.set_blocking(master, False)
            asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: no process holds the terminal any more
            data = b""
        if data:
            self.stdout.feed_data(data)  # type: ignore[union-attr]
        else:
            self._close()

    def _close(self) -> None:
        if self.master is not None:
            asyncio.get_running_loop().remove_reader(self.master)
            self._wake()  # a write waiting for room gives up
            os.close(self.master)
            self.master = None
            self.stdout.feed_eof()  # type: ignore[union-attr]
        self._ended.set()

    async def write_stdin(self, data: bytes) -> None:
        while data and self.master is not None:
            try:
                data = data[os.write(self.master, data) :]
            except BlockingIOError:
                await self._writable()  # the terminal's input queue is full
            except OSError:
                return

    async def _writable(self) -> None:
        """Until the master takes input again, or is closed."""
        assert self.master is not None
        self._ready = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_writer(self.master, self._wake)
        await self._ready

    def _wake(self) -> None:
        if self.master is not None:
            asyncio.get_running_loop().remove_writer(self.master)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(True)

    def close_stdin(self) -> None:
        """A terminal has no end of input to close: its EOF character stands for it."""
        with contextlib.suppress(OSError):
            if self.master is not None:
                os.write(self.master, EOT)

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and 0 <= width < 1 << 16 and 0 <= height < 1 << 16:
            with contextlib.suppress(OSError):
                fcntl.ioctl(
                    self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0)
                )

    async def wait(self) -> int:
        assert self.reaper.stderr is not None
        error = await self.reaper.stderr.read()  # runc's message, when it failed
        code = await self.reaper.wait()
        if self.master is None and error:
            self.stdout.feed_data(error)  # type: ignore[union-attr]
        # What the process wrote last is still in the terminal; a background child
        # that keeps the terminal open must not hold the exec open.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), DRAIN)
        self._close()
        if self.stdout is not None and not self.stdout.at_eof():
            self.stdout.feed_eof()
        return code

    def kill(self) -> None:
        """The client left: hang the terminal up (the process gets SIGHUP), as a closed console."""
        # The reaper stays: it reaps the process when the hangup ends it.
        if self.master is not None:
            self._close()


def _receive_master(channel: socket.socket) -> int | None:
    """The master the reaper sends (blocking; None once it closes without one)."""
    fds = array.array("i")
    with channel:
        _, ancillary, _, _ = channel.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return fds[0] if fds else None


async def exec_tty(runc: Any, container_id: str, argv: Sequence[str]) -> TtyExec:
    """Start ``argv`` in the container under a terminal (see the module docstring)."""
    # In /tmp: the console socket's path must fit the 108 bytes an address holds.
    directory = tempfile.mkdtemp(prefix="kajitori-exec-", dir="/tmp")
    ours, theirs = socket.socketpair()
    try:
        with theirs:
            reaper = await asyncio.create_subprocess_exec(
                sys.executable,
                "-S",
                shim.__file__,
                "--exec",
                str(theirs.fileno()),
                directory,
                runc.binary,
                str(runc.root),
                container_id,
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        master = await asyncio.to_thread(_receive_master, ours)
    finally:
        ours.close()
        shutil.rmtree(directory, ignore_errors=True)
    return TtyExec(reaper, master)


class ShimAttach:
    """An attach through the shim's ``attach.sock``: the container's own stdin and output.

    ``kill`` (the client left) closes only this connection; the shim then
    applies stdinOnce (runtimes/oci/shim.py). ``wait`` gives 0 once the shim
    ends the attach: the container exited, or this attach's stdin ended
    where that ends the attach.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        stdin: bool,
        tty: bool,
    ) -> None:
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self._writer = writer
        self._stdin = stdin
        writer.write(b"i" if stdin else b"o")
        self._task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = await reader.readexactly(5)
                data = await reader.readexactly(int.from_bytes(head[1:], "big"))
                target = self.stderr if head[0] == shim.FRAME_STDERR else self.stdout
                (target or self.stdout).feed_data(data)  # type: ignore[union-attr]
        except (asyncio.IncompleteReadError, OSError):
            return  # the shim ended this attach
        finally:
            self._writer.close()
            for stream in (self.stdout, self.stderr):
                if stream is not None:
                    stream.feed_eof()

    def _send(self, kind: int, payload: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(bytes([kind]) + len(payload).to_bytes(4, "big") + payload)

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin:
            self._send(shim.FRAME_STDIN, data)
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    def close_stdin(self) -> None:
        if self._stdin:
            self._stdin = False
            self._send(shim.FRAME_CLOSE_STDIN, b"")

    def resize(self, width: int, height: int) -> None:
        if 0 <= width < 1 << 16 and 0 <= height < 1 << 16:
            self._send(shim.FRAME_RESIZE, width.to_bytes(2, "big") + height.to_bytes(2, "big"))

    async def wait(self) -> int:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        return 0

    def kill(self) -> None:
        self._writer.close()
        self._task.cancel()


async def connect_attach(bundle: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the shim's attach socket in ``bundle`` (OSError when none listens).

    Through ``/proc/self/fd``: a bundle's own path may pass the 108 bytes a
    socket's address can hold.
    """
    directory = os.open(bundle, os.O_PATH | os.O_DIRECTORY)
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{directory}/{shim.ATTACH_SOCKET}")
    finally:
        os.close(directory)


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
    ) -> RuncProcess | TtyExec:
        status = _status(pod, container)
        container_id = (status.get("containerID") or "").partition("://")[2]
        if not container_id or "running" not in (status.get("state") or {}):
            raise streaming.StreamingError(
                f"container {container} is not running in pod {pod['metadata']['name']}"
            )
        runc = self.runtime.runc
        if tty:
            return await exec_tty(runc, container_id, argv)
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
    ) -> streaming.ContainerProcess:
        uid = pod["metadata"]["uid"]
        current = self._current(uid, container)
        # The runtime's own view, not the pod's status: that lags an exit by a status write.
        if current is None or current.state != "running":
            raise streaming.StreamingError(streaming.not_running(pod, container), 500)
        bundle: Path | None = self.runtime.run_directory(uid, container)
        if bundle is not None and (bundle / shim.STDIO_FILE).exists():
            try:
                reader, writer = await connect_attach(bundle)
            except OSError:  # the shim went with the container since
                raise streaming.StreamingError(streaming.not_running(pod, container), 500) from None
            return ShimAttach(reader, writer, stdin=stdin, tty=tty)
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
