"""The PV protection controller: a volume bound to a claim is not deleted under it.

Mirrors upstream's pkg/controller/volume/pvprotection. The
StorageObjectInUseProtection admission plugin puts the
``kubernetes.io/pv-protection`` finalizer on every new volume; this
controller adds it to volumes that lack it and, once a volume is being
deleted, removes it as soon as the volume is not ``Bound`` (upstream's
isVolumeUsed is exactly that phase check). The add/remove algorithm is
``protection.ProtectionController``'s, shared with PVC protection.
"""

from __future__ import annotations

from typing import Any

from kajitori.client import rest
from kajitori.controllers.volume import protection, pv_util

Object = dict[str, Any]


class PVProtectionController(protection.ProtectionController):
    name = "pv-protection"
    resource = rest.PERSISTENTVOLUMES
    finalizer = pv_util.PV_PROTECTION_FINALIZER

    async def in_use(self, obj: Object) -> bool:
        return pv_util.phase(obj) == "Bound"
