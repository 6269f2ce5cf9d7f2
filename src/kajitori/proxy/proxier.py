"""The proxy's control loop: informers on Services and EndpointSlices, one nftables sync at a time.

Shaped like kube-proxy's ``SyncRunner``: any change to a Service or an
EndpointSlice marks the state dirty; a single task rebuilds the whole
ruleset from the informers' caches (``rules.build_ruleset``) and applies it
only when its text changed, at most once per ``min_sync_period`` (upstream's
``--nftables-min-sync-period``, 1 s there; shorter here because our rebuild
is one small ``nft -f``). A failed apply is retried after ``retry_period``.
The first sync waits for both informers, so a restarting proxy never
programs a cluster with no Services. ``stop()`` removes the table: with the
proxy gone, Service traffic falls to the blackhole route instead of being
sent somewhere stale.

Talks to the cluster only through ``kajitori.client`` (import-linter
contract), as the ``system:kube-proxy`` user in ``kajitori up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kajitori.client import informer, rest
from kajitori.proxy import nftables, rules

log = logging.getLogger(__name__)


class Proxier:
    """Keep ``nft``'s ``kajitori`` table equal to the cluster's Services; start(), await stop()."""

    def __init__(
        self,
        client: rest.Client,
        *,
        nft: nftables.Nftables | None = None,
        cluster_cidr: str = "",
        node_name: str = "",
        min_sync_period: float = 0.05,
        retry_period: float = 1.0,
    ) -> None:
        self.client = client
        self.nft = nft or nftables.Nftables()
        self.cluster_cidr = cluster_cidr
        self.node_name = node_name
        self.min_sync_period = min_sync_period
        self.retry_period = retry_period
        self.factory = informer.InformerFactory(client, transform=informer.strip_managed_fields)
        self.services = self.factory.informer(rest.SERVICES)
        self.slices = self.factory.informer(rest.ENDPOINTSLICES)
        self.ruleset = ""  # the script last applied successfully
        self.syncs = 0
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        handler = informer.EventHandler(
            on_add=self._changed, on_update=self._changed, on_delete=self._changed
        )
        self.services.add_event_handler(handler)
        self.slices.add_event_handler(handler)

    def _changed(self, *_: Any) -> None:
        self._dirty.set()

    def start(self) -> None:
        self.factory.start()
        self._dirty.set()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop syncing and remove the table."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.factory.stop()
        await self.nft.delete()
        self.ruleset = ""

    def build(self) -> str:
        """The ruleset for what the informers hold now."""
        ports = rules.service_ports(
            self.services.indexer.list(), self.slices.indexer.list(), node_name=self.node_name
        )
        return rules.build_ruleset(
            ports, table=self.nft.table, cluster_cidr=self.cluster_cidr, node_name=self.node_name
        )

    async def _run(self) -> None:
        await self.factory.wait_for_sync()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync()
            except nftables.NftError as exc:
                log.error("proxy: sync failed, retrying: %s", exc)
                await asyncio.sleep(self.retry_period)
                self._dirty.set()
                continue
            await asyncio.sleep(self.min_sync_period)

    async def sync(self) -> None:
        """Apply the current ruleset if it differs from the last one applied."""
        script = self.build()
        if script != self.ruleset:
            await self.nft.apply(script)
            self.ruleset = script
        self.syncs += 1
