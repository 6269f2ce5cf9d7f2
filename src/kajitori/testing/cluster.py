"""A kajitori cluster in a child process, for tests and benchmarks.

``KajitoriCluster`` runs ``python -m kajitori up`` on a free loopback port
with its own data directory, waits until it prints that it is ready, and
exposes the kubeconfig path and ``kubectl`` helpers. Running the real
command line (not an in-process server) means every test also exercises
what a user starts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from kajitori.testing import kubectl

READY_MARKER = "kajitori is ready at "

T = TypeVar("T")


class ClusterStartError(RuntimeError):
    pass


class KajitoriCluster:
    def __init__(
        self,
        data_dir: Path,
        *,
        extra_args: Sequence[str] = (),
        port: int = 0,
        command: str = "up",
    ) -> None:
        self.data_dir = data_dir
        self.command = command
        self.extra_args = tuple(extra_args)
        self.port = port
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.log_path = data_dir / "kajitori.log"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def start(self, timeout: float = 30.0) -> KajitoriCluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kajitori", self.command, "--data-dir", str(self.data_dir)]
        cmd += ["--port", str(self.port), *self.extra_args]
        with self.log_path.open("a") as log:
            # The child keeps its own copy of the descriptor.
            self.process = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith(READY_MARKER):
                self.url = line[len(READY_MARKER) :].split()[0]
                return
        self.stop()
        raise ClusterStartError(
            f"kajitori did not start; log:\n{self.log_path.read_text()[-4000:]}"
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        return code

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster."""
        return kubectl.run(
            self.kubeconfig, args, stdin=stdin, check=check, env=env, timeout=timeout
        )

    def get_json(self, *args: str) -> Any:
        """``kubectl get ARGS -o json``, decoded."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def wait_for_namespace_defaults(self, namespace: str, timeout: float = 20.0) -> None:
        """Wait until the controllers gave ``namespace`` what every namespace gets.

        As upstream, a new namespace receives a ``default`` ServiceAccount and
        the ``kube-root-ca.crt`` ConfigMap shortly after it is created; tests
        comparing a namespace's contents wait for them first.
        """
        wait_until(
            lambda: (
                self.kubectl(
                    "get",
                    "serviceaccount/default",
                    "configmap/kube-root-ca.crt",
                    "-n",
                    namespace,
                    check=False,
                ).returncode
                == 0
            ),
            timeout=timeout,
            what=f"namespace {namespace} defaults",
        )

    def __enter__(self) -> KajitoriCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for(check: Callable[[], T | None], *, timeout: float = 20.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    AssertionError after ``timeout`` seconds, naming ``what`` was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'a condition'}")
        time.sleep(0.05)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
    wait_for(predicate, timeout=timeout, what=what)
