"""What the kubelet's HTTPS API asks of a container runtime, and CRI log files.

``StreamingRuntime`` is the small protocol ``kubelet/server.py`` serves
``/containerLogs``, ``/exec``, ``/attach`` and ``/portForward`` through (upstream:
the CRI's ExecSync/Exec/Attach/PortForward and the log files the runtime
writes under /var/log/pods). Any runtime can offer it: the oci runtime over
runc, ``SimulatedStreaming`` for simulated pods (synthetic logs, a silent
attach, no exec), and a fake in the tests that runs commands as local processes.

Attach follows upstream's kubelet: it reaches only a running container (to
an exited one it answers "container ... not found in pod ...", and ``kubectl
run -i`` falls back to the logs), and its end reports Success whatever the
container's exit code (the CRI streaming server's ServeAttach writes none). A runtime
that answered attach with an error while the container ran made kubectl
print the container's output twice: once from the logs it reads before
attaching, once from the logs it falls back to (their ``sinceTime`` has
whole seconds only).

Log files are in the CRI format (one line each)::

    <RFC3339Nano time> <stdout|stderr> <F|P> <content>

``P`` marks a partial line continued by the next entry, ``F`` a full one.
``read_log`` turns a file into what ``kubectl logs`` prints, with upstream's
options (pkg/kubelet/kuberuntime/logs/logs.go): since, tail, timestamps,
limitBytes and follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from kajitori.kubelet.runtimes import simulated
from kajitori.machinery import times

Object = dict[str, Any]

# How often a followed log file is looked at for more lines.
FOLLOW_POLL_SECONDS = 0.1
_READ_CHUNK = 64 * 1024
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


class StreamingError(Exception):
    """A request the runtime cannot serve; ``code`` is the HTTP status the kubelet answers."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ContainerProcess(Protocol):
    """A process started in (or attached to) a container, with its standard streams."""

    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None  # None with a tty: stderr is merged into stdout

    async def write_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int:
        """The exit code, once the process has ended."""
        ...

    def kill(self) -> None: ...


class StreamingRuntime(Protocol):
    """Logs, exec, attach and port-forward for the containers of running pods."""

    def log_path(self, pod: Object, container: str, *, previous: bool) -> Path | None:
        """The CRI log file of the container's current (or previous) run; None if none."""

    def is_running(self, pod: Object, container: str) -> bool:
        """Whether the container's current run is still going (a followed log goes on)."""

    async def exec(
        self, pod: Object, container: str, argv: Sequence[str], *, stdin: bool, tty: bool
    ) -> ContainerProcess:
        """Start ``argv`` in the container; StreamingError when it cannot."""

    async def attach(
        self, pod: Object, container: str, *, stdin: bool, tty: bool
    ) -> ContainerProcess:
        """The running container's main process streams; StreamingError when it cannot.

        Its ``wait`` gives 0 when the attach ends, whatever the container's exit code.
        """

    async def port_forward(
        self, pod: Object, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to ``port`` in the pod's network namespace."""


# ----- CRI log files ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LogOptions:
    """``/containerLogs`` query parameters (upstream's v1.PodLogOptions)."""

    follow: bool = False
    previous: bool = False
    since: float | None = None  # seconds since the epoch: only entries at or after it
    tail_lines: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LogEntry:
    timestamp: str  # RFC3339Nano, as written
    stream: str  # stdout | stderr
    partial: bool
    content: bytes

    @property
    def time(self) -> float:
        return parse_rfc3339(self.timestamp)


def parse_line(line: bytes) -> LogEntry | None:
    """One CRI log line (with or without its newline); None when it is not one."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    tag = parts[2]
    content = parts[3] if len(parts) == 4 else b""
    return LogEntry(
        parts[0].decode("ascii", "replace"), parts[1].decode(), tag.startswith(b"P"), content
    )


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of an RFC3339 (nano) time; Python keeps microseconds."""
    text = text.replace("Z", "+00:00")
    head, _, rest = text.partition(".")
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.datetime.fromisoformat(text).timestamp()


def format_rfc3339_nano(moment: float) -> str:
    """The CRI log time of ``moment``, to the microsecond as datetime rounds a float."""
    stamp = datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)
    return times.format_nano_time((stamp - _EPOCH) // _MICROSECOND * 1000)


def cri_line(stream: str, content: bytes, moment: float, *, partial: bool = False) -> bytes:
    """One CRI log line, as a runtime writes it."""
    tag = b"P" if partial else b"F"
    return b"%b %b %b %b\n" % (format_rfc3339_nano(moment).encode(), stream.encode(), tag, content)


def render(entry: LogEntry, *, timestamps: bool) -> bytes:
    """What ``kubectl logs`` prints for one entry (a full line ends in a newline)."""
    out = entry.content if entry.partial else entry.content + b"\n"
    return (entry.timestamp.encode() + b" " + out) if timestamps else out


def _tail_start(data: bytes, lines: int) -> int:
    """The offset of the last ``lines`` full lines of ``data``."""
    if lines <= 0:
        return len(data)
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return 0
    return end + 1


async def read_log(
    path: Path, options: LogOptions, *, running: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """The rendered log of ``path``; with ``follow``, also what is written while ``running()``.

    ``tailLines`` counts log entries as upstream does (CRI lines, partial ones
    included), and ``limitBytes`` cuts the output after that many bytes.
    """
    remaining = options.limit_bytes
    with open(path, "rb") as handle:
        data = handle.read()
        offset = len(data)
        if options.tail_lines is not None:
            data = data[_tail_start(data, options.tail_lines) :]
        pending = b""
        while True:
            lines = (pending + data).split(b"\n")
            pending = lines.pop()  # an unfinished line waits for the rest
            # One chunk per read, not per line: each is a write through the kubelet's and the
            # API server's streams (per line, a busy container's log ran at ~1 MB/s).
            chunk: list[bytes] = []
            for line in lines:
                entry = parse_line(line)
                if entry is None or (options.since is not None and entry.time < options.since):
                    continue
                out = render(entry, timestamps=options.timestamps)
                if remaining is not None:
                    out = out[:remaining]
                    remaining -= len(out)
                if out:
                    chunk.append(out)
                if remaining is not None and remaining <= 0:
                    break
            if chunk:
                yield b"".join(chunk)
            if remaining is not None and remaining <= 0:
                return
            if not options.follow:
                return
            more = await _more(handle, path, offset, running)
            if more is None:
                return
            data = more
            offset += len(data)


async def _more(handle: Any, path: Path, offset: int, running: Callable[[], bool]) -> bytes | None:
    """New bytes of a followed file; None once the container stopped and nothing more came."""
    while True:
        handle.seek(offset)
        data: bytes = handle.read(_READ_CHUNK)
        if data:
            return data
        if not running() or not path.exists():
            return None
        await asyncio.sleep(FOLLOW_POLL_SECONDS)


class LogAttach:
    """An attach that follows a running container's CRI log: the output from now on.

    For a runtime whose shim owns the container's stdio and copies it into
    the log (the oci runtime): what the container writes after the attach
    comes as the shim logs it, stdout and stderr apart (both on stdout with a
    terminal), until ``running()`` turns false and the rest of the file is
    read. Stdin is dropped (such containers have none); ``kill`` (the client
    left) ends only this attach.
    """

    def __init__(self, path: Path, *, running: Callable[[], bool], tty: bool) -> None:
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self._running = running
        try:
            offset = path.stat().st_size  # what came before is the logs' to show
        except OSError:
            offset = 0
        self._task = asyncio.ensure_future(self._follow(path, offset))

    async def _follow(self, path: Path, offset: int) -> None:
        pending = b""
        try:
            with open(path, "rb") as handle:
                while True:
                    ended = not self._running()  # looked at before the read: nothing is missed
                    handle.seek(offset)
                    data = handle.read(_READ_CHUNK)
                    offset += len(data)
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    self._feed(lines)
                    if not data and ended:
                        return
                    if not data:
                        await asyncio.sleep(FOLLOW_POLL_SECONDS)
        except OSError:
            return  # the log went with the container
        finally:
            for reader in (self.stdout, self.stderr):
                if reader is not None:
                    reader.feed_eof()

    def _feed(self, lines: list[bytes]) -> None:
        for line in lines:
            entry = parse_line(line)
            if entry is None:
                continue
            target = self.stderr if entry.stream == "stderr" else self.stdout
            out = entry.content if entry.partial else entry.content + b"\n"
            (target or self.stdout).feed_data(out)  # type: ignore[union-attr]

    async def write_stdin(self, data: bytes) -> None:
        """Dropped: the container has no stdin."""

    def close_stdin(self) -> None:
        """Nothing to close."""

    def resize(self, width: int, height: int) -> None:
        """No terminal to resize."""

    async def wait(self) -> int:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        return 0

    def kill(self) -> None:
        self._task.cancel()


# ----- simulated pods ----------------------------------------------------------------


class SimulatedStreaming:
    """Streams for the ``simulated`` runtime: a few synthetic log lines, and no processes.

    Nothing runs in a simulated container, so exec and port-forward answer as
    a kubelet whose runtime cannot (a 400 with the reason). Attach reaches a
    running container's (silent) main process as upstream's would: no output,
    stdin read and dropped, and the stream ends when the timeline ends the run.
    Logs say what the timeline did, written once per container run into a
    temporary directory so they go through the same CRI parsing as real logs.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="kajitori-simulated-logs-"))

    def close(self) -> None:
        """Remove the synthetic logs (the kubelet is stopping)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_path(self, pod: Object, container: str, *, previous: bool) -> Path | None:
        status = _container_status(pod, container)
        if status is None:
            return None
        run = int(status.get("restartCount") or 0) - (1 if previous else 0)
        if run < 0:
            return None
        meta = pod["metadata"]
        path = self.directory / f"{meta['namespace']}_{meta['name']}_{meta['uid']}_{container}"
        path = path / f"{run}.log"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            started = _started_at(status, previous=previous)
            text = cri_line(
                "stdout",
                f"kajitori simulated container {container} of pod "
                f"{meta['namespace']}/{meta['name']} started (run {run})".encode(),
                started,
            )
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(text)
            os.replace(tmp, path)
        return path

    def is_running(self, pod: Object, container: str) -> bool:
        status = _container_status(pod, container) or {}
        return "running" in (status.get("state") or {})

    async def exec(
        self, pod: Object, container: str, argv: Sequence[str], *, stdin: bool, tty: bool
    ) -> ContainerProcess:
        raise StreamingError(_no_processes("exec", pod, container))

    async def attach(
        self, pod: Object, container: str, *, stdin: bool, tty: bool
    ) -> ContainerProcess:
        status = _container_status(pod, container) or {}
        running = (status.get("state") or {}).get("running")
        if running is None:
            raise StreamingError(not_running(pod, container), 500)
        return SilentProcess(_run_ends_in(pod, running), tty=tty)

    async def port_forward(
        self, pod: Object, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise StreamingError(_no_processes("port-forward", pod, ""))


def not_running(pod: Object, container: str) -> str:
    """Upstream kubelet's answer (a 500) to an attach to a container that is not running."""
    meta = pod["metadata"]
    return f"container {container} not found in pod {meta['name']}_{meta['namespace']}"


class SilentProcess:
    """An attached process that writes nothing and ends after ``ends_in`` seconds (None: never).

    Stdin is taken and dropped, as a process that does not read it; ``kill``
    (the client left) only ends this attach, never the container.
    """

    def __init__(self, ends_in: float | None, *, tty: bool) -> None:
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self._ended = asyncio.Event()
        self._timer = (
            None if ends_in is None else asyncio.get_running_loop().call_later(ends_in, self.kill)
        )

    async def write_stdin(self, data: bytes) -> None:
        """Dropped: nothing in a simulated container reads it."""

    def close_stdin(self) -> None:
        """Nothing to close."""

    def resize(self, width: int, height: int) -> None:
        """No terminal to resize."""

    async def wait(self) -> int:
        await self._ended.wait()
        return 0

    def kill(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for reader in (self.stdout, self.stderr):
            if reader is not None:
                reader.feed_eof()
        self._ended.set()


def _run_ends_in(pod: Object, running: Object) -> float | None:
    """Seconds until the simulated run started at ``running.startedAt`` ends (None: never).

    The timeline's rule (``runtimes/simulated.py``): the run lasts the
    runtime annotation's seconds when either annotation is set. ``startedAt``
    has whole seconds, so the end may come up to a second early, when the
    container is about to end anyway.
    """
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    runtime = annotations.get(simulated.RUNTIME_SECONDS_ANNOTATION)
    if runtime is None and annotations.get(simulated.EXIT_CODE_ANNOTATION) is None:
        return None
    try:
        seconds = max(float(runtime or 0), 0.0)
    except ValueError:
        return None  # the timeline ignores a malformed annotation: the container runs on
    started = running.get("startedAt")
    now = datetime.datetime.now(datetime.UTC).timestamp()
    begun = parse_rfc3339(started) if started else now
    return max(begun + seconds - now, 0.0)


def _no_processes(what: str, pod: Object, container: str) -> str:
    meta = pod["metadata"]
    target = f"container {container!r} of " if container else ""
    return (
        f"unable to {what} {target}pod {meta['namespace']}/{meta['name']}: "
        "the simulated runtime runs no processes (use --runtime oci)"
    )


def _container_status(pod: Object, container: str) -> Object | None:
    status = pod.get("status") or {}
    for entry in (
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
        *(status.get("ephemeralContainerStatuses") or ()),
    ):
        if entry.get("name") == container:
            found: Object = entry
            return found
    return None


def _started_at(status: Object, *, previous: bool) -> float:
    state = (status.get("lastState") if previous else status.get("state")) or {}
    for kind in ("running", "terminated"):
        started = (state.get(kind) or {}).get("startedAt")
        if started:
            return parse_rfc3339(started)
    return datetime.datetime.now(datetime.UTC).timestamp()
