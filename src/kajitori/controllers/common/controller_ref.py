"""Controller references: who controls an object, and adopting or releasing it.

Mirrors upstream's pkg/controller/controller_ref_manager.go. An object has at
most one owner reference with ``controller: true``; a workload controller
*claims* the objects it sees (pods for a ReplicaSet, ReplicaSets for a
Deployment):

* controlled by us and matching our selector → ours;
* controlled by us but no longer matching → released (our reference is
  removed with a strategic-merge ``$patch: delete``), unless we are being
  deleted, when the garbage collector will deal with it;
* controlled by someone else → not ours, never touched;
* an orphan that matches, is not being deleted, and lives in our namespace →
  adopted, after ``can_adopt`` has re-read the controller live and found it
  still there and not being deleted (upstream's RecheckDeletionTimestamp:
  the cache may be stale, and adopting into a dying owner would get the
  object garbage-collected).

Patches carry ``metadata.uid`` so that they never touch a namesake
recreated in between. A claim whose object vanished meanwhile is simply not
ours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kajitori.client import informer, rest
from kajitori.machinery import labels

Object = dict[str, Any]
CanAdopt = Callable[[], Awaitable[None]]


def controller_of(obj: Object) -> Object | None:
    """The owner reference with ``controller: true``, if any (``metav1.GetControllerOf``)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def resolve_controller_ref(
    indexer: informer.Indexer, namespace: str, ref: Object | None, *, kind: str
) -> Object | None:
    """The cached apps/* owner ``ref`` names, if it is of ``kind`` and its UID matches.

    Resolve by name, then verify the UID: a deleted and recreated owner of
    the same name is not the one the reference meant (upstream's
    resolveControllerRef).
    """
    if ref is None or ref.get("kind") != kind or not str(ref.get("apiVersion")).startswith("apps/"):
        return None
    found = indexer.get(f"{namespace}/{ref.get('name')}")
    if found is None or found["metadata"].get("uid") != ref.get("uid"):
        return None
    return found


def owners_selecting(indexer: informer.Indexer, obj: Object) -> list[Object]:
    """Cached owners in ``obj``'s namespace whose (non-empty) selector matches its labels."""
    meta = obj.get("metadata") or {}
    found = []
    for owner in indexer.by_index(informer.NAMESPACE_INDEX, meta.get("namespace", "")):
        try:
            selector = labels.selector_from_label_selector(
                (owner.get("spec") or {}).get("selector")
            )
        except labels.SelectorError:
            continue
        if not selector.empty and selector.matches(meta.get("labels")):
            found.append(owner)
    return found


def owner_reference(owner: Object, *, api_version: str, kind: str) -> Object:
    """A controlling reference to ``owner`` that blocks its foreground deletion."""
    meta = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_being_deleted(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def recheck_deletion(client: rest.Client, resource: rest.Resource, controller: Object) -> CanAdopt:
    """A ``can_adopt`` that reads ``controller`` live once and refuses if it changed or is dying."""
    checked: list[bool] = []
    meta = controller["metadata"]

    async def can_adopt() -> None:
        if checked:
            if not checked[0]:
                raise AdoptionRefused(meta["name"])
            return
        fresh = await client.get(resource, meta["name"], namespace=meta.get("namespace", ""))
        ok = fresh["metadata"].get("uid") == meta["uid"] and not is_being_deleted(fresh)
        checked.append(ok)
        if not ok:
            raise AdoptionRefused(meta["name"])

    return can_adopt


def manager_for(
    client: rest.Client, resource: rest.Resource, *, owner: Object, selector: labels.Selector
) -> ControllerRefManager:
    """The manager ``owner`` (an object of ``resource``) claims with, as every workload controller.

    Adoption waits for ``recheck_deletion``, as upstream's callers all pass
    ``RecheckDeletionTimestamp``; apiVersion and kind are ``resource``'s.
    """
    return ControllerRefManager(
        client,
        controller=owner,
        api_version=resource.api_version,
        kind=resource.kind,
        selector=selector,
        can_adopt=recheck_deletion(client, resource, owner),
    )


class AdoptionRefused(Exception):
    """The controller is gone or being deleted, so it may not adopt anything."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is being deleted or was replaced; not adopting")


class ControllerRefManager:
    """Claims objects of ``resource`` for ``controller`` (ReplicaSet, Deployment, ...)."""

    def __init__(
        self,
        client: rest.Client,
        *,
        controller: Object,
        api_version: str,
        kind: str,
        selector: labels.Selector,
        can_adopt: CanAdopt,
    ) -> None:
        self.client = client
        self.controller = controller
        self.api_version = api_version
        self.kind = kind
        self.selector = selector
        self.can_adopt = can_adopt
        self._uid = controller["metadata"]["uid"]

    async def claim(self, resource: rest.Resource, objects: Iterable[Object]) -> list[Object]:
        """The objects that are ours after adopting orphans and releasing mismatches."""
        claimed: list[Object] = []
        errors: list[Exception] = []
        for obj in objects:
            if self._already_ours(obj):
                # The common case, with nothing to write: skip the coroutine per object.
                claimed.append(obj)
                continue
            try:
                if await self._claim_one(resource, obj):
                    claimed.append(obj)
            except (rest.ApiError, AdoptionRefused) as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return claimed

    def _already_ours(self, obj: Object) -> bool:
        """Whether ``obj``'s controller reference is ours and our selector matches it."""
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or ():
            if ref.get("controller"):
                return ref.get("uid") == self._uid and self.selector.matches(meta.get("labels"))
        return False

    async def _claim_one(self, resource: rest.Resource, obj: Object) -> bool:
        ref = controller_of(obj)
        matches = self.selector.matches((obj.get("metadata") or {}).get("labels"))
        if ref is not None:
            if ref.get("uid") != self._uid:
                return False
            if matches:
                return True
            if is_being_deleted(self.controller):
                return False
            await self._release(resource, obj)
            return False
        if is_being_deleted(self.controller) or not matches or is_being_deleted(obj):
            return False
        meta = obj["metadata"]
        if meta.get("namespace", "") != self.controller["metadata"].get("namespace", ""):
            return False
        return await self._adopt(resource, obj)

    async def _adopt(self, resource: rest.Resource, obj: Object) -> bool:
        await self.can_adopt()
        ref = owner_reference(self.controller, api_version=self.api_version, kind=self.kind)
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [ref], "uid": meta["uid"]}}
        return await self._patch(resource, obj, patch)

    async def _release(self, resource: rest.Resource, obj: Object) -> None:
        meta = obj["metadata"]
        patch = {
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": self._uid}],
                "uid": meta["uid"],
            }
        }
        await self._patch(resource, obj, patch)

    async def _patch(self, resource: rest.Resource, obj: Object, patch: Object) -> bool:
        meta = obj["metadata"]
        try:
            await self.client.patch(
                resource,
                meta["name"],
                patch,
                namespace=meta.get("namespace", ""),
                patch_type="strategic",
            )
        except rest.ApiError as exc:
            # Gone (or replaced: the uid no longer matches) means there is nothing to claim.
            if exc.not_found or exc.code == 422:
                return False
            raise
        return True
