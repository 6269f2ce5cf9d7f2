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
ago may not be in the cache yet (upstream's askAPIServer). The add/remove
algorithm is ``protection.ProtectionController``'s, shared with PV protection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers.volume import protection, pv_util

Object = dict[str, Any]


def pod_uses_claim(pod: Object, claim_name: str) -> bool:
    if pv_util.phase(pod) in ("Succeeded", "Failed"):
        return False
    return claim_name in pv_util.pod_claim_names(pod)


def _in_use(pods: Iterable[Object], claim_name: str) -> bool:
    return any(pod_uses_claim(pod, claim_name) for pod in pods)


class PVCProtectionController(protection.ProtectionController):
    name = "pvc-protection"
    resource = rest.PERSISTENTVOLUMECLAIMS
    finalizer = pv_util.PVC_PROTECTION_FINALIZER

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__(client=client, informers=informers, recorder=recorder)
        self.claims = self.objects
        self.pods = self.watch(
            informers.informer(rest.PODS),
            on_update=lambda _, new: self._pod_changed(new),
            on_delete=self._pod_changed,
        )

    def _pod_changed(self, pod: Object) -> None:
        """A pod that finished or went may have been the last user of a deleting claim."""
        namespace = pv_util.meta(pod).get("namespace", "")
        for name in pv_util.pod_claim_names(pod):
            claim = self.claims.indexer.get(f"{namespace}/{name}")
            if claim is not None and pv_util.meta(claim).get("deletionTimestamp"):
                self.enqueue_key(f"{namespace}/{name}")

    async def in_use(self, claim: Object) -> bool:
        namespace = pv_util.meta(claim).get("namespace", "")
        name = pv_util.meta(claim).get("name", "")
        cached = self.pods.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        if _in_use(cached, name):
            return True
        live = await self.client.list(rest.PODS, namespace=namespace)
        return _in_use(live.get("items") or [], name)
