"""Start and stop a real, single-member etcd on loopback for tests and benchmarks.

Owns: finding the etcd binary, picking free 127.0.0.1 ports, launching etcd
with a private data dir, waiting until it reports healthy, and terminating it.
Tests, benchmarks and the stress command all use this one class, so the flags
etcd runs with (and therefore what our numbers mean) are decided here once.

Durability is left on: fsync stays enabled (no ``--unsafe-no-fsync``), so
throughput measured against this etcd is what a real one-member cluster
delivers on this disk. Only timings that matter to a single member are
shortened (heartbeat and election), which changes how fast it becomes leader,
not what it promises.

The lifecycle is written once, synchronously (``start``/``stop``), because
it only spawns a process and polls a health URL; the async context manager
runs those same methods in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import types
import urllib.error
import urllib.request
from typing import IO, Self

_FALLBACK_BINARY = pathlib.Path("/usr/bin/etcd")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_LOG_TAIL_BYTES = 4000
# Health checks go straight to loopback even if the environment sets a proxy.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EtcdStartError(RuntimeError):
    """etcd exited or did not become healthy; the message carries its log tail."""


def etcd_binary() -> pathlib.Path | None:
    """Where the etcd binary is: on PATH first, else Debian's /usr/bin/etcd."""
    found = shutil.which("etcd")
    if found:
        return pathlib.Path(found)
    if os.access(_FALLBACK_BINARY, os.X_OK):
        return _FALLBACK_BINARY
    return None


def etcd_available() -> bool:
    """Whether an etcd binary can be started here."""
    return etcd_binary() is not None


def _free_port() -> int:
    # The port may be taken again before etcd binds it; start() retries once
    # with fresh ports if etcd exits early.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EtcdServer:
    """A single-member etcd listening on free 127.0.0.1 ports.

    ``data_dir`` must be private to this server (a test's ``tmp_path``); etcd
    keeps its member data in ``data_dir/member-data`` and its output in
    ``data_dir/etcd.log``. Use ``async with EtcdServer(dir) as server`` from
    async code, ``with`` or ``start()``/``stop()`` from sync code. After
    start, ``endpoint`` is ``"127.0.0.1:PORT"`` (gRPC and HTTP on the same port).
    """

    def __init__(self, data_dir: pathlib.Path, *, name: str = "kajitori-test") -> None:
        self.data_dir = data_dir
        self.name = name
        self.log_path = data_dir / "etcd.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._client_port = 0

    @property
    def endpoint(self) -> str:
        """The client endpoint as ``host:port``; only meaningful while running."""
        if self._process is None:
            raise RuntimeError("etcd is not running")
        return f"127.0.0.1:{self._client_port}"

    def start(self) -> None:
        """Launch etcd and block until it is healthy; raises ``EtcdStartError``."""
        if self._process is not None:
            raise RuntimeError("etcd is already running")
        binary = etcd_binary()
        if binary is None:
            raise EtcdStartError("etcd binary not found on PATH or at /usr/bin/etcd")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(2):
            try:
                self._launch(binary)
                self._wait_healthy()
                return
            except EtcdStartError:
                exited = self._process is not None and self._process.poll() is not None
                self.stop()
                if attempt == 1 or not exited:
                    raise

    def stop(self) -> None:
        """Terminate etcd (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _launch(self, binary: pathlib.Path) -> None:
        self._client_port, peer_port = _free_port(), _free_port()
        client_url = f"http://127.0.0.1:{self._client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        argv = [
            str(binary),
            f"--name={self.name}",
            f"--data-dir={self.data_dir / 'member-data'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={self.name}={peer_url}",
            "--initial-cluster-state=new",
            # A lone member: short timings only make it leader sooner.
            "--heartbeat-interval=50",
            "--election-timeout=500",
            # Fewer, smaller raft snapshots on short-lived test data.
            "--snapshot-count=10000",
            "--logger=zap",
            "--log-outputs=stderr",
            "--log-level=warn",
        ]
        # Our ETCD_* settings must not be overridden by the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        url = f"http://127.0.0.1:{self._client_port}/health"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EtcdStartError(
                    f"etcd exited with {self._process.returncode}:\n{self._log_tail()}"
                )
            if _healthy(url):
                return
            time.sleep(0.05)
        raise EtcdStartError(f"etcd not healthy after {_START_TIMEOUT}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            data = self.log_path.read_bytes()[-_LOG_TAIL_BYTES:]
            return data.decode("utf-8", errors="replace")
        return "(no log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _healthy(url: str) -> bool:
    """etcd's /health answers {"health":"true"} once it has a leader and serves reads."""
    try:
        with _NO_PROXY.open(url, timeout=1.0) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return bool(body.get("health") == "true")
