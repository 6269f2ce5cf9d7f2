"""The PersistentVolume controller ("persistentvolume-binder"): binds claims to volumes.

Mirrors upstream's pkg/controller/volume/persistentvolume (pv_controller.go,
pv_controller_base.go). One work queue carries two kinds of keys,
``("claim", "ns/name")`` and ``("volume", name)`` (upstream keeps two
queues; one suffices because both syncs are short and idempotent).

A claim without ``pv.kubernetes.io/bind-completed`` is unbound:

1. with ``spec.volumeName`` empty, ``pv_util.find_matching_volume`` picks a
   volume (pre-bound to the claim, else the smallest that fits). Claims of a
   ``WaitForFirstConsumer`` class wait for the scheduler: until it sets
   ``volume.kubernetes.io/selected-node`` only volumes already pre-bound to
   them are taken (event ``WaitForFirstConsumer``). With no volume and a
   class, the claim is handed to its class's provisioner through the
   ``volume.kubernetes.io/storage-provisioner`` annotation (event
   ``ExternalProvisioning``); the provisioner creates a volume whose
   claimRef names the claim, and the next sync binds it;
2. with ``spec.volumeName`` set (the user pre-bound it), that volume is
   bound if it is free or already points at the claim.

Binding writes, in upstream's order: the volume's claimRef (and
``bound-by-controller`` when this controller chose it), the volume's phase
``Bound``, the claim's ``volumeName`` with ``bind-completed`` (and
``bound-by-controller``), then the claim's status: ``Bound`` with the
volume's capacity and access modes. A lost compare-and-swap raises, and the
key is retried with backoff.

A volume whose claim is gone (or was replaced by another with the same
name) becomes ``Released`` and is reclaimed: ``Retain`` keeps it,
``Delete`` leaves dynamically provisioned volumes to their provisioner
(annotation ``pv.kubernetes.io/provisioned-by``), and a manual volume
without a deleter plugin goes ``Failed`` as upstream's does. Like upstream,
every claim and volume is looked at again every 15 s; a volume that
becomes free also wakes the claims still waiting, so static binding does
not wait for that resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import Any, Literal

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.volume import pv_util

log = logging.getLogger(__name__)

Object = dict[str, Any]
Key = tuple[Literal["claim", "volume"], str]

# Upstream's --pvclaimbinder-sync-period default.
RESYNC_PERIOD = 15.0


def as_claim(claim: Object) -> Object:
    """Informer objects may lack kind/apiVersion; events need them for involvedObject."""
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1", **claim}


def as_volume(volume: Object) -> Object:
    return {"kind": "PersistentVolume", "apiVersion": "v1", **volume}


def claim_ref(claim: Object) -> Object:
    meta = pv_util.meta(claim)
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def _set_annotation(obj: Object, key: str, value: str) -> None:
    obj.setdefault("metadata", {}).setdefault("annotations", {})[key] = value


class PersistentVolumeController(base.QueueController[Key]):
    name = "persistentvolume-binder"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        resync_period: float = RESYNC_PERIOD,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.resync_period = resync_period
        self.volumes = self.watch(
            informers.informer(rest.PERSISTENTVOLUMES),
            on_add=self._enqueue_volume,
            on_update=self._update_volume,
            on_delete=self._delete_volume,
        )
        self.claims = self.watch(
            informers.informer(rest.PERSISTENTVOLUMECLAIMS),
            on_add=self._enqueue_claim,
            on_update=self._update_claim,
            on_delete=self._delete_claim,
        )
        self.classes = self.watch(informers.informer(rest.STORAGECLASSES))

    # ----- lifecycle -----------------------------------------------------------

    async def work(self, workers: int) -> None:
        resync = asyncio.ensure_future(self._resync_loop())
        try:
            await super().work(workers)
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync

    async def _resync_loop(self) -> None:
        while not self.queue.shutting_down:
            await asyncio.sleep(self.resync_period)
            self._enqueue_all()

    def _enqueue_all(self) -> None:
        for key in self.claims.indexer.keys():
            self.queue.add(("claim", key))
        for key in self.volumes.indexer.keys():
            self.queue.add(("volume", key))

    # ----- event handlers (enqueue keys only) ----------------------------------

    def _enqueue_volume(self, volume: Object) -> None:
        self.queue.add(("volume", informer.meta_namespace_key(volume)))

    def _update_volume(self, old: Object, new: Object) -> None:
        if base.resource_version_changed(old, new):
            self._enqueue_volume(new)

    def _delete_volume(self, volume: Object) -> None:
        # The claim bound to a deleted volume is lost; its sync says so.
        key = pv_util.claim_ref_key(volume)
        if key:
            self.queue.add(("claim", key))

    def _enqueue_claim(self, claim: Object) -> None:
        self.queue.add(("claim", informer.meta_namespace_key(claim)))

    def _update_claim(self, old: Object, new: Object) -> None:
        if base.resource_version_changed(old, new):
            self._enqueue_claim(new)

    def _delete_claim(self, claim: Object) -> None:
        # Its volume is released now; upstream enqueues it the same way.
        name = pv_util.spec(claim).get("volumeName")
        if name:
            self.queue.add(("volume", name))

    # ----- sync ----------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        kind, name = key
        if kind == "claim":
            claim = self.claims.indexer.get(name)
            if claim is not None:
                await self.sync_claim(copy.deepcopy(claim))
            return
        volume = self.volumes.indexer.get(name)
        if volume is not None:
            await self.sync_volume(copy.deepcopy(volume))

    async def sync_claim(self, claim: Object) -> None:
        if pv_util.meta(claim).get("deletionTimestamp") and not pv_util.spec(claim).get(
            "volumeName"
        ):
            return
        if pv_util.ANN_BIND_COMPLETED in pv_util.annotations(claim):
            await self._sync_bound_claim(claim)
        else:
            await self._sync_unbound_claim(claim)

    def _storage_class(self, name: str) -> Object | None:
        return self.classes.indexer.get(name) if name else None

    def _should_delay_binding(self, claim: Object) -> bool:
        """Upstream's IsDelayBindingMode, less claims the scheduler already placed."""
        if pv_util.ANN_SELECTED_NODE in pv_util.annotations(claim):
            return False
        return pv_util.is_delay_binding_class(self._storage_class(pv_util.claim_class(claim)))

    async def _sync_unbound_claim(self, claim: Object) -> None:
        volume_name = pv_util.spec(claim).get("volumeName")
        if not volume_name:
            delay = self._should_delay_binding(claim)
            volume = pv_util.find_matching_volume(
                claim, self.volumes.indexer.list(), delay_binding=delay
            )
            if volume is None:
                await self._no_volume_for(claim, delay=delay)
                return
            await self._bind(copy.deepcopy(volume), claim)
            return
        volume = self.volumes.indexer.get(volume_name)
        if volume is None:
            await self._update_claim_phase(claim, "Pending")
            return
        if not pv_util.spec(volume).get("claimRef") or pv_util.is_volume_bound_to_claim(
            volume, claim
        ):
            await self._bind(copy.deepcopy(volume), claim)
            return
        if pv_util.ANN_BOUND_BY_CONTROLLER in pv_util.annotations(claim):
            await self._lose_claim(
                claim,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            )
            return
        # The user asked for a volume another claim holds: wait for it.
        await self._update_claim_phase(claim, "Pending")

    async def _no_volume_for(self, claim: Object, *, delay: bool) -> None:
        class_name = pv_util.claim_class(claim)
        if delay:
            self.recorder.event(
                as_claim(claim),
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
        elif class_name:
            claim = await self._provision_claim(claim, class_name)
        else:
            self.recorder.event(
                as_claim(claim),
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
        await self._update_claim_phase(claim, "Pending")

    async def _provision_claim(self, claim: Object, class_name: str) -> Object:
        """Hand the claim to its class's (external) provisioner through the annotation."""
        storage_class = self._storage_class(class_name)
        if storage_class is None:
            self.recorder.event(
                as_claim(claim),
                "Warning",
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{class_name}" not found',
            )
            return claim
        provisioner = str(storage_class.get("provisioner") or "")
        if pv_util.annotations(claim).get(pv_util.ANN_STORAGE_PROVISIONER) != provisioner:
            _set_annotation(claim, pv_util.ANN_STORAGE_PROVISIONER, provisioner)
            _set_annotation(claim, pv_util.ANN_BETA_STORAGE_PROVISIONER, provisioner)
            claim = await self.client.update(rest.PERSISTENTVOLUMECLAIMS, claim)
        self.recorder.event(
            as_claim(claim),
            "Normal",
            "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner "
            f"'{provisioner}' or manually by the system administrator. If volume creation is "
            "delayed, please verify that the provisioner is running and correctly registered.",
        )
        return claim

    async def _sync_bound_claim(self, claim: Object) -> None:
        volume_name = pv_util.spec(claim).get("volumeName")
        volume = self.volumes.indexer.get(volume_name) if volume_name else None
        if volume is None:
            await self._lose_claim(
                claim,
                "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            )
            return
        if not pv_util.spec(volume).get("claimRef") or pv_util.is_volume_bound_to_claim(
            volume, claim
        ):
            await self._bind(copy.deepcopy(volume), claim)
            return
        await self._lose_claim(
            claim,
            "ClaimMisbound",
            "Two claims are bound to the same volume, this one is bound incorrectly",
        )

    async def _lose_claim(self, claim: Object, reason: str, message: str) -> None:
        if pv_util.phase(claim) != "Lost":
            self.recorder.event(as_claim(claim), "Warning", reason, message)
        await self._update_claim_phase(claim, "Lost")

    # ----- binding (upstream's bind: four writes, each skipped when already done) ----

    async def _bind(self, volume: Object, claim: Object) -> None:
        # Step 1: the volume's claimRef.
        volume = await self._bind_volume_to_claim(volume, claim)
        # Step 2: the volume's phase.
        await self._update_volume_phase(volume, "Bound")
        # Step 3: the claim's volumeName and annotations.
        claim = await self._bind_claim_to_volume(claim, volume)
        # Step 4: the claim's status.
        await self._update_claim_status_bound(claim, volume)

    async def _bind_volume_to_claim(self, volume: Object, claim: Object) -> Object:
        ref = pv_util.spec(volume).get("claimRef") or {}
        if pv_util.is_volume_bound_to_claim(volume, claim) and ref.get("uid"):
            return volume
        by_controller = not pv_util.is_volume_bound_to_claim(volume, claim)
        volume.setdefault("spec", {})["claimRef"] = claim_ref(claim)
        if by_controller:
            _set_annotation(volume, pv_util.ANN_BOUND_BY_CONTROLLER, "yes")
        return await self.client.update(rest.PERSISTENTVOLUMES, volume)

    async def _bind_claim_to_volume(self, claim: Object, volume: Object) -> Object:
        name = pv_util.meta(volume)["name"]
        changed = False
        if pv_util.spec(claim).get("volumeName") != name:
            claim.setdefault("spec", {})["volumeName"] = name
            _set_annotation(claim, pv_util.ANN_BOUND_BY_CONTROLLER, "yes")
            changed = True
        if pv_util.annotations(claim).get(pv_util.ANN_BIND_COMPLETED) != "yes":
            _set_annotation(claim, pv_util.ANN_BIND_COMPLETED, "yes")
            changed = True
        if not changed:
            return claim
        return await self.client.update(rest.PERSISTENTVOLUMECLAIMS, claim)

    async def _update_claim_status_bound(self, claim: Object, volume: Object) -> None:
        status = claim.get("status") or {}
        wanted = {
            "phase": "Bound",
            "accessModes": list(pv_util.spec(volume).get("accessModes") or []),
            "capacity": dict(pv_util.spec(volume).get("capacity") or {}),
        }
        if all(status.get(k) == v for k, v in wanted.items()):
            return
        claim["status"] = {**status, **wanted}
        await self.client.update_status(rest.PERSISTENTVOLUMECLAIMS, claim)

    async def _update_claim_phase(self, claim: Object, phase: str) -> None:
        if pv_util.phase(claim) == phase:
            return
        claim["status"] = {**(claim.get("status") or {}), "phase": phase}
        if phase == "Pending":
            # Upstream clears what a Bound status reported.
            claim["status"].pop("capacity", None)
            claim["status"].pop("accessModes", None)
        await self.client.update_status(rest.PERSISTENTVOLUMECLAIMS, claim)

    async def _update_volume_phase(
        self, volume: Object, phase: str, *, message: str = ""
    ) -> Object:
        status = volume.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return volume
        volume["status"] = {k: v for k, v in status.items() if k not in ("message", "reason")}
        volume["status"]["phase"] = phase
        if message:
            volume["status"]["message"] = message
        return await self.client.update_status(rest.PERSISTENTVOLUMES, volume)

    # ----- volumes -------------------------------------------------------------

    async def sync_volume(self, volume: Object) -> None:
        ref = pv_util.spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            # Free, or pre-bound by the user to a claim that has not bound yet.
            await self._update_volume_phase(volume, "Available")
            self._wake_waiting_claims(volume)
            return
        claim = await self._claim_for(ref)
        if claim is None:
            await self._release(volume)
            return
        bound_to = pv_util.spec(claim).get("volumeName")
        if not bound_to:
            # Binding is half done; the claim's sync finishes it.
            self.queue.add(("claim", pv_util.claim_key(claim)))
        elif bound_to == pv_util.meta(volume)["name"]:
            await self._update_volume_phase(volume, "Bound")
        elif (
            pv_util.ANN_DYNAMICALLY_PROVISIONED in pv_util.annotations(volume)
            and pv_util.spec(volume).get("persistentVolumeReclaimPolicy") == "Delete"
        ):
            await self._release(volume)
        else:
            await self._unbind(volume)

    async def _claim_for(self, ref: Object) -> Object | None:
        """The claim ``ref`` names, if it is still the same object (same uid).

        On a cache miss the API is asked, so a claim the informer has not
        seen yet is not mistaken for a deleted one (upstream does the same).
        """
        key = f"{ref.get('namespace', '')}/{ref.get('name', '')}"
        claim = self.claims.indexer.get(key)
        if claim is None:
            try:
                claim = await self.client.get(
                    rest.PERSISTENTVOLUMECLAIMS,
                    ref.get("name", ""),
                    namespace=ref.get("namespace", ""),
                )
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise
                return None
        if pv_util.meta(claim).get("uid") != ref.get("uid"):
            return None
        return claim

    async def _unbind(self, volume: Object) -> None:
        """The claim went elsewhere: a controller binding is undone, a user's loses only its uid."""
        volume_spec = volume.setdefault("spec", {})
        if pv_util.ANN_BOUND_BY_CONTROLLER in pv_util.annotations(volume):
            volume_spec.pop("claimRef", None)
            pv_util.meta(volume).get("annotations", {}).pop(pv_util.ANN_BOUND_BY_CONTROLLER, None)
        else:
            volume_spec["claimRef"] = {
                k: v
                for k, v in volume_spec["claimRef"].items()
                if k not in ("uid", "resourceVersion")
            }
        volume = await self.client.update(rest.PERSISTENTVOLUMES, volume)
        await self._update_volume_phase(volume, "Available")

    async def _release(self, volume: Object) -> None:
        if pv_util.phase(volume) not in ("Released", "Failed"):
            volume = await self._update_volume_phase(volume, "Released")
        if pv_util.phase(volume) == "Failed":
            return
        await self._reclaim(volume)

    async def _reclaim(self, volume: Object) -> None:
        """Upstream's reclaimVolume for a Released volume."""
        policy = pv_util.spec(volume).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Retain":
            return
        if policy == "Delete" and pv_util.ANN_DYNAMICALLY_PROVISIONED in pv_util.annotations(
            volume
        ):
            # An external provisioner deletes what it provisioned.
            return
        # No in-tree deleter or recycler plugins exist here.
        if policy == "Delete":
            reason = "VolumeFailedDelete"
            message = (
                f'error getting deleter volume plugin for volume "{pv_util.meta(volume)["name"]}": '
                "no deletable volume plugin matched"
            )
        else:
            reason, message = "VolumeFailedRecycle", "No recycler plugin found for the volume!"
        self.recorder.event(as_volume(volume), "Warning", reason, message)
        await self._update_volume_phase(volume, "Failed", message=message)

    def _wake_waiting_claims(self, volume: Object) -> None:
        """A free volume may be what a Pending claim of its class waits for."""
        if pv_util.spec(volume).get("claimRef"):
            key = pv_util.claim_ref_key(volume)
            self.queue.add(("claim", key))
            return
        wanted = pv_util.volume_class(volume)
        for claim in self.claims.indexer.list():
            if pv_util.phase(claim) == "Pending" and pv_util.claim_class(claim) == wanted:
                self.queue.add(("claim", pv_util.claim_key(claim)))
