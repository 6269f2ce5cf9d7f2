"""The resourceclaim controller: a pod's template claims made, stale reservations released.

Mirrors upstream's pkg/controller/resourceclaim (kube-controller-manager's
``resourceclaim-controller``, ServiceAccount ``resource-claim-controller``).
Two kinds of keys share one queue:

* ``pod:<ns>/<name>`` — for each ``spec.resourceClaims[]`` entry with a
  ``resourceClaimTemplateName`` and no claim yet, create one from the
  template: ``generateName`` ``<pod>-<claim>-`` (each part cut to 32
  characters when the whole would pass 63), the template's labels and
  annotations plus ``resource.kubernetes.io/pod-claim-name: <claim>``, an
  ownerReference to the pod (``controller`` and ``blockOwnerDeletion``), and
  the template's spec. The names go into ``status.resourceClaimStatuses``.
  A claim already made for the entry (found by owner and annotation, also
  among the claims this controller created but its cache does not show yet)
  is reused, never made twice. A scheduled pod whose allocated claim does not
  list it yet is added to ``status.reservedFor`` (a scheduler unaware of DRA
  placed it). Failures are a ``FailedResourceClaimCreation`` Warning on the pod.
* ``claim:<ns>/<name>`` — drop ``status.reservedFor`` entries of pods that are
  gone (seen deleted, or absent also from a live read), replaced (other UID)
  or done (terminal, or deleted before being scheduled). When the last one
  goes, the allocation the scheduler made (the claim carries
  ``resource.kubernetes.io/delete-protection``) is cleared and the finalizer
  removed, so the devices are free again. An unreserved claim generated for
  a pod that is replaced or done is deleted; one whose pod is simply not in
  the cache is left to the garbage collector, as upstream does.

Pods enqueue themselves when they need a claim or a reservation, and the
claims they hold when they are done; claims enqueue themselves and the pods
that use them (found through an index of pods by claim).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, ClassVar

from kajitori.api.resource_v1 import podclaims
from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]

POD_PREFIX = "pod:"
CLAIM_PREFIX = "claim:"
# Upstream's index names: pods by the claims they use, claims by their owning pod's UID.
POD_CLAIM_INDEX = "pod-resource-claim-index"
CLAIM_OWNER_INDEX = "claim-pod-owner-index"
FAILED_CREATION = "FailedResourceClaimCreation"
# Upstream's uidCache keeps this many UIDs of pods seen deleted.
MAX_DELETED_UIDS = 500
NAME_LIMIT = 63
PART_LIMIT = 32


def generate_name(pod_name: str, pod_claim_name: str) -> str:
    """The ``generateName`` of a claim made for ``pod_name``'s ``pod_claim_name``."""
    name = f"{pod_name}-{pod_claim_name}"
    if len(name) > NAME_LIMIT:
        name = f"{pod_name[:PART_LIMIT]}-{pod_claim_name[:PART_LIMIT]}"
    return name + "-"


def claim_from_template(pod: Object, pod_claim: Object, template: Object) -> Object:
    """The claim upstream's controller creates for ``pod_claim`` from ``template``."""
    pod_meta = pod["metadata"]
    template_meta = (template.get("spec") or {}).get("metadata") or {}
    annotations = {
        **(template_meta.get("annotations") or {}),
        podclaims.POD_CLAIM_NAME_ANNOTATION: pod_claim.get("name", ""),
    }
    meta: Object = {
        "generateName": generate_name(pod_meta["name"], pod_claim.get("name", "")),
        "namespace": pod_meta.get("namespace", ""),
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod_meta["name"],
                "uid": pod_meta.get("uid", ""),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "annotations": annotations,
    }
    if template_meta.get("labels"):
        meta["labels"] = dict(template_meta["labels"])
    return {
        "apiVersion": rest.RESOURCECLAIMS.api_version,
        "kind": "ResourceClaim",
        "metadata": meta,
        "spec": copy.deepcopy((template.get("spec") or {}).get("spec") or {}),
    }


def index_pod_by_claims(pod: Object) -> list[str]:
    """``<ns>/<claim>`` for each claim the pod names (entries not yet named are skipped)."""
    namespace = pod["metadata"].get("namespace", "")
    found = []
    for entry in podclaims.pod_claims(pod):
        try:
            name, _ = podclaims.claim_name(pod, entry)
        except podclaims.ClaimNameError:
            continue
        if name:
            found.append(f"{namespace}/{name}")
    return found


def _owner_pod(claim: Object) -> Object | None:
    for ref in claim["metadata"].get("ownerReferences") or ():
        if ref.get("controller") and ref.get("apiVersion") == "v1" and ref.get("kind") == "Pod":
            owner: Object = ref
            return owner
    return None


def index_claim_by_owner(claim: Object) -> list[str]:
    owner = _owner_pod(claim)
    return [owner["uid"]] if owner and owner.get("uid") else []


class ResourceClaimController(base.QueueController[str]):
    """Creates template claims for pods and releases the claims of pods that are done."""

    name: ClassVar[str] = "resource_claim"

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
        self.pods = self.watch(
            informers.informer(rest.PODS),
            on_add=lambda pod: self._pod_changed(pod, deleted=False),
            on_update=lambda _, pod: self._pod_changed(pod, deleted=False),
            on_delete=lambda pod: self._pod_changed(pod, deleted=True),
        )
        self.claims = self.watch(
            informers.informer(rest.RESOURCECLAIMS),
            on_add=lambda claim: self._claim_changed(claim, deleted=False),
            on_update=lambda _, claim: self._claim_changed(claim, deleted=False),
            on_delete=lambda claim: self._claim_changed(claim, deleted=True),
        )
        self.templates = self.watch(informers.informer(rest.RESOURCECLAIMTEMPLATES))
        self.pods.indexer.add_indexers({POD_CLAIM_INDEX: index_pod_by_claims})
        self.claims.indexer.add_indexers({CLAIM_OWNER_INDEX: index_claim_by_owner})
        # UIDs of pods seen deleted: their reservations can go without asking the API.
        self._deleted: dict[str, None] = {}
        # Claims created here that the cache may not show yet (upstream's mutation
        # cache), so a retry after a failed pod status write reuses them.
        self._created: dict[str, Object] = {}

    # ----- event handlers -----------------------------------------------------------

    def _pod_changed(self, pod: Object, *, deleted: bool) -> None:
        if not podclaims.pod_claims(pod):
            return
        namespace = pod["metadata"].get("namespace", "")
        if deleted:
            self._remember_deleted(pod["metadata"].get("uid", ""))
        if podclaims.is_pod_done(pod, deleted=deleted):
            for claim_key in index_pod_by_claims(pod):
                self.queue.add(CLAIM_PREFIX + claim_key)
        if not deleted and self._pod_needs_work(pod):
            self.queue.add(f"{POD_PREFIX}{namespace}/{pod['metadata']['name']}")

    def _remember_deleted(self, uid: str) -> None:
        self._deleted[uid] = None
        while len(self._deleted) > MAX_DELETED_UIDS:
            del self._deleted[next(iter(self._deleted))]

    def _pod_needs_work(self, pod: Object) -> bool:
        """Upstream's podNeedsWork: a claim to create, or a scheduled pod to reserve."""
        if pod["metadata"].get("deletionTimestamp"):
            return False
        namespace = pod["metadata"].get("namespace", "")
        for entry in podclaims.pod_claims(pod):
            try:
                name, check_owner = podclaims.claim_name(pod, entry)
            except podclaims.ClaimNameError:
                return True
            if name is None:
                return False
            claim = self.claims.indexer.get(f"{namespace}/{name}")
            if claim is None:
                if entry.get("resourceClaimTemplateName"):
                    return True
                return False  # the user has to create it
            if check_owner and podclaims.is_for_pod(pod, claim) is not None:
                return False  # a conflicting claim the user has to remove
            if not (pod.get("spec") or {}).get("nodeName"):
                continue
            if podclaims.allocation(claim) and not podclaims.is_reserved_for(pod, claim):
                return True
        return False

    def _claim_changed(self, claim: Object, *, deleted: bool) -> None:
        key = informer.meta_namespace_key(claim)
        if not deleted:
            # Also at start: every claim is checked for stale reservations.
            self.queue.add(CLAIM_PREFIX + key)
        for pod in self.pods.indexer.by_index(POD_CLAIM_INDEX, key):
            self._pod_changed(pod, deleted=False)

    # ----- sync -----------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(POD_PREFIX):
            await self._sync_pod(key.removeprefix(POD_PREFIX))
        elif key.startswith(CLAIM_PREFIX):
            await self._sync_claim(key.removeprefix(CLAIM_PREFIX))

    async def _sync_pod(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        made: dict[str, str] = {}
        for entry in podclaims.pod_claims(pod):
            try:
                await self._handle_claim(pod, entry, made)
            except Exception as exc:
                message = f"PodResourceClaim {entry.get('name', '')}: {_text(exc)}"
                self.recorder.event(_as_pod(pod), "Warning", FAILED_CREATION, message)
                raise RuntimeError(f"pod {key}, {message}") from exc
        if made:
            await self._record_claim_names(pod, made)
        if (pod.get("spec") or {}).get("nodeName"):
            await self._reserve_for_scheduled_pod(pod)

    async def _handle_claim(self, pod: Object, entry: Object, made: dict[str, str]) -> None:
        """Create the entry's claim from its template unless it is named already."""
        try:
            podclaims.claim_name(pod, entry)
            return
        except podclaims.ClaimNameError:
            if not entry.get("resourceClaimTemplateName"):
                raise
        claim = self._find_pod_claim(pod, entry)
        if claim is None:
            namespace = pod["metadata"].get("namespace", "")
            template_name = entry["resourceClaimTemplateName"]
            template = self.templates.indexer.get(f"{namespace}/{template_name}")
            if template is None:
                raise LookupError(
                    f'resource claim template "{template_name}": '
                    f'resourceclaimtemplate.resource.k8s.io "{template_name}" not found'
                )
            wanted = claim_from_template(pod, entry, template)
            try:
                claim = await self.client.create(rest.RESOURCECLAIMS, wanted, namespace=namespace)
            except rest.ApiError as exc:
                raise RuntimeError(
                    f"create ResourceClaim {wanted['metadata']['generateName']}: {exc.message}"
                ) from exc
            self._created[claim["metadata"]["uid"]] = claim
        made[entry.get("name", "")] = claim["metadata"]["name"]

    def _find_pod_claim(self, pod: Object, entry: Object) -> Object | None:
        """A claim already made for ``entry`` of ``pod`` (cached, or created here)."""
        uid = pod["metadata"].get("uid", "")
        candidates = [
            *self.claims.indexer.by_index(CLAIM_OWNER_INDEX, uid),
            *(c for c in self._created.values() if index_claim_by_owner(c) == [uid]),
        ]
        for claim in candidates:
            annotations = claim["metadata"].get("annotations") or {}
            if annotations.get(podclaims.POD_CLAIM_NAME_ANNOTATION) == entry.get("name"):
                return claim
        return None

    async def _record_claim_names(self, pod: Object, made: dict[str, str]) -> None:
        """``status.resourceClaimStatuses``: the entries recorded before, plus ``made``."""
        statuses = [
            entry
            for entry in (pod.get("status") or {}).get("resourceClaimStatuses") or ()
            if entry.get("name") not in made
        ]
        statuses += [{"name": name, "resourceClaimName": claim} for name, claim in made.items()]
        meta = pod["metadata"]
        await self.client.patch(
            rest.PODS,
            meta["name"],
            {"metadata": {"uid": meta.get("uid")}, "status": {"resourceClaimStatuses": statuses}},
            namespace=meta.get("namespace", ""),
            patch_type="merge",
            subresource="status",
        )

    async def _reserve_for_scheduled_pod(self, pod: Object) -> None:
        """A pod placed without the DRA scheduler plugin: reserve its allocated claims for it."""
        namespace = pod["metadata"].get("namespace", "")
        for _, name, _ in podclaims.named_claims(pod):
            claim = self.claims.indexer.get(f"{namespace}/{name}")
            if claim is None or not podclaims.allocation(claim):
                continue
            if podclaims.is_reserved_for(pod, claim):
                continue
            updated = copy.deepcopy(claim)
            updated.setdefault("status", {}).setdefault("reservedFor", []).append(
                {"resource": "pods", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
            )
            await self.client.update(rest.RESOURCECLAIMS, updated, subresource="status")

    async def _sync_claim(self, key: str) -> None:
        claim = self.claims.indexer.get(key)
        if claim is None:
            return
        reserved = (claim.get("status") or {}).get("reservedFor") or []
        valid = [ref for ref in reserved if await self._still_reserved(claim, ref)]
        finalizers = claim["metadata"].get("finalizers") or []
        if len(valid) < len(reserved):
            updated = copy.deepcopy(claim)
            updated["status"]["reservedFor"] = valid or None
            if not valid and podclaims.FINALIZER in finalizers:
                # Allocated by the scheduler: "deallocate" by clearing the allocation.
                updated["status"].pop("allocation", None)
            written = await self.client.update(rest.RESOURCECLAIMS, updated, subresource="status")
            await self._remove_finalizer(written)
        elif claim["metadata"].get("deletionTimestamp") and not podclaims.allocation(claim):
            await self._remove_finalizer(claim)
        if not valid:
            await self._delete_if_pod_done(claim)

    async def _remove_finalizer(self, claim: Object) -> None:
        finalizers = claim["metadata"].get("finalizers") or []
        if podclaims.FINALIZER not in finalizers or podclaims.allocation(claim):
            return
        updated = copy.deepcopy(claim)
        updated["metadata"]["finalizers"] = [f for f in finalizers if f != podclaims.FINALIZER]
        try:
            await self.client.update(rest.RESOURCECLAIMS, updated)
        except rest.ApiError as exc:
            if not exc.not_found:
                raise

    async def _still_reserved(self, claim: Object, ref: Object) -> bool:
        """Whether ``ref`` names a consumer that still needs the claim."""
        if ref.get("apiGroup") or ref.get("resource") != "pods":
            return True  # not ours to judge
        uid = ref.get("uid", "")
        if uid in self._deleted:
            return False
        namespace = claim["metadata"].get("namespace", "")
        pod = self.pods.indexer.get(f"{namespace}/{ref.get('name', '')}")
        if pod is None:
            # Not in the cache (yet?): only a live read tells whether it is gone.
            try:
                pod = await self.client.get(rest.PODS, ref.get("name", ""), namespace=namespace)
            except rest.ApiError as exc:
                if exc.not_found:
                    return False
                raise
        if pod["metadata"].get("uid") != uid:
            return False
        return not podclaims.is_pod_done(pod)

    async def _delete_if_pod_done(self, claim: Object) -> None:
        owner = _owner_pod(claim)
        if owner is None or claim["metadata"].get("deletionTimestamp"):
            return
        namespace = claim["metadata"].get("namespace", "")
        pod = self.pods.indexer.get(f"{namespace}/{owner.get('name', '')}")
        if pod is None:
            return  # the garbage collector deletes it once the pod is truly gone
        if pod["metadata"].get("uid") == owner.get("uid") and not podclaims.is_pod_done(pod):
            return
        log.info("deleting unused generated claim %s/%s", namespace, claim["metadata"]["name"])
        try:
            await self.client.delete(
                rest.RESOURCECLAIMS,
                claim["metadata"]["name"],
                namespace=namespace,
                uid=claim["metadata"].get("uid", ""),
            )
        except rest.ApiError as exc:
            if not exc.not_found and not exc.conflict:
                raise
        self._created.pop(claim["metadata"].get("uid", ""), None)


def _text(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)


def _as_pod(pod: Object) -> Object:
    """Informer objects may lack kind/apiVersion; events need them for involvedObject."""
    return {"kind": "Pod", "apiVersion": "v1", **pod}
