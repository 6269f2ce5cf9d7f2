"""The garbage collector: deletes dependents of deleted owners, in the three propagation modes.

Mirrors upstream's pkg/controller/garbagecollector, simplified: a graph of
owner → dependents built from informers over every resource that can be
listed, watched and deleted (events excepted, as upstream) — the full-object
informer other controllers share where one exists, else a metadata-only
one — and two work queues of object UIDs.

* what gets verified (upstream's graph builder): a dependent whose owner
  the graph already holds is taken on trust — it is looked at again only
  when that owner goes away or starts a foreground or orphan deletion. An
  owner the graph does not hold yet becomes a *virtual* node, queued once:
  looked up live, it is dropped if absent (its dependents are then queued),
  and looked up again with back-off until its informer shows it. A
  reference that does not match the owner the graph holds (another
  namespace, kind, apiVersion or name) has its dependent queued.
* ``attempt_to_delete`` (upstream attemptToDeleteItem): an object whose
  owners are all gone (no object at the owner's name with the owner's UID)
  is deleted, with the policy its own finalizers ask for (background by
  default); an owner that still exists keeps it, and references to owners
  that are gone or being deleted in the foreground are removed from it
  instead. Owners are looked up live, never from the cache, so a dependent
  is never collected because the owner's informer lags behind; an owner
  found absent (or seen deleted with dependents) is remembered in a small
  cache (upstream's absentOwnerCache) so its other dependents skip the
  lookup.
* foreground deletion: an owner being deleted with the ``foregroundDeletion``
  finalizer first has its dependents deleted (in the foreground themselves
  when they have dependents); the finalizer is removed, letting the API
  server delete the owner, once no dependent with ``blockOwnerDeletion``
  is left.
* ``attempt_to_orphan``: an owner being deleted with the ``orphan``
  finalizer has its reference removed from every dependent, then the
  finalizer removed.

Workers start only after every informer has synced, since a partial graph
would let a foreground owner go before dependents it has not seen yet.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# Upstream never collects events: there are many, they expire, and they have no owners.
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})
REQUIRED_VERBS = frozenset({"list", "watch", "delete", "get", "patch"})
_CONFLICT_RETRIES = 5
# Upstream's absentOwnerCache size (garbagecollector.go, NewReferenceCache(500)).
ABSENT_OWNER_CACHE_SIZE = 500
# (API group, kind, namespace, name, uid) of an owner: what a lookup of it asks for.
OwnerKey = tuple[str, str, str, str, str]


@dataclasses.dataclass(slots=True)
class Node:
    """One object in the graph, as last seen by its informer."""

    resource: rest.Resource
    namespace: str
    name: str
    uid: str
    # A tuple, never changed in place: the shared empty tuple for most objects (no
    # list of their own to allocate and for Python's collector to track).
    owners: tuple[Object, ...]
    deleting: bool
    finalizers: tuple[str, ...]
    api_version: str = ""
    kind: str = ""
    # Known only from a dependent's reference (upstream's virtual node) until observed.
    virtual: bool = False
    # Other apiVersions the object was seen under: kajitori serves apps' Deployments,
    # ReplicaSets and DaemonSets as extensions/v1beta1 too, and both are monitored.
    aliases: frozenset[str] = frozenset()

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND_FINALIZER in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.deleting and ORPHAN_FINALIZER in self.finalizers

    def blocks(self, owner_uid: str) -> bool:
        """Whether this object's reference to ``owner_uid`` has ``blockOwnerDeletion``."""
        return any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") for r in self.owners)


def node_from(resource: rest.Resource, obj: Object) -> Node:
    meta = obj.get("metadata") or {}
    return Node(
        resource=resource,
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        uid=meta.get("uid") or "",
        owners=tuple(meta.get("ownerReferences") or ()),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
        api_version=resource.api_version,
        kind=resource.kind,
    )


def _plain(node: Node) -> bool:
    """Whether the graph has nothing to do for ``node`` but hold it (``_observe``'s fast path):
    an observed object (not a placeholder, no other apiVersions) that names no owner and
    is not being deleted."""
    return not (node.owners or node.deleting or node.virtual or node.aliases)


def matches(owner: Node, dependent: Node, ref: Object) -> bool:
    """Whether ``ref`` names ``owner`` as the graph knows it (upstream's coordinates check)."""
    if owner.namespace and owner.namespace != dependent.namespace:
        return False
    api_version = ref.get("apiVersion")
    return (
        (api_version == owner.api_version or api_version in owner.aliases)
        and ref.get("kind") == owner.kind
        and ref.get("name") == owner.name
    )


def reference_diffs(
    old: Sequence[Object], new: Sequence[Object]
) -> tuple[list[Object], list[Object], list[tuple[Object, Object]]]:
    """References (added, removed, changed as (old, new) pairs), matched by owner UID."""
    before = {ref.get("uid", ""): ref for ref in old}
    added: list[Object] = []
    changed: list[tuple[Object, Object]] = []
    for ref in new:
        previous = before.pop(ref.get("uid", ""), None)
        if previous is None:
            added.append(ref)
        elif previous != ref:
            changed.append((previous, ref))
    return added, list(before.values()), changed


class Graph:
    """Nodes by UID, and dependents by owner UID (whether or not the owner is known)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._dependents: dict[str, set[str]] = {}

    def dependents(self, owner_uid: str) -> list[Node]:
        return [self.nodes[u] for u in self._dependents.get(owner_uid, ()) if u in self.nodes]

    def upsert(self, node: Node) -> Node | None:
        old = self.nodes.get(node.uid)
        if old is not None:
            self._unlink(old)
        self.nodes[node.uid] = node
        for ref in node.owners:
            self._dependents.setdefault(ref.get("uid", ""), set()).add(node.uid)
        return old

    def remove(self, uid: str) -> Node | None:
        old = self.nodes.pop(uid, None)
        if old is not None:
            self._unlink(old)
        return old

    def _unlink(self, node: Node) -> None:
        for ref in node.owners:
            owner_uid = ref.get("uid", "")
            found = self._dependents.get(owner_uid)
            if found is not None:
                found.discard(node.uid)
                if not found:
                    del self._dependents[owner_uid]


class GarbageCollector(base.QueueController[str]):
    """Collects dependents; ``run(workers)`` discovers, syncs, then works until ``shut_down``."""

    name = "garbagecollector"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__(queue_name="garbage_collector_attempt_to_delete")
        self.client = client
        self.informers = informers
        self.recorder = recorder
        self.graph = Graph()
        self.attempt_to_delete = self.queue
        self.attempt_to_orphan = self.new_queue("garbage_collector_attempt_to_orphan")
        self._by_group_kind: dict[tuple[str, str], rest.Resource] = {}
        # Owners known to be gone, oldest first (upstream's absentOwnerCache, an LRU).
        self._absent: collections.OrderedDict[OwnerKey, None] = collections.OrderedDict()
        self._synced = asyncio.Event()
        self._stopped = asyncio.Event()

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def run(self, workers: int = 5) -> None:
        resources = await self._discover()
        for resource in resources:
            if _collectable(resource):
                self._monitor(resource)
        self.informers.start()
        if not await self._until_stopped(self.wait_for_caches()):
            return
        self._synced.set()
        log.info("garbage collector: %d resources monitored and synced", len(self.caches))
        await self.work(workers)

    async def work(self, workers: int) -> None:
        await asyncio.gather(
            super().work(workers),
            base.run_workers(self.attempt_to_orphan, self._attempt_to_orphan, 1, name=self.name),
        )

    def shut_down(self) -> None:
        self._stopped.set()
        super().shut_down()

    async def _until_stopped(self, waiting: Awaitable[Any]) -> bool:
        """Await ``waiting`` unless shut down first; True if it finished."""
        work = asyncio.ensure_future(waiting)
        stopped = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (work, stopped):
            task.cancel()
        try:
            await work  # collect its outcome, so no exception goes unretrieved
        except asyncio.CancelledError:
            pass
        except Exception:
            if not self._stopped.is_set():
                raise
        return not self._stopped.is_set()

    async def _discover(self) -> list[rest.Resource]:
        delay = 0.1
        while True:
            try:
                resources = await self.client.discover()
                break
            except (rest.ApiError, OSError) as exc:
                log.warning("garbage collector: discovery failed: %s", exc)
                if self._stopped.is_set():
                    return []
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        for resource in resources:
            self._by_group_kind[(resource.group, resource.kind)] = resource
        return resources

    def _monitor(self, resource: rest.Resource) -> informer.Informer:
        # As upstream's GC (its informer factory's ForResource): the full-object
        # informer other controllers already hold where there is one, whose
        # objects carry the metadata needed, else a metadata-only one of its own.
        # Pods, ReplicaSets and the like then cost no second watch.
        source = self.informers.existing(resource) or self.informers.informer(
            resource, metadata_only=True
        )
        return self.watch(
            source,
            on_change=lambda obj: self._observe(resource, obj),
            on_delete=self._forget,
        )

    # ----- graph changes (informer handlers: only bookkeeping and enqueueing) -----

    def _observe(self, resource: rest.Resource, obj: Object) -> None:
        node = node_from(resource, obj)
        if not node.uid:
            return
        old = self.graph.upsert(node)
        if _plain(node) and (old is None or (_plain(old) and old.api_version == node.api_version)):
            # Most objects reference no owner and are not being deleted, before and
            # after: no reference to verify, no owner to wake, nothing to queue.
            # Being in the graph (for dependents that name it later) is all.
            return
        if old is not None and old.virtual:
            self._check_dependents_of(node)
            old = None  # what follows treats it as first seen, as upstream
        elif old is not None and (old.aliases or old.api_version != node.api_version):
            node.aliases = (old.aliases | {old.api_version}) - {node.api_version}
        added, removed, changed = reference_diffs(old.owners if old else (), node.owners)
        if added:
            self._add_to_owners(node, added)
        self._wake_unblocked_owners(removed, changed)
        if node.deleting_dependents and (old is None or not old.deleting_dependents):
            self.attempt_to_delete.add(node.uid)
            for dependent in self.graph.dependents(node.uid):
                self.attempt_to_delete.add(dependent.uid)
        if node.orphaning and (old is None or not old.orphaning):
            self.attempt_to_orphan.add(node.uid)
        if old is not None:
            self._wake_foreground_owners(old.owners)
        self._wake_foreground_owners(node.owners)

    def _forget(self, obj: Object) -> None:
        uid = (obj.get("metadata") or {}).get("uid") or ""
        removed = self.graph.remove(uid)
        dependents = self.graph.dependents(uid)
        if removed is not None and dependents:
            for key in _keys_of(removed):
                self._remember_absent(key)
        for dependent in dependents:
            self.attempt_to_delete.add(dependent.uid)
        if removed is not None:
            self._wake_foreground_owners(removed.owners)

    def _add_to_owners(self, node: Node, refs: list[Object]) -> None:
        """Queue what new references need verified (upstream's addDependentToOwners).

        An owner not in the graph becomes a virtual node, queued to be looked
        up; a known owner the reference does not match queues the dependent.
        A dependent whose owners the graph holds as referenced costs nothing.
        """
        verify_dependent = False
        for ref in refs:
            owner = self.graph.nodes.get(ref.get("uid", ""))
            if owner is None:
                virtual = self._virtual_owner(node, ref)
                if virtual is None:  # no resource to look it up in: the dependent retries
                    verify_dependent = True
                    continue
                self.graph.upsert(virtual)
                self.attempt_to_delete.add(virtual.uid)
            elif not matches(owner, node, ref):
                if not owner.virtual and owner.namespace and owner.namespace != node.namespace:
                    self._report_invalid_namespace(node, ref)
                verify_dependent = True
        if verify_dependent:
            self.attempt_to_delete.add(node.uid)

    def _virtual_owner(self, dependent: Node, ref: Object) -> Node | None:
        """A placeholder for the owner ``ref`` names; None when no monitored resource serves it."""
        group = ref.get("apiVersion", "").rpartition("/")[0]
        resource = self._by_group_kind.get((group, ref.get("kind", "")))
        if resource is None or (resource.namespaced and not dependent.namespace):
            return None
        return Node(
            resource=resource,
            namespace=dependent.namespace if resource.namespaced else "",
            name=ref.get("name", ""),
            uid=ref.get("uid", ""),
            owners=(),
            deleting=False,
            finalizers=(),
            api_version=ref.get("apiVersion", ""),
            kind=ref.get("kind", ""),
            virtual=True,
        )

    def _check_dependents_of(self, observed: Node) -> None:
        """A virtual owner is observed: queue dependents whose reference does not match it."""
        for dependent in self.graph.dependents(observed.uid):
            for ref in dependent.owners:
                if ref.get("uid") == observed.uid and not matches(observed, dependent, ref):
                    if observed.namespace and observed.namespace != dependent.namespace:
                        self._report_invalid_namespace(dependent, ref)
                    self.attempt_to_delete.add(dependent.uid)
                    break

    def _report_invalid_namespace(self, dependent: Node, ref: Object) -> None:
        """Upstream's OwnerRefInvalidNamespace warning on the dependent."""
        involved = {
            "apiVersion": dependent.api_version,
            "kind": dependent.kind,
            "metadata": {
                "namespace": dependent.namespace,
                "name": dependent.name,
                "uid": dependent.uid,
            },
        }
        owner = (
            f"[{ref.get('apiVersion', '')}/{ref.get('kind', '')}, namespace: "
            f"{dependent.namespace}, name: {ref.get('name', '')}, uid: {ref.get('uid', '')}]"
        )
        message = f'ownerRef {owner} does not exist in namespace "{dependent.namespace}"'
        self.recorder.event(involved, "Warning", "OwnerRefInvalidNamespace", message)

    def _wake_unblocked_owners(
        self, removed: list[Object], changed: list[tuple[Object, Object]]
    ) -> None:
        """Owners a dependent stopped blocking (upstream's addUnblockedOwnersToDeleteQueue)."""
        unblocked = [r for r in removed if r.get("blockOwnerDeletion")]
        unblocked += [
            new
            for old, new in changed
            if old.get("blockOwnerDeletion") and not new.get("blockOwnerDeletion")
        ]
        for ref in unblocked:
            owner = self.graph.nodes.get(ref.get("uid", ""))
            if owner is not None:
                self.attempt_to_delete.add(owner.uid)

    def _wake_foreground_owners(self, refs: Iterable[Object]) -> None:
        for ref in refs:
            owner = self.graph.nodes.get(ref.get("uid", ""))
            if owner is not None and owner.deleting_dependents:
                self.attempt_to_delete.add(owner.uid)

    # ----- attempt to delete -------------------------------------------------------

    async def sync(self, uid: str) -> None:
        """Attempt to delete: the work of ``attempt_to_delete``, the main queue."""
        await self._attempt_to_delete(uid)

    async def _attempt_to_delete(self, uid: str) -> None:
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        if node.virtual:
            await self._verify_virtual(node)
            return
        latest = await self._latest(node)
        if latest is None:
            return
        meta = latest["metadata"]
        finalizers = meta.get("finalizers") or ()
        if meta.get("deletionTimestamp"):
            if FOREGROUND_FINALIZER in finalizers:
                await self._process_deleting_dependents(node, latest)
            return
        owners = meta.get("ownerReferences") or []
        if not owners:
            return
        solid, dangling, waiting = await self._classify_owners(node, owners)
        if solid:
            stale = [r["uid"] for r in (*dangling, *waiting)]
            if stale:
                await self._remove_owner_refs(node, stale)
            return
        if waiting and self.graph.dependents(uid):
            await self._delete(node, "Foreground")
            return
        if ORPHAN_FINALIZER in finalizers:
            await self._delete(node, "Orphan")
        elif FOREGROUND_FINALIZER in finalizers:
            await self._delete(node, "Foreground")
        else:
            await self._delete(node, "Background")

    async def _verify_virtual(self, node: Node) -> None:
        """Look up an owner known only from references: drop it if absent, else wait to see it."""
        if await self._latest(node) is None:
            if self.graph.nodes.get(node.uid) is node:
                self.graph.remove(node.uid)
            dependents = self.graph.dependents(node.uid)
            if dependents:
                for key in _keys_of(node):
                    self._remember_absent(key)
            for dependent in dependents:
                self.attempt_to_delete.add(dependent.uid)
            return
        if self.graph.nodes.get(node.uid) is node:
            # It exists but its informer has not shown it: look again after a back-off
            # (upstream keeps polling an unobserved node, issue 56121).
            raise base.RequeueRateLimited(f"{node.kind} {node.name} not observed yet")

    async def _process_deleting_dependents(self, node: Node, latest: Object) -> None:
        """An owner in foreground deletion: delete its dependents, or let it go when none block."""
        dependents = self.graph.dependents(node.uid)
        blocking = [d for d in dependents if d.blocks(node.uid)]
        if not blocking:
            await self._remove_finalizer(node, latest, FOREGROUND_FINALIZER)
            return
        for dependent in blocking:
            if not dependent.deleting:
                self.attempt_to_delete.add(dependent.uid)

    async def _classify_owners(
        self, node: Node, refs: list[Object]
    ) -> tuple[list[Object], list[Object], list[Object]]:
        """Owner references split into (solid, dangling, waiting for dependents' deletion)."""
        solid: list[Object] = []
        dangling: list[Object] = []
        waiting: list[Object] = []
        for ref in refs:
            owner = await self._owner(node, ref)
            if owner is None:
                dangling.append(ref)
                continue
            meta = owner["metadata"]
            if meta.get("deletionTimestamp") and FOREGROUND_FINALIZER in (
                meta.get("finalizers") or ()
            ):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _owner(self, node: Node, ref: Object) -> Object | None:
        """The owner ``ref`` names, live; None when absent or another object has its name."""
        group = ref.get("apiVersion", "").rpartition("/")[0]
        resource = self._by_group_kind.get((group, ref.get("kind", "")))
        if resource is None:
            raise LookupError(f"no resource serves {ref.get('apiVersion')} {ref.get('kind')}")
        if resource.namespaced and not node.namespace:
            return None  # a cluster-scoped object cannot be owned by a namespaced one
        namespace = node.namespace if resource.namespaced else ""
        key = (group, ref.get("kind", ""), namespace, ref.get("name", ""), ref.get("uid", ""))
        if key in self._absent:
            self._absent.move_to_end(key)
            return None
        try:
            owner = await self.client.get(resource, ref.get("name", ""), namespace=namespace)
        except rest.ApiError as exc:
            if exc.not_found:
                self._remember_absent(key)
                return None
            raise
        if owner["metadata"].get("uid") != ref.get("uid"):
            self._remember_absent(key)
            return None
        return owner

    def _remember_absent(self, key: OwnerKey) -> None:
        self._absent[key] = None
        self._absent.move_to_end(key)
        if len(self._absent) > ABSENT_OWNER_CACHE_SIZE:
            self._absent.popitem(last=False)

    async def _latest(self, node: Node) -> Object | None:
        try:
            latest = await self.client.get(node.resource, node.name, namespace=node.namespace)
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise
        return latest if latest["metadata"].get("uid") == node.uid else None

    async def _delete(self, node: Node, policy: rest.PropagationPolicy) -> None:
        log.info(
            "garbage collector: deleting %s %s/%s (%s)",
            node.resource.plural,
            node.namespace,
            node.name,
            policy,
        )
        try:
            await self.client.delete(
                node.resource,
                node.name,
                namespace=node.namespace,
                propagation_policy=policy,
                uid=node.uid,
            )
        except rest.ApiError as exc:
            if not (exc.not_found or exc.conflict):  # gone, or a new object of that name
                raise

    async def _remove_owner_refs(self, node: Node, owner_uids: list[str]) -> None:
        """Drop references to ``owner_uids`` (a strategic merge delete keyed by uid, as upstream)."""
        patch = {
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": u} for u in owner_uids],
                "uid": node.uid,  # precondition: never patch a new object of the same name
            }
        }
        try:
            await self.client.patch(
                node.resource, node.name, patch, namespace=node.namespace, patch_type="strategic"
            )
        except rest.ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise

    async def _remove_finalizer(self, node: Node, latest: Object, finalizer: str) -> None:
        """Remove ``finalizer`` with a resourceVersion-guarded merge patch, retrying conflicts."""
        for _ in range(_CONFLICT_RETRIES):
            meta = latest["metadata"]
            finalizers = list(meta.get("finalizers") or ())
            if finalizer not in finalizers:
                return
            finalizers.remove(finalizer)
            patch = {
                "metadata": {
                    "finalizers": finalizers or None,
                    "resourceVersion": meta["resourceVersion"],
                }
            }
            try:
                await self.client.patch(node.resource, node.name, patch, namespace=node.namespace)
                return
            except rest.ApiError as exc:
                if exc.not_found:
                    return
                if not exc.conflict:
                    raise
            refreshed = await self._latest(node)
            if refreshed is None:
                return
            latest = refreshed
        raise RuntimeError(f"removing finalizer {finalizer} from {node.name}: too many conflicts")

    # ----- attempt to orphan -------------------------------------------------------

    async def _attempt_to_orphan(self, uid: str) -> None:
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        latest = await self._latest(node)
        if latest is None:
            return
        meta = latest["metadata"]
        if not meta.get("deletionTimestamp") or ORPHAN_FINALIZER not in (
            meta.get("finalizers") or ()
        ):
            return
        for dependent in self.graph.dependents(uid):
            await self._remove_owner_refs(dependent, [uid])
        await self._remove_finalizer(node, latest, ORPHAN_FINALIZER)


def _keys_of(node: Node) -> list[OwnerKey]:
    """The absent-owner cache keys of ``node``: one per apiVersion it was seen under."""
    groups = {v.rpartition("/")[0] for v in (node.api_version, *node.aliases)}
    return [(group, node.kind, node.namespace, node.name, node.uid) for group in sorted(groups)]


def _collectable(resource: rest.Resource) -> bool:
    return (
        REQUIRED_VERBS <= resource.verbs
        and (resource.group, resource.plural) not in IGNORED_RESOURCES
    )
