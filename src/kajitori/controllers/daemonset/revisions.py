"""A DaemonSet's ControllerRevisions: the current one, the old ones, and their cleanup.

Mirrors upstream's pkg/controller/daemon/update.go (``constructHistory``,
``snapshot``, ``dedupCurHistories``, ``cleanupHistory``, ``Match``,
``getPatch``), over the shared ``common.history`` helpers (listing order,
numbering, renumbering and deleting revisions).

A DaemonSet revision differs from a StatefulSet's in two ways, both
upstream's: its name and ``controller-revision-hash`` label use the
*pod-template* hash (``deployment_util.compute_hash`` of the template and
``status.collisionCount``), not the hash of the revision's data; and its
data is the patch that restores the template,
``{"spec": {"template": {..., "$patch": "replace"}}}``, which is also how a
revision is recognised as current (equal data).

``construct`` claims the revisions (adopting matching orphans, releasing
ones that stopped matching), labels any without the hash label with their
name, and then either finds the current revision (keeping only the newest of
duplicates and relabelling their pods) and raises its number above the old
ones, or creates it. A name already taken by a revision with other data is a
hash collision: ``status.collisionCount`` goes up and the sync is retried.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kajitori.client import informer, rest
from kajitori.controllers.common import controller_ref, deployment_util, history, pod_util
from kajitori.controllers.daemonset import placement
from kajitori.machinery import labels

log = logging.getLogger(__name__)

Object = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "DaemonSet"


class HashCollision(Exception):
    """The revision name was taken by other data; ``collisionCount`` was raised, sync again."""


def revision_data(ds: Object) -> Object:
    """The patch that restores ``ds``'s template (upstream's getPatch)."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def matches(ds: Object, revision: Object) -> bool:
    """``revision`` records ``ds``'s current template (upstream's Match)."""
    return (revision.get("data") or {}) == revision_data(ds)


def collision_count(ds: Object) -> int | None:
    count = (ds.get("status") or {}).get("collisionCount")
    return None if count is None else int(count)


def template_hash(ds: Object) -> str:
    template = (ds.get("spec") or {}).get("template") or {}
    return deployment_util.compute_hash(template, collision_count(ds))


def new_revision(ds: Object, number: int) -> Object:
    """The revision ``ds``'s current template would be stored as (upstream's snapshot)."""
    meta = ds["metadata"]
    hash_ = template_hash(ds)
    template_labels = ((ds["spec"].get("template") or {}).get("metadata") or {}).get("labels")
    revision_meta: Object = {
        "name": f"{meta['name']}-{hash_}",
        "namespace": meta.get("namespace", ""),
        "labels": {**(template_labels or {}), placement.HASH_LABEL: hash_},
        "ownerReferences": [controller_ref.owner_reference(ds, api_version=API_VERSION, kind=KIND)],
    }
    if meta.get("annotations"):
        revision_meta["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": API_VERSION,
        "kind": "ControllerRevision",
        "metadata": revision_meta,
        "data": revision_data(ds),
        "revision": number,
    }


def revisions_to_delete(
    old: Sequence[Object], limit: int, live_hashes: Iterable[str]
) -> list[Object]:
    """Oldest old revisions beyond ``limit`` whose hash no pod still carries."""
    excess = len(old) - limit
    if excess <= 0:
        return []
    live = set(live_hashes)
    doomed: list[Object] = []
    for revision in history.sort_revisions(old):
        if len(doomed) >= excess:
            break
        if ((revision.get("metadata") or {}).get("labels") or {}).get(placement.HASH_LABEL) in live:
            continue
        doomed.append(revision)
    return doomed


class Revisions:
    """ControllerRevision reads (from the informer cache) and writes for DaemonSets."""

    def __init__(
        self, client: rest.Client, indexer: informer.Indexer, pods: informer.Indexer
    ) -> None:
        self.client = client
        self.indexer = indexer
        self.pods = pods
        self.history = history.History(client, indexer)

    async def construct(self, ds: Object, selector: labels.Selector) -> tuple[Object, list[Object]]:
        """The current revision (created or renumbered as needed) and the old ones."""
        current: list[Object] = []
        old: list[Object] = []
        for revision in await self._claim(ds, selector):
            revision = await self._ensure_hash_label(revision)
            (current if matches(ds, revision) else old).append(revision)
        number = history.next_revision(old)
        if not current:
            return await self._snapshot(ds, number), old
        cur = await self._dedup(ds, current)
        if history.revision_number(cur) < number:
            cur = await self.history.update_revision(cur, number)
        return cur, old

    async def cleanup(self, ds: Object, old: Sequence[Object], pods: Iterable[Object]) -> None:
        """Delete old revisions beyond ``revisionHistoryLimit`` that no pod runs."""
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10))
        live = {
            ((p.get("metadata") or {}).get("labels") or {}).get(placement.HASH_LABEL, "")
            for p in pods
        }
        live.discard("")
        for revision in revisions_to_delete(old, limit, live):
            await self.history.delete_revision(revision)

    async def _claim(self, ds: Object, selector: labels.Selector) -> list[Object]:
        namespace = ds["metadata"].get("namespace", "")
        manager = controller_ref.manager_for(
            self.client, rest.DAEMONSETS, owner=ds, selector=selector
        )
        cached = self.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        return [copy.deepcopy(r) for r in await manager.claim(rest.CONTROLLERREVISIONS, cached)]

    async def _ensure_hash_label(self, revision: Object) -> Object:
        meta = revision["metadata"]
        if placement.HASH_LABEL in (meta.get("labels") or {}):
            return revision
        # Older revisions lack the label; upstream uses the name rather than
        # recomputing a hash, so collisions cannot arise.
        body = copy.deepcopy(revision)
        body["metadata"].setdefault("labels", {})[placement.HASH_LABEL] = meta["name"]
        updated: Object = await self.client.update(
            rest.CONTROLLERREVISIONS, body, namespace=meta.get("namespace", "")
        )
        return updated

    async def _snapshot(self, ds: Object, number: int) -> Object:
        revision = new_revision(ds, number)
        namespace = ds["metadata"].get("namespace", "")
        try:
            created: Object = await self.client.create(
                rest.CONTROLLERREVISIONS, revision, namespace=namespace
            )
            return created
        except rest.ApiError as exc:
            if exc.code != 409:
                raise
        existing: Object = await self.client.get(
            rest.CONTROLLERREVISIONS, revision["metadata"]["name"], namespace=namespace
        )
        if matches(ds, existing):
            return existing
        await self._bump_collision_count(ds)
        raise HashCollision(
            f"ControllerRevision {revision['metadata']['name']} holds another template"
        )

    async def _bump_collision_count(self, ds: Object) -> None:
        meta = ds["metadata"]
        fresh = await self.client.get(rest.DAEMONSETS, meta["name"], namespace=meta["namespace"])
        if collision_count(fresh) != collision_count(ds):
            return  # our copy was stale; the retry will use the stored count
        status = dict(fresh.get("status") or {})
        status["collisionCount"] = (collision_count(fresh) or 0) + 1
        await self.client.update_status(rest.DAEMONSETS, {**fresh, "status": status})
        log.info(
            "daemonset %s/%s: hash collision, collisionCount now %d",
            meta["namespace"],
            meta["name"],
            status["collisionCount"],
        )

    async def _dedup(self, ds: Object, current: Sequence[Object]) -> Object:
        """Keep the highest-numbered equal revision; move pods of the others onto it."""
        if len(current) == 1:
            return current[0]
        keep = max(current, key=history.revision_number)
        keep_hash = keep["metadata"]["labels"][placement.HASH_LABEL]
        for duplicate in current:
            if duplicate is keep:
                continue
            dup_hash = duplicate["metadata"]["labels"].get(placement.HASH_LABEL)
            await self._relabel_pods(ds, dup_hash, keep_hash)
            await self.history.delete_revision(duplicate)
        return keep

    async def _relabel_pods(self, ds: Object, old_hash: str | None, new_hash: str) -> None:
        # Upstream relabels every pod of the DaemonSet not already on the kept
        # hash; only the duplicate's own pods are moved here, so pods of older
        # templates keep counting as out of date.
        namespace = ds["metadata"].get("namespace", "")
        uid = ds["metadata"]["uid"]
        pods = [
            p
            for p in self.pods.by_index(informer.NAMESPACE_INDEX, namespace)
            if ((p["metadata"].get("labels") or {}).get(placement.HASH_LABEL)) == old_hash
            and (controller_ref.controller_of(p) or {}).get("uid") == uid
        ]
        patch = {"metadata": {"labels": {placement.HASH_LABEL: new_hash}}}
        await asyncio.gather(
            *(
                self.client.patch(
                    rest.PODS, p["metadata"]["name"], patch, namespace=namespace, patch_type="merge"
                )
                for p in pods
                if pod_util.is_active(p)
            )
        )
