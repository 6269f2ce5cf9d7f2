"""StorageObjectInUseProtection: new claims and volumes carry their protection finalizer.

As upstream's plugin (plugin/pkg/admission/storage/storageobjectinuseprotection):
on create, a PersistentVolumeClaim gets ``kubernetes.io/pvc-protection``
and a PersistentVolume ``kubernetes.io/pv-protection`` (once: a finalizer
already present is not repeated). The pvc-protection and pv-protection
controllers remove them when the object is no longer in use, so deleting a
claim a pod mounts, or a volume still bound, waits instead of pulling
storage from under a workload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
_FINALIZERS = {
    "persistentvolumeclaims": PVC_PROTECTION_FINALIZER,
    "persistentvolumes": PV_PROTECTION_FINALIZER,
}


class StorageObjectInUseProtection(Plugin):
    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset(("", plural) for plural in _FINALIZERS)
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or store.info.group != "":
            return
        finalizer = _FINALIZERS.get(store.info.plural)
        meta = obj.get("metadata")
        if finalizer is None or not isinstance(meta, dict):
            return
        finalizers = meta.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = []
        if finalizer not in finalizers:
            meta["finalizers"] = [*finalizers, finalizer]
