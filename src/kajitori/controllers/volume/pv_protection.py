"""The PV protection controller: a volume bound to a claim is not deleted under it.

Mirrors upstream's pkg/controller/volume/pvprotection. The
StorageObjectInUseProtection admission plugin puts the
``kubernetes.io/pv-protection`` finalizer on every new volume; this
controller adds it to volumes that lack it and, once a volume is being
deleted, removes it as soon as the volume is not ``Bound`` (upstream's
isVolumeUsed is exactly that phase check).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from kajitori.client import events, informer, rest, workqueue
from kajitori.controllers import base
from kajitori.controllers.volume import pv_util

log = logging.getLogger(__name__)

Object = dict[str, Any]


class PVProtectionController:
    name = "pv-protection"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue(
            workqueue.default_controller_rate_limiter(), name=self.name
        )
        self.volumes = informers.informer(rest.PERSISTENTVOLUMES)
        self.volumes.add_event_handler(
            informer.EventHandler(
                on_add=self._enqueue_volume, on_update=lambda _, new: self._enqueue_volume(new)
            )
        )

    async def run(self, workers: int = 1) -> None:
        await self.volumes.wait_for_sync()
        await base.run_workers(self.queue, self.sync, workers, name=self.name)

    def shut_down(self) -> None:
        self.queue.shut_down()

    def _enqueue_volume(self, volume: Object) -> None:
        finalizers = pv_util.meta(volume).get("finalizers") or ()
        deleting = bool(pv_util.meta(volume).get("deletionTimestamp"))
        if deleting == (pv_util.PV_PROTECTION_FINALIZER in finalizers):
            self.queue.add(informer.meta_namespace_key(volume))

    async def sync(self, key: str) -> None:
        volume = self.volumes.indexer.get(key)
        if volume is None:
            return
        finalizers = list(pv_util.meta(volume).get("finalizers") or [])
        protected = pv_util.PV_PROTECTION_FINALIZER in finalizers
        if not pv_util.meta(volume).get("deletionTimestamp"):
            if not protected:
                await self._write_finalizers(volume, [*finalizers, pv_util.PV_PROTECTION_FINALIZER])
            return
        if protected and pv_util.phase(volume) != "Bound":
            finalizers.remove(pv_util.PV_PROTECTION_FINALIZER)
            await self._write_finalizers(volume, finalizers)

    async def _write_finalizers(self, volume: Object, finalizers: list[str]) -> None:
        updated = copy.deepcopy(volume)
        updated["metadata"]["finalizers"] = finalizers
        try:
            await self.client.update(rest.PERSISTENTVOLUMES, updated)
        except rest.ApiError as exc:
            if not exc.not_found:
                raise
