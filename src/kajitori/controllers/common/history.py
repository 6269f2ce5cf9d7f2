"""ControllerRevisions: the recorded history of a StatefulSet's or DaemonSet's template.

Mirrors upstream's pkg/controller/history (controller_history.go). A
controller that rolls out templates keeps each distinct template as an
``apps/v1 ControllerRevision`` owned by it:

* ``data`` is whatever the controller needs to restore the template (for a
  StatefulSet and a DaemonSet: a strategic-merge patch
  ``{"spec": {"template": {..., "$patch": "replace"}}}``);
* ``revision`` is a number that only grows: the newest template has the
  highest one (``next_revision``), and rolling back to an older template
  re-numbers that old revision instead of creating a duplicate
  (``ensure_revision``);
* the name is ``<parent>-<hash>``, the hash covering the data and, when the
  parent has had collisions, its ``collisionCount``. A name taken by a
  revision with *different* data is a hash collision: the count goes up and
  the hash is recomputed, so the parent must store the new count in its
  status (upstream's ``status.collisionCount``).

Pure helpers (hashing, naming, sorting, equality, numbering) are free of
I/O; ``History`` does the API writes and reads revisions from an informer
cache. The hash is FNV-1 32 (upstream uses ``fnv.New32``, not the 1a
variant the pod-template-hash uses) over canonical JSON of ``data``
(sorted keys: Go hashes the raw JSON bytes it stored, which we cannot
reproduce byte for byte; see decision 0014 for the same choice with
pod-template-hash), then the decimal collision count, then upstream's
"safe encoding" of the decimal value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from kajitori.client import informer, rest
from kajitori.controllers.common import controller_ref
from kajitori.controllers.common.deployment_util import safe_encode
from kajitori.machinery import labels

Object = dict[str, Any]

HASH_LABEL = "controller.kubernetes.io/hash"
API_VERSION = "apps/v1"
KIND = "ControllerRevision"
# Upstream keeps room for "-" and a 10-character hash within a 253-character name.
MAX_PREFIX = 223
FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193


# ----- pure helpers ------------------------------------------------------------------


def fnv32(data: bytes, start: int = FNV32_OFFSET) -> int:
    """FNV-1 (multiply, then xor), as Go's ``hash/fnv.New32``."""
    value = start
    for byte in data:
        value = ((value * FNV32_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def hash_revision(data: Object | None, collision_count: int | None = None) -> str:
    """The hash label / name suffix of a revision holding ``data`` (upstream's HashControllerRevision)."""
    value = FNV32_OFFSET
    if data:
        value = fnv32(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), value)
    if collision_count is not None:
        value = fnv32(str(int(collision_count)).encode(), value)
    return safe_encode(str(value))


def revision_name(prefix: str, hash_: str) -> str:
    """``<prefix>-<hash>``, the prefix cut so the name stays a valid object name."""
    return f"{prefix[:MAX_PREFIX]}-{hash_}"


def revision_number(revision: Object) -> int:
    return int(revision.get("revision") or 0)


def sort_revisions(revisions: Iterable[Object]) -> list[Object]:
    """Oldest first: by revision number, then creation time, then name (upstream's order)."""

    def key(rev: Object) -> tuple[int, str, str]:
        meta = rev.get("metadata") or {}
        return (revision_number(rev), meta.get("creationTimestamp") or "", meta.get("name", ""))

    return sorted(revisions, key=key)


def next_revision(revisions: Sequence[Object]) -> int:
    """One more than the highest revision number (1 for an empty history)."""
    return max((revision_number(rev) for rev in revisions), default=0) + 1


def equal_revision(a: Object | None, b: Object | None) -> bool:
    """Same data (upstream's EqualRevision).

    Upstream first compares hash labels, but those are safe-encoded and never
    parse as numbers, so in practice it compares the data; so do we.
    """
    if a is None or b is None:
        return a is b
    return (a.get("data") or {}) == (b.get("data") or {})


def find_equal_revisions(revisions: Iterable[Object], needle: Object) -> list[Object]:
    """The revisions whose data equals ``needle``'s, in the given order."""
    return [rev for rev in revisions if equal_revision(rev, needle)]


def new_revision(
    parent: Object,
    *,
    kind: str,
    template_labels: dict[str, str] | None,
    data: Object,
    revision: int,
    collision_count: int | None,
    api_version: str = API_VERSION,
) -> Object:
    """The ControllerRevision ``parent`` (a ``kind``) would own for ``data`` (not yet created).

    Labels are the template's (so the parent's selector finds it) plus the hash label.
    """
    meta = parent["metadata"]
    hash_ = hash_revision(data, collision_count)
    revision_labels = dict(template_labels or {})
    revision_labels[HASH_LABEL] = hash_
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": revision_name(meta["name"], hash_),
            "namespace": meta.get("namespace", ""),
            "labels": revision_labels,
            "ownerReferences": [
                controller_ref.owner_reference(parent, api_version=api_version, kind=kind)
            ],
        },
        "data": copy.deepcopy(data),
        "revision": revision,
    }


def owned_or_orphaned(revisions: Iterable[Object], parent: Object) -> list[Object]:
    """Revisions ``parent`` controls, plus orphans (candidates for adoption)."""
    uid = parent["metadata"].get("uid")
    found = []
    for rev in revisions:
        ref = controller_ref.controller_of(rev)
        if ref is None or ref.get("uid") == uid:
            found.append(rev)
    return found


def is_orphan(revision: Object) -> bool:
    return controller_ref.controller_of(revision) is None


# ----- API writes --------------------------------------------------------------------


class History:
    """ControllerRevisions of one kind of parent, through the API and an informer cache.

    ``indexer`` is the ControllerRevision informer's (it needs the namespace
    index); lists come from it, writes go to the API.
    """

    def __init__(self, client: rest.Client, indexer: informer.Indexer) -> None:
        self.client = client
        self.indexer = indexer

    def list_revisions(self, parent: Object, selector: labels.Selector) -> list[Object]:
        """Cached revisions in ``parent``'s namespace matching ``selector``, owned or orphaned.

        Deep copies: callers may modify them.
        """
        namespace = parent["metadata"].get("namespace", "")
        matching = [
            rev
            for rev in self.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if selector.matches((rev.get("metadata") or {}).get("labels"))
        ]
        return [copy.deepcopy(rev) for rev in owned_or_orphaned(matching, parent)]

    async def create_revision(
        self, parent: Object, revision: Object, collision_count: int
    ) -> tuple[Object, int]:
        """Create ``revision`` named for ``parent``; returns it and the collision count used.

        An existing revision of that name with equal data is returned as is
        (someone, maybe an earlier sync of ours, already made it); one with
        other data is a collision, and the count goes up until a free or
        equal name is found.
        """
        clone = copy.deepcopy(revision)
        prefix = parent["metadata"]["name"]
        namespace = parent["metadata"].get("namespace", "")
        while True:
            hash_ = hash_revision(clone.get("data"), collision_count)
            clone["metadata"]["name"] = revision_name(prefix, hash_)
            clone["metadata"].setdefault("labels", {})[HASH_LABEL] = hash_
            try:
                created = await self.client.create(
                    rest.CONTROLLERREVISIONS, clone, namespace=namespace
                )
                return created, collision_count
            except rest.ApiError as exc:
                if exc.code != 409 or exc.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(
                rest.CONTROLLERREVISIONS, clone["metadata"]["name"], namespace=namespace
            )
            if equal_revision(existing, clone):
                return existing, collision_count
            collision_count += 1

    async def update_revision(self, revision: Object, number: int) -> Object:
        """Set ``revision``'s number (a rollback to an older template), retrying conflicts."""
        meta = revision["metadata"]
        current = revision
        for _ in range(5):
            if revision_number(current) == number:
                return current
            body = copy.deepcopy(current)
            body["revision"] = number
            try:
                return await self.client.update(
                    rest.CONTROLLERREVISIONS, body, namespace=meta.get("namespace", "")
                )
            except rest.ApiError as exc:
                if not exc.conflict:
                    raise
            current = await self.client.get(
                rest.CONTROLLERREVISIONS, meta["name"], namespace=meta.get("namespace", "")
            )
        raise RuntimeError(f"could not renumber ControllerRevision {meta['name']}")

    async def delete_revision(self, revision: Object) -> None:
        """Delete ``revision`` (already gone is fine)."""
        meta = revision["metadata"]
        try:
            await self.client.delete(
                rest.CONTROLLERREVISIONS,
                meta["name"],
                namespace=meta.get("namespace", ""),
                uid=meta.get("uid", ""),
            )
        except rest.ApiError as exc:
            if not exc.not_found:
                raise

    async def adopt_revision(
        self, parent: Object, revision: Object, *, kind: str, api_version: str = API_VERSION
    ) -> Object:
        """Make ``parent`` the controller of orphan ``revision`` (patch guarded by its UID)."""
        ref = controller_ref.owner_reference(parent, api_version=api_version, kind=kind)
        meta = revision["metadata"]
        patch = {"metadata": {"ownerReferences": [ref], "uid": meta["uid"]}}
        return await self.client.patch(
            rest.CONTROLLERREVISIONS,
            meta["name"],
            patch,
            namespace=meta.get("namespace", ""),
            patch_type="strategic",
        )

    async def release_revision(self, parent: Object, revision: Object) -> None:
        """Drop ``parent``'s controller reference from ``revision`` (gone is fine)."""
        meta = revision["metadata"]
        patch = {
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": parent["metadata"]["uid"]}],
                "uid": meta["uid"],
            }
        }
        try:
            await self.client.patch(
                rest.CONTROLLERREVISIONS,
                meta["name"],
                patch,
                namespace=meta.get("namespace", ""),
                patch_type="strategic",
            )
        except rest.ApiError as exc:
            if not (exc.not_found or exc.code == 422):
                raise

    async def ensure_revision(
        self, parent: Object, revisions: Sequence[Object], candidate: Object, collision_count: int
    ) -> tuple[Object, int]:
        """The stored revision for ``candidate``'s data, creating or renumbering one.

        ``revisions`` sorted oldest first (``sort_revisions``). If the newest
        already holds this data, it is the answer; if an older one does, that
        one is renumbered to ``candidate``'s number (a rollback keeps one
        revision per template); otherwise ``candidate`` is created. Returns
        the revision and the collision count to store in the parent's status.
        """
        equal = find_equal_revisions(revisions, candidate)
        if equal and revisions and equal_revision(revisions[-1], equal[-1]):
            return revisions[-1], collision_count
        if equal:
            renumbered = await self.update_revision(equal[-1], revision_number(candidate))
            return renumbered, collision_count
        return await self.create_revision(parent, candidate, collision_count)
