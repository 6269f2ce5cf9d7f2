"""The PVC protection controller: a claim in use by a pod is not deleted under it.

Mirrors upstream's pkg/controller/volume/pvcprotection. The
StorageObjectInUseProtection admission plugin puts the
``kubernetes.io/pvc-protection`` finalizer on every new claim; this
controller adds it to claims that lack it and, once a claim is being
deleted, removes it when no pod uses the claim any more. A pod uses a claim
when a ``persistentVolumeClaim`` volume names it (or its generic ephemeral
volume's claim ``<pod>-<volume>`` is it) and the pod has not finished
(phase not Succeeded/Failed). The pod cache is trusted to say "in use"; an
empty answer is confirmed with a live list, because a pod created a moment
ago may not be in the cache yet (upstream's askAPIServer).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable
from typing import Any

from kajitori.client import events, informer, rest, workqueue
from kajitori.controllers import base
from kajitori.controllers.volume import pv_util

log = logging.getLogger(__name__)

Object = dict[str, Any]


def pod_uses_claim(pod: Object, claim_name: str) -> bool:
    if pv_util.phase(pod) in ("Succeeded", "Failed"):
        return False
    return claim_name in pv_util.pod_claim_names(pod)


def _in_use(pods: Iterable[Object], claim_name: str) -> bool:
    return any(pod_uses_claim(pod, claim_name) for pod in pods)


class PVCProtectionController:
    name = "pvc-protection"

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
        self.claims = informers.informer(rest.PERSISTENTVOLUMECLAIMS)
        self.pods = informers.informer(rest.PODS)
        self.claims.add_event_handler(
            informer.EventHandler(
                on_add=self._enqueue_claim, on_update=lambda _, new: self._enqueue_claim(new)
            )
        )
        self.pods.add_event_handler(
            informer.EventHandler(
                on_update=lambda _, new: self._pod_changed(new), on_delete=self._pod_changed
            )
        )

    async def run(self, workers: int = 1) -> None:
        await asyncio.gather(self.claims.wait_for_sync(), self.pods.wait_for_sync())
        await base.run_workers(self.queue, self.sync, workers, name=self.name)

    def shut_down(self) -> None:
        self.queue.shut_down()

    def _enqueue_claim(self, claim: Object) -> None:
        finalizers = pv_util.meta(claim).get("finalizers") or ()
        deleting = bool(pv_util.meta(claim).get("deletionTimestamp"))
        if deleting == (pv_util.PVC_PROTECTION_FINALIZER in finalizers):
            self.queue.add(informer.meta_namespace_key(claim))

    def _pod_changed(self, obj: Object | informer.DeletedFinalStateUnknown) -> None:
        """A pod that finished or went may have been the last user of a deleting claim."""
        pod = obj.obj if isinstance(obj, informer.DeletedFinalStateUnknown) else obj
        namespace = pv_util.meta(pod).get("namespace", "")
        for name in pv_util.pod_claim_names(pod):
            claim = self.claims.indexer.get(f"{namespace}/{name}")
            if claim is not None and pv_util.meta(claim).get("deletionTimestamp"):
                self.queue.add(f"{namespace}/{name}")

    async def sync(self, key: str) -> None:
        claim = self.claims.indexer.get(key)
        if claim is None:
            return
        finalizers = list(pv_util.meta(claim).get("finalizers") or [])
        protected = pv_util.PVC_PROTECTION_FINALIZER in finalizers
        if not pv_util.meta(claim).get("deletionTimestamp"):
            if not protected:
                await self._write_finalizers(claim, [*finalizers, pv_util.PVC_PROTECTION_FINALIZER])
            return
        if protected and not await self._is_used(claim):
            finalizers.remove(pv_util.PVC_PROTECTION_FINALIZER)
            await self._write_finalizers(claim, finalizers)

    async def _is_used(self, claim: Object) -> bool:
        namespace = pv_util.meta(claim).get("namespace", "")
        name = pv_util.meta(claim).get("name", "")
        cached = self.pods.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        if _in_use(cached, name):
            return True
        live = await self.client.list(rest.PODS, namespace=namespace)
        return _in_use(live.get("items") or [], name)

    async def _write_finalizers(self, claim: Object, finalizers: list[str]) -> None:
        updated = copy.deepcopy(claim)
        updated["metadata"]["finalizers"] = finalizers
        try:
            await self.client.update(rest.PERSISTENTVOLUMECLAIMS, updated)
        except rest.ApiError as exc:
            if not exc.not_found:
                raise
