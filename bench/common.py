"""Pieces the API benchmark builds on: the server under test, measured cells, a watch client.

Owns how a benchmark starts ``kajitori up`` as a separate process (so the
server and the load generator never share a GIL), times it to ready, reads
its memory and CPU from /proc, and pins it to core 0 while the driver takes
core 1 (the machine has two; ``bench.http_stack`` pins the same way, so its
figures and these compare). It also owns ``measure``, one timed cell of
back-to-back requests with the server's CPU per request beside it, and
``WatchStream``, a watch client cheap enough that 100 of them in the driver
cost far less than the server that feeds them, and ``Profiler``, which
samples the server with py-spy during chosen cells. ``storage_backend`` is
the one way the in-process benchmarks get a backend without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import platform
import re
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import loadgen
from kajitori.testing import cluster

if TYPE_CHECKING:
    from kajitori.storage import interface

SERVER_CORE = 0
CLIENT_CORE = 1
_NAME = re.compile(rb'"name":"([^"]+)"')


def pin(cpu: int, pid: int = 0) -> None:
    """Keep server and load generator on different cores so neither steals the other's time."""
    count = os.cpu_count() or 1
    if hasattr(os, "sched_setaffinity") and count > cpu:
        os.sched_setaffinity(pid, {cpu})


@contextlib.asynccontextmanager
async def storage_backend(kind: str, directory: Path) -> AsyncIterator[interface.Backend]:
    """A ``kind`` ("sqlite" or "etcd") backend under ``directory``, not yet started; closed on exit.

    For etcd, a real one-member etcd is started for it and stopped afterwards.
    Imported here, not at the top: the HTTP benchmarks never load storage.
    """
    etcd = None
    backend: interface.Backend
    if kind == "etcd":
        from kajitori.storage.etcd import EtcdBackend
        from kajitori.testing.etcd_server import EtcdServer

        etcd = EtcdServer(directory / "etcd")
        await asyncio.to_thread(etcd.start)
        backend = EtcdBackend(etcd.endpoint, prefix="/bench")
    else:
        from kajitori.storage.sqlite import SqliteBackend

        backend = SqliteBackend(directory / "kajitori.db")
    try:
        yield backend
    finally:
        await backend.close()
        if etcd is not None:
            await asyncio.to_thread(etcd.stop)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` of the sorted values (0.0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of durations in seconds, in milliseconds ({} when there are none)."""
    ms = [v * 1000 for v in values]
    if not ms:
        return {}
    return {
        "n": len(ms),
        "p50": round(statistics.median(ms), 1),
        "p90": round(percentile(ms, 0.90), 1),
        "p99": round(percentile(ms, 0.99), 1),
        "max": round(max(ms), 1),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "source": _source(),
    }


def _source() -> dict[str, Any]:
    """The commit measured and how many files differed from it (the tree is shared)."""
    repo = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=repo, capture_output=True, text=True
        )
        return done.stdout if done.returncode == 0 else ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD").strip(), "modified_files": len(status.splitlines())}


class Contention:
    """How much CPU processes other than this driver and its children used meanwhile.

    The machine is shared: when other work runs, the figures drop with no
    change to kajitori. Each cell records ``other_cpu_cores``, the cores'
    worth of CPU used by everything else during it (on etcd, etcd is a child
    and so counts as ours), so a noisy cell can be recognised.
    """

    def __init__(self) -> None:
        self._began = time.perf_counter()
        self._busy, self._ours = _machine_busy_seconds(), _our_cpu_seconds()

    def other_cpu_cores(self) -> float:
        elapsed = time.perf_counter() - self._began
        busy = _machine_busy_seconds() - self._busy
        ours = _our_cpu_seconds() - self._ours
        return round(max(busy - ours, 0.0) / max(elapsed, 1e-9), 2)


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    guest = sum(fields[8:10])  # already counted in user and nice
    return (sum(fields) - idle - guest) / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    """CPU seconds of this process and its live children (server, etcd, py-spy)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid_fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == me or pid_fields[1] == me:
            total += (int(pid_fields[11]) + int(pid_fields[12])) / tick
    return total


class ServerProcess:
    """``python -m kajitori up`` (or another server command) in a child process, timed from
    spawn to ready."""

    def __init__(
        self,
        data_dir: Path,
        *,
        extra_args: Sequence[str] = (),
        core: int | None = SERVER_CORE,
        command: str = "up",
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = tuple(extra_args)
        # "up": the whole control plane in one process; "apiserver": the API server alone.
        self.command = command
        self.core = core  # None: every core (a real node's kubelet, runc and shims share them)
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.ready_line_seconds = 0.0
        self.first_request_seconds = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        """Spawn, wait for the ready line, then for the first successful HTTPS request."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kajitori", self.command, "--data-dir", str(self.data_dir)]
        cmd += ["--port", "0", *self.extra_args]
        began = time.perf_counter()
        with (self.data_dir / "server.log").open("a") as log:
            self.process = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
            )
        if self.core is not None:
            pin(self.core, self.process.pid)
        self.port = self._read_ready_line(timeout)
        self.ready_line_seconds = time.perf_counter() - began
        self._first_request(timeout)
        self.first_request_seconds = time.perf_counter() - began

    def _read_ready_line(self, timeout: float) -> int:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith(cluster.READY_MARKER):
                url = line[len(cluster.READY_MARKER) :].split()[0]
                return int(url.rsplit(":", 1)[1])
        self.stop()
        log = (self.data_dir / "server.log").read_text()[-4000:]
        raise RuntimeError(f"kajitori did not start; log:\n{log}")

    def _first_request(self, timeout: float) -> None:
        context = client_ssl_context(self.data_dir)
        deadline = time.monotonic() + timeout
        while True:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=5)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            finally:
                conn.close()
            time.sleep(0.01)

    def status_kb(self, field: str) -> int:
        """A ``/proc/PID/status`` memory field (VmRSS, VmHWM) in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far, all threads."""
        return sum(self.cpu_times())

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds the server has used so far, all threads."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> int:
    """SIGTERM ``process`` if it still runs, SIGKILL it after ``timeout`` s; its exit status."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def client_ssl_context(data_dir: Path) -> ssl.SSLContext:
    """Trust the cluster CA and present the admin client certificate ``kajitori up`` wrote."""
    pki = data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


async def measure(
    server: ServerProcess,
    context: ssl.SSLContext,
    *,
    concurrency: int,
    seconds: float,
    make_request: loadgen.RequestFactory,
    warmup: int = 10,
) -> dict[str, Any]:
    """One cell: a short warm-up, then ``seconds`` of back-to-back requests on keep-alive."""
    if warmup:
        await loadgen.run(
            host="127.0.0.1", port=server.port, ssl_context=context, connections=concurrency,
            total_requests=concurrency * warmup, make_request=make_request,
        )  # fmt: skip
    user_before, sys_before = server.cpu_times()
    contention = Contention()
    result = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=concurrency,
        duration=seconds, make_request=make_request,
    )  # fmt: skip
    row: dict[str, Any] = {"concurrency": concurrency, **result.summary()}
    user_after, sys_after = server.cpu_times()
    server_cpu = user_after - user_before + sys_after - sys_before
    row["server_cpu_us_per_request"] = round(server_cpu / max(result.requests, 1) * 1e6, 1)
    # Pinned to one core, a share near 1.0 means the server, not the client, is the limit.
    row["server_cpu_share"] = round(server_cpu / max(result.seconds, 1e-9), 2)
    row["server_cpu_sys_share"] = round((sys_after - sys_before) / max(server_cpu, 1e-9), 2)
    row["other_cpu_cores"] = contention.other_cpu_cores()
    return row


class WatchStream:
    """One watch connection read from a reader callback on a non-blocking TLS socket.

    It de-chunks the response and, for each event, records the object's name
    and the ``time.perf_counter()`` of the read that completed it. Like
    ``loadgen``, it keeps TLS in C (an ``ssl.SSLSocket``, not asyncio's
    Python record layer) so 100 streams cost the driver little.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._in_body = False
        self.received: list[tuple[bytes, float]] = []
        self.closed = False

    @classmethod
    def open(cls, context: ssl.SSLContext, *, port: int, path: str) -> WatchStream:
        """Connect and send the request, blocking (setup is not measured)."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = context.wrap_socket(raw, server_hostname="localhost")
        sock.sendall(loadgen.encode_request(("GET", path, (), b""), host=f"127.0.0.1:{port}"))
        sock.setblocking(False)
        stream = cls(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), stream._on_readable)
        return stream

    def close(self) -> None:
        if not self.closed:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self.closed = True

    def _on_readable(self) -> None:
        try:
            while True:
                data = self._sock.recv(262144)
                if not data:
                    self.close()
                    return
                self._buffer += data
                if not self._sock.pending():
                    break
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except OSError:
            self.close()
            return
        self._parse(time.perf_counter())

    def _parse(self, now: float) -> None:
        buffer = self._buffer
        if not self._in_body:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"watch failed: {bytes(buffer[:300])!r}")
            del buffer[: end + 4]
            self._in_body = True
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buffer[:line_end]), 16)
            if len(buffer) < line_end + 2 + size + 2:
                return
            chunk = bytes(buffer[line_end + 2 : line_end + 2 + size])
            del buffer[: line_end + 2 + size + 2]
            # A chunk may carry several events, one per line (the server writes the
            # events ready together as one chunk), as any watch client reads them.
            for line in chunk.split(b"\n"):
                match = _NAME.search(line)  # metadata.name is the first "name" key in an event
                if match:
                    self.received.append((match.group(1), now))


# -- profiling -----------------------------------------------------------------


class Profiler:
    """py-spy on the server during the concurrency-64 create, get and watch cells, when asked.

    Samples are taken without pausing the server (``--nonblocking``) and only
    from the thread holding the GIL (``--gil``): pausing halves the server's
    throughput, and without ``--gil`` py-spy counts thread-pool workers
    blocked on their queue as busy. The shares are therefore of the time the
    GIL was held; time in OpenSSL, SQLite and the kernel with the GIL
    released is not in them (``server_cpu_sys_share`` in each row shows the
    kernel's part).
    """

    PROFILED = frozenset({"create", "get", "watch"})

    def __init__(self, directory: Path | None, backend: str) -> None:
        self.directory = directory
        self.backend = backend
        self.summaries: dict[str, Any] = {}

    def sampling(
        self, server: ServerProcess, operation: str, concurrency: int, seconds: float
    ) -> _Sampling:
        wanted = self.directory is not None and operation in self.PROFILED and concurrency == 64
        return (
            _Sampling(self, server, operation, seconds)
            if wanted
            else _Sampling(None, server, operation, seconds)
        )


class _Sampling:
    def __init__(
        self,
        profiler: Profiler | None,
        server: ServerProcess,
        operation: str,
        seconds: float,
    ) -> None:
        self._profiler = profiler
        self._server = server
        self._operation = operation
        self._seconds = max(1, int(seconds))
        self._process: subprocess.Popen[bytes] | None = None
        self._output = Path()

    def __enter__(self) -> None:
        if self._profiler is None or self._profiler.directory is None:
            return
        self._profiler.directory.mkdir(parents=True, exist_ok=True)
        self._output = self._profiler.directory / f"{self._profiler.backend}-{self._operation}.txt"
        self._process = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self._server.pid), "--duration", str(self._seconds),
             "--rate", "250", "--nonblocking", "--gil", "--format", "raw",
             "--output", str(self._output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def __exit__(self, *exc_info: object) -> None:
        if self._process is None or self._profiler is None:
            return
        self._process.wait(timeout=self._seconds + 30)
        summary = summarise_profile(self._output)
        self._profiler.summaries[self._operation] = summary
        print(f"\n{self._profiler.backend} {self._operation} c=64, {summary['samples']} samples")
        for label in ("self", "inclusive"):
            print(f"  top {label}:")
            for name, share in summary[label][:15]:
                print(f"    {share:6.1%}  {name}")


# Frames on every stack (interpreter start-up, the event loop, thread start):
# they would head the inclusive ranking and say nothing.
_FRAMEWORK = frozenset(
    {
        "<module> (kajitori/__main__.py)", "main (kajitori/cli/main.py)",
        "_run_module_as_main (<frozen runpy>)", "_run_code (<frozen runpy>)",
        "run (asyncio/runners.py)", "Runner.run (asyncio/runners.py)",
        "BaseEventLoop.run_until_complete (asyncio/base_events.py)",
        "BaseEventLoop.run_forever (asyncio/base_events.py)",
        "BaseEventLoop._run_once (asyncio/base_events.py)", "Handle._run (asyncio/events.py)",
        "Thread._bootstrap (threading.py)", "Thread._bootstrap_inner (threading.py)",
        "Thread.run (threading.py)",
    }
)  # fmt: skip


def summarise_profile(path: Path) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    # py-spy can cut a frame name mid-character; a replaced byte still counts the sample.
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames) - _FRAMEWORK:
            inclusive[frame] = inclusive.get(frame, 0) + count

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:40]
        return [(name, round(n / max(total, 1), 4)) for name, n in ranked]

    return {"samples": total, "self": top(own), "inclusive": top(inclusive)}


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` → ``name (file.py)``: lines folded into functions."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})" if where else name
