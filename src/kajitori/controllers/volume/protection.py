"""What the PV and PVC protection controllers share: keep a finalizer on an object while it is used.

Upstream's pvprotection and pvcprotection controllers are one algorithm over
two kinds: the StorageObjectInUseProtection admission plugin puts the
finalizer on every new object; the controller adds it where it is missing
and, once the object is being deleted, removes it as soon as ``in_use``
says nothing uses the object any more. ``ProtectionController`` is that
algorithm; each kind's module says which resource, which finalizer and what
"in use" means.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.volume import pv_util

Object = dict[str, Any]


def needs_sync(obj: Object, finalizer: str) -> bool:
    """A live object without the finalizer, or a deleting one still holding it."""
    deleting = bool(pv_util.meta(obj).get("deletionTimestamp"))
    return deleting == (finalizer in (pv_util.meta(obj).get("finalizers") or ()))


class ProtectionController(base.QueueController[str]):
    """Adds ``finalizer`` to live objects; removes it from deleting ones not ``in_use``."""

    resource: ClassVar[rest.Resource]
    finalizer: ClassVar[str]

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.objects = self.watch(
            informers.informer(self.resource), on_add=self._observe, on_update=self._observe_new
        )

    def _observe(self, obj: Object) -> None:
        if needs_sync(obj, self.finalizer):
            self.enqueue(obj)

    def _observe_new(self, old: Object, new: Object) -> None:
        self._observe(new)

    async def in_use(self, obj: Object) -> bool:
        raise NotImplementedError

    async def sync(self, key: str) -> None:
        obj = self.objects.indexer.get(key)
        if obj is None:
            return
        finalizers = list(pv_util.meta(obj).get("finalizers") or [])
        protected = self.finalizer in finalizers
        if not pv_util.meta(obj).get("deletionTimestamp"):
            if not protected:
                await self._write_finalizers(obj, [*finalizers, self.finalizer])
            return
        if protected and not await self.in_use(obj):
            finalizers.remove(self.finalizer)
            await self._write_finalizers(obj, finalizers)

    async def _write_finalizers(self, obj: Object, finalizers: list[str]) -> None:
        updated = copy.deepcopy(obj)
        updated["metadata"]["finalizers"] = finalizers
        try:
            await self.client.update(self.resource, updated)
        except rest.ApiError as exc:
            if not exc.not_found:
                raise
