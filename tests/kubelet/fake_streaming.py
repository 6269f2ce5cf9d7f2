"""A StreamingRuntime for tests: commands run as local processes, logs are files we write.

Stands in for a real runtime so the kubelet API and the API server's streams
can be tested end to end without runc: ``exec`` starts ``argv`` as a
subprocess of the test (never in a container: only tests use it, with
commands they choose), ``attach`` does the same with the pod's first
container command, and ``port_forward`` connects to ``127.0.0.1:<port>``.
Logs are CRI files the test fills with ``write_log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet import streaming

Object = dict[str, Any]


class LocalProcess:
    """An asyncio subprocess as a ContainerProcess."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.resizes: list[tuple[int, int]] = []

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class FakeStreamingRuntime:
    """Logs under ``root``; exec as local subprocesses; ``running`` says who still runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: set[tuple[str, str]] = set()  # (pod name, container)
        self.processes: list[LocalProcess] = []

    def path(self, pod_name: str, container: str, run: int) -> Path:
        return self.root / pod_name / container / f"{run}.log"

    def write_log(
        self,
        pod_name: str,
        container: str,
        lines: Sequence[tuple[str, str] | tuple[str, str, float]],
        *,
        run: int = 0,
        partial: bool = False,
    ) -> None:
        """Append ``(stream, text[, time])`` entries to the run's CRI log."""
        path = self.path(pod_name, container, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            for entry in lines:
                moment = entry[2] if len(entry) == 3 else time.time()  # type: ignore[misc]
                handle.write(
                    streaming.cri_line(entry[0], entry[1].encode(), moment, partial=partial)
                )

    def log_path(self, pod: Object, container: str, *, previous: bool) -> Path | None:
        restarts, running = 0, False
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            if status.get("name") == container:
                restarts = int(status.get("restartCount") or 0)
                running = "running" in (status.get("state") or {})
        # Run n is the (n+1)th start; backing off, the last run is both current and previous.
        run = restarts - 1 if previous and running else restarts
        return self.path(pod["metadata"]["name"], container, run) if run >= 0 else None

    def is_running(self, pod: Object, container: str) -> bool:
        return (pod["metadata"]["name"], container) in self.running

    async def exec(
        self, pod: Object, container: str, argv: Sequence[str], *, stdin: bool, tty: bool
    ) -> LocalProcess:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if tty else asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise streaming.StreamingError(
                f"failed to exec in container: {argv[0]}: {exc.strerror}", 500
            ) from None
        process = LocalProcess(proc)
        if tty:
            process.stderr = None
        self.processes.append(process)
        return process

    async def attach(self, pod: Object, container: str, *, stdin: bool, tty: bool) -> LocalProcess:
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        return await self.exec(pod, container, spec.get("command") or ["cat"], stdin=stdin, tty=tty)

    async def port_forward(
        self, pod: Object, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)


class StreamingCluster:
    """An API server, node IPAM and one in-process node serving the kubelet API over ``fake``.

    The node is ``kajitori-worker`` at 127.18.0.2 (``kajitori up``'s layout);
    its pods run on the simulated runtime, their streams on ``fake``.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.fake = FakeStreamingRuntime(tmp_path / "logs")
        self.process: Any = None
        self.admin: Any = None
        self.host: Any = None
        self._controllers: Any = None

    async def __aenter__(self) -> StreamingCluster:
        from kajitori.client import rest
        from kajitori.cmd import kubelet
        from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
        from kajitori.controllers import manager

        self.process = APIServerProcess(APIServerConfig(data_dir=self.tmp_path / "data", port=0))
        await self.process.start()
        app, ca = self.process.http.app, self.process.pki.ca
        self.admin = rest.Client.in_process(app, client_cert_pem=self.process.pki.admin.cert_pem)
        self._controllers = manager.ControllerManager(self.admin, controllers=["nodeipam"])
        self._controllers.start()
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        await self.admin.create(rest.SERVICEACCOUNTS, account, namespace="default")
        self.host = await kubelet.start_in_process(app, ca, nodes=1, streams=self.fake)
        return self

    async def __aexit__(self, *exc: object) -> None:
        from kajitori.cmd import kubelet

        for process in self.fake.processes:
            process.kill()
        await kubelet.stop(self.host)
        await self._controllers.stop()
        await self.admin.aclose()
        await self.process.stop()

    @property
    def kubeconfig(self) -> Path:
        path: Path = self.process.config.kubeconfig_path
        return path

    @property
    def node_api(self) -> Any:
        from kajitori.cmd import kubelet

        return kubelet.node_apis(self.host)[0]

    async def run_pod(
        self, name: str, containers: Sequence[str] = ("main",), **spec: Any
    ) -> Object:
        """Create a pod bound to the node and wait until its containers run."""
        from kajitori.client import rest

        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": "kajitori-worker",
                "containers": [{"name": c, "image": "busybox"} for c in containers],
                **spec,
            },
        }
        await self.admin.create(rest.PODS, pod, namespace="default")
        for c in containers:
            self.running.add((name, c))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pod = await self.admin.get(rest.PODS, name, namespace="default")
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if statuses and all("running" in s.get("state", {}) for s in statuses):
                return pod
            await asyncio.sleep(0.05)
        raise AssertionError(f"pod {name} did not start: {pod.get('status')}")

    @property
    def running(self) -> set[tuple[str, str]]:
        return self.fake.running


async def kubectl(
    kubeconfig: Path, *args: str, stdin: bytes | None = None, timeout: float = 30.0
) -> tuple[int, str, str]:
    """Run the real kubectl without blocking the loop the API server runs on."""
    import os

    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
