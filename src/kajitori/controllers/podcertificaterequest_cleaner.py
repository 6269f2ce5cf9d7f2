"""The PodCertificateRequest cleaner: deletes requests older than 15 minutes.

Mirrors upstream's pkg/controller/certificates/cleaner (PCRCleanerController),
which kube-controller-manager runs by default since PodCertificateRequest
went GA (1.37) as ``podcertificaterequest-cleaner-controller``. A request is
a one-shot exchange between a kubelet and a signer that is expected to end
well within ``threshold`` (15 minutes); every ``polling_interval`` (5
minutes) the cached requests created longer ago than that are deleted, each
with a UID precondition so that a namesake created meanwhile is never
touched. Issued certificates live on in the pods' volumes, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]
Clock = Callable[[], datetime.datetime]

PCRS = rest.Resource(
    "certificates.k8s.io", "v1", "podcertificaterequests", True, "PodCertificateRequest"
)
# Upstream: "We expect all PodCertificateRequest flows to complete faster than this."
THRESHOLD = 15 * 60.0
POLLING_INTERVAL = 5 * 60.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def expired(pcr: Object, now: datetime.datetime, threshold: float) -> bool:
    """Whether ``pcr`` was created at least ``threshold`` seconds before ``now``."""
    created = times.parse_time((pcr.get("metadata") or {}).get("creationTimestamp"))
    if created is None:
        return False
    return now >= created + datetime.timedelta(seconds=threshold)


class PodCertificateRequestCleaner(base.QueueController[str]):
    """Deletes expired PodCertificateRequests; the periods and the clock are injectable."""

    name = "podcertificaterequest-cleaner-controller"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder | None = None,
        threshold: float = THRESHOLD,
        polling_interval: float = POLLING_INTERVAL,
        clock: Clock = _now,
    ) -> None:
        super().__init__()
        self.client = client
        self.threshold = threshold
        self.polling_interval = polling_interval
        self.clock = clock
        self.requests = self.watch(informers.informer(PCRS))
        self._stopped = asyncio.Event()

    async def work(self, workers: int) -> None:
        """Upstream's wait.UntilWithContext(worker, pollingInterval): a pass, then a pause."""
        while not self._stopped.is_set():
            try:
                await self.clean()
            except Exception:
                log.exception("%s: cleaning pass failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.polling_interval)

    def shut_down(self) -> None:
        super().shut_down()
        self._stopped.set()

    async def clean(self) -> None:
        """One pass over the cached requests."""
        now = self.clock()
        for pcr in self.requests.indexer.list():
            if expired(pcr, now, self.threshold):
                await self._delete(pcr)

    async def _delete(self, pcr: Object) -> None:
        meta = pcr["metadata"]
        try:
            await self.client.delete(
                PCRS, meta["name"], namespace=meta.get("namespace", ""), uid=meta.get("uid", "")
            )
        except rest.ApiError as exc:
            # Someone else deleted it (or it was recreated): nothing to clean.
            if exc.not_found or exc.conflict:
                return
            log.warning(
                "unable to delete PodCertificateRequest %s/%s: %s",
                meta.get("namespace"),
                meta["name"],
                exc,
            )
