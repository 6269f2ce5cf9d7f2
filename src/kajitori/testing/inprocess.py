"""A whole kajitori cluster on a background thread of the calling process.

``InProcessCluster`` is what the pytest plugin (``testing/pytest_plugin.py``)
hands to a test: ``kajitori up`` without the child process. It runs the API
server (``cmd/apiserver.py``) and, when asked, the controller manager, the
scheduler and simulated kubelets (each ``start_in_process`` over the server's
ASGI app, as ``kajitori up`` wires them) on an event loop of its own, on a
daemon thread. The test talks to it as any user would: over HTTPS, through
the kubeconfig written into the cluster's data directory.

Why a thread and not the caller's loop or a child process:

* the test may be synchronous, or run its own event loop (pytest-asyncio,
  kopf, ``asyncio.run``), so the cluster must not depend on being awaited;
* a child process pays the interpreter start and kajitori's imports (about a
  second) for every cluster; on a thread the imports are paid once per test
  session and a cluster is ready in a few hundred milliseconds;
* a crash in the cluster's thread is reported by ``start()`` (it raises) or
  by ``stop()``; it cannot take the test process down.

``testing/cluster.py`` (``kajitori up`` as a child) remains the way to test
the command line itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from kajitori.testing import kubectl

if TYPE_CHECKING:
    from kubernetes import client as k8s_client

    from kajitori.client import rest
    from kajitori.cmd.apiserver import APIServerProcess, APIVersions


class ClusterStartError(RuntimeError):
    """The cluster's thread failed, or was not ready within the timeout."""


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """What a cluster runs besides the API server.

    ``controllers`` starts the controller manager (namespace defaults,
    garbage collection, workloads, ...). ``scheduler`` defaults to the same
    as ``controllers``, as ``kajitori up`` runs both. ``nodes`` registers that
    many simulated nodes (``kajitori up --nodes N``).
    """

    controllers: bool = True
    scheduler: bool | None = None
    nodes: int = 0
    api_versions: APIVersions = "legacy"

    @property
    def runs_scheduler(self) -> bool:
        return self.controllers if self.scheduler is None else self.scheduler


class InProcessCluster:
    """One cluster on its own thread and loop; ``start()``, then ``stop()`` (or ``with``)."""

    def __init__(
        self,
        data_dir: Path,
        options: ClusterOptions | None = None,
        *,
        signing_key_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.options = options or ClusterOptions()
        # A directory holding a service-account signing key (sa.key, sa.pub)
        # to reuse: generating the RSA key is most of a cold start (0.1-0.5 s),
        # and test clusters gain nothing from each having its own.
        self.signing_key_dir = signing_key_dir
        self.url = ""
        # Seconds from start() until the API server answered and every
        # requested component was started.
        self.ready_seconds: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 30.0) -> InProcessCluster:
        """Start the cluster and wait until it serves; ClusterStartError if it does not."""
        if self._thread is not None:
            raise RuntimeError("cluster already started")
        started = time.monotonic()
        self._seed_signing_key()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"kajitori-cluster-{self.data_dir.name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise ClusterStartError(f"kajitori was not ready within {timeout}s")
        if self._error is not None:
            error = self._error
            self.stop()
            raise ClusterStartError(f"kajitori did not start: {error!r}") from error
        self.ready_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every component and the server, and wait for the thread; idempotent."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = None
        if thread.is_alive():
            raise RuntimeError(f"kajitori cluster thread did not stop within {timeout}s")
        if self._error is not None and self.ready_seconds is not None:
            raise RuntimeError(f"kajitori cluster failed while running: {self._error!r}")

    def _seed_signing_key(self) -> None:
        if self.signing_key_dir is None:
            return
        pki_dir = self.data_dir / "pki"
        pki_dir.mkdir(parents=True, exist_ok=True)
        for name in ("sa.key", "sa.pub"):
            target = pki_dir / name
            if not target.exists():
                shutil.copy2(self.signing_key_dir / name, target)

    # The cluster's own thread.

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # raised by start(), or by stop() after a clean start
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = APIServerConfig(
            data_dir=self.data_dir,
            port=0,
            generate_encryption_config=True,
            api_versions=self.options.api_versions,
        )
        server = APIServerProcess(config)
        try:
            await server.start()
            self.url = server.url
            async with contextlib.AsyncExitStack() as components:
                await self._start_components(server, components)
                self._ready.set()
                await self._stop.wait()
        finally:
            await server.stop()

    async def _start_components(
        self, server: APIServerProcess, stack: contextlib.AsyncExitStack
    ) -> None:
        """Kubelets, controllers and scheduler, in ``kajitori up``'s order; stopped in reverse.

        Each is imported only when asked for: a cluster without controllers
        does not pay for importing them.
        """
        assert server.http is not None and server.pki is not None
        app, ca, options = server.http.app, server.pki.ca, self.options
        if options.nodes > 0:
            from kajitori.cmd import kubelet

            host = await kubelet.start_in_process(app, ca, nodes=options.nodes)
            stack.push_async_callback(kubelet.stop, host)
        if options.controllers:
            from kajitori.cmd import controller_manager
            from kajitori.controllers import nodeipam

            manager = controller_manager.start_in_process(
                app,
                ca,
                options={"nodeipam": {"cluster_cidr": nodeipam.cluster_cidr_for(options.nodes)}},
                sign_legacy=server.sign_legacy_token,
            )
            stack.push_async_callback(controller_manager.stop, manager)
        if options.runs_scheduler:
            from kajitori.cmd import scheduler

            component = scheduler.start_in_process(app, ca)
            stack.push_async_callback(scheduler.stop, component)

    # What a test uses.

    def api_client(self) -> k8s_client.ApiClient:
        """A new ``kubernetes`` (official client) ApiClient for this cluster; close it after use."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def rest_client(self) -> rest.Client:
        """A new kajitori ``rest.Client`` over HTTPS, for the caller's event loop."""
        from kajitori.client import kubeconfig, rest

        return rest.Client.from_kubeconfig(kubeconfig.load_kubeconfig(self.kubeconfig))

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; AssertionError on failure when ``check``."""
        return kubectl.run(self.kubeconfig, args, stdin=stdin, check=check, timeout=timeout)

    def __enter__(self) -> InProcessCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url or "not started"
        return f"<InProcessCluster {state} data_dir={self.data_dir} {self.options}>"


def make_signing_key(directory: Path) -> Path:
    """Create a service-account signing key in ``directory``, for ``signing_key_dir``."""
    from kajitori.auth.authn import serviceaccount

    serviceaccount.ensure_signing_key(directory)
    return directory
