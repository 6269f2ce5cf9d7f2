"""Scraping every node's kubelet each metric resolution (metrics-server's pkg/scraper).

Each cycle lists the Nodes through the API (as ``system:metrics-server``),
then asks every node at once for ``/metrics/resource``: over HTTPS at the
node's InternalIP (then Hostname) and its ``status.daemonEndpoints``
kubelet port, with the client certificate of ``ssl_context`` (the API
server's kubelet client, which kubelets authorize), or straight from a
``local`` source when the node's kubelet runs in this process without an
HTTPS listener (``kajitori up`` beyond its served nodes). A node that fails
is logged and left out of the batch, so its metrics vanish, as upstream's do.
Cycles start every ``metric_resolution`` seconds (15 s, upstream's
``--metric-resolution``); each request times out after 10 s (upstream's
``--kubelet-request-timeout``), capped at the resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from kajitori.client import rest
from kajitori.metrics_server import prometheus, storage

log = logging.getLogger(__name__)

Object = dict[str, Any]
# A node's ``/metrics/resource`` text when its kubelet runs in this process (None: ask it).
LocalSource = Callable[[str], bytes | None]

DEFAULT_METRIC_RESOLUTION = 15.0
KUBELET_REQUEST_TIMEOUT = 10.0
DEFAULT_KUBELET_PORT = 10250
# metrics-server's --kubelet-preferred-address-types as kind and kubeadm set it.
ADDRESS_TYPES = ("InternalIP", "Hostname", "InternalDNS", "ExternalDNS", "ExternalIP")


def kubelet_url(node: Object) -> str | None:
    """``https://<address>:<port>`` of the node's kubelet, or None without an address."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or ()}
    address = next((addresses[t] for t in ADDRESS_TYPES if addresses.get(t)), None)
    if not address:
        return None
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    port = int(endpoint.get("Port") or DEFAULT_KUBELET_PORT)
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}"


class MetricsServer:
    """Keeps ``storage`` filled from the kubelets; ``start()``/``stop()``."""

    def __init__(
        self,
        client: rest.Client,
        ssl_context: ssl.SSLContext,
        *,
        metric_resolution: float = DEFAULT_METRIC_RESOLUTION,
        local: LocalSource | None = None,
        store: storage.Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.metric_resolution = metric_resolution
        self.local = local
        self.clock = clock
        self.storage = store if store is not None else storage.Storage(metric_resolution)
        timeout = min(KUBELET_REQUEST_TIMEOUT, metric_resolution)
        self.http = httpx.AsyncClient(verify=ssl_context, timeout=timeout)
        self._task: asyncio.Task[None] | None = None
        # Cycles completed (tests wait on it).
        self.cycles = 0
        self._cycle_done = asyncio.Condition()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics-server")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.http.aclose()

    async def wait_cycles(self, count: int) -> None:
        """Until ``count`` cycles have completed since start."""
        async with self._cycle_done:
            await self._cycle_done.wait_for(lambda: self.cycles >= count)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await self.scrape_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed cycle must not end scraping
                log.exception("metrics-server: scrape cycle failed")
            async with self._cycle_done:
                self.cycles += 1
                self._cycle_done.notify_all()
            await asyncio.sleep(max(0.0, self.metric_resolution - (loop.time() - began)))

    async def scrape_once(self) -> None:
        """One cycle: every node's points, stored as one batch."""
        nodes = (await self.client.list_all(rest.NODES)).get("items") or []
        results = await asyncio.gather(*(self._scrape(node) for node in nodes))
        batch = storage.Batch()
        for result in results:
            if result is not None:
                batch.nodes.update(result.nodes)
                batch.pods.update(result.pods)
        self.storage.store(batch)

    async def _scrape(self, node: Object) -> storage.Batch | None:
        name = str((node.get("metadata") or {}).get("name") or "")
        try:
            text = await self._fetch(name, node)
            if text is None:
                return None
            return storage.decode(name, prometheus.parse(text), now=self.clock())
        except (httpx.HTTPError, OSError, prometheus.ParseError, UnicodeDecodeError) as exc:
            log.warning("metrics-server: failed to scrape node %s: %s", name, exc)
            return None

    async def _fetch(self, name: str, node: Object) -> str | None:
        if self.local is not None and (body := self.local(name)) is not None:
            return body.decode()
        url = kubelet_url(node)
        if url is None:
            log.warning("metrics-server: node %s has no address", name)
            return None
        response = await self.http.get(f"{url}/metrics/resource")
        if response.status_code != 200:
            log.warning(
                "metrics-server: node %s answered %s: %s",
                name,
                response.status_code,
                response.text[:200],
            )
            return None
        return response.text
