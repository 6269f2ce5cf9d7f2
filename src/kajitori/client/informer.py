"""Shared informers: a local, indexed cache of one resource kept current by list + watch.

Owns client-go's reflector + indexer + shared informer, reduced to what our
controllers need:

* ``Indexer`` — objects by ``namespace/name`` key (``name`` for cluster
  objects), plus named secondary indices (``by_index``), e.g. by namespace
  or by owner UID, and tallies (``tally``): per index value, how many
  objects have each summary (a ReplicaSet's pods counted by readiness and
  labels, kept current event by event instead of recounted on every sync);
* ``Informer`` — lists the collection, then watches from the list's
  resourceVersion, updating the indexer and calling handlers. It re-lists
  when the server answers 410 Gone (an ``ERROR`` event: our resourceVersion
  was compacted away), resumes watching from the last resourceVersion when
  the stream ends cleanly (as the reflector does), and backs off
  (0.8 s doubling to 30 s, as the reflector) on other errors. A re-list
  reports objects that vanished in between as deletes of a
  ``DeletedFinalStateUnknown`` tombstone, since their final state was never
  seen (``unwrap`` gives a delete handler the object either way). ``resync_period`` re-delivers every cached object as an update so
  level-triggered controllers retry on their own;
* ``InformerFactory`` — one informer per (resource, namespace, metadata-only)
  shared by every controller of a process, started together. Factories
  over in-process clients of one API server (``kajitori up``: the
  controller manager, the scheduler, the kubelets, DNS and kube-proxy) share
  their informers too, as upstream's one shared informer factory per
  process: one list, one watch and one decoded copy of each object for all
  of them, not one per component. The shared informer lists and watches
  through a client of its own (the identity of the component that asked
  first; these components may all read what they share) and stops when its
  last factory stops; each factory's handlers go with it;
* ``transform`` — applied to each object before it is cached (client-go's
  SetTransform). ``strip_managed_fields`` is the one the scheduler, the
  controller manager and the kubelet use, as upstream's do: no component
  reads managedFields from its cache, they are a large part of each object,
  and an update that omits them keeps the stored ones.

Handlers run inline in the informer's task and must not block: controllers
only put keys on their work queue there.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import random
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import httpx

from kajitori.client import rest

log = logging.getLogger(__name__)

Object = dict[str, Any]
IndexFunc = Callable[[Object], Iterable[str]]
# What a tally counts an object as; None leaves it out.
SummaryFunc = Callable[[Object], Hashable | None]

NAMESPACE_INDEX = "namespace"
# client-go's reflector: watches last minWatchTimeout (5 min) to twice that,
# so that watchers of one server do not all reconnect at once.
MIN_WATCH_TIMEOUT = 300
INITIAL_BACKOFF = 0.8
MAX_BACKOFF = 30.0


def meta_namespace_key(obj: Object) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object (client-go's key function)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    name = meta.get("name") or ""
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str, str]:
    """The (namespace, name) a ``meta_namespace_key`` names."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def index_by_namespace(obj: Object) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


@dataclasses.dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A deleted object whose delete event was missed (seen absent only on re-list)."""

    key: str
    obj: Object


def unwrap(obj: Object | DeletedFinalStateUnknown) -> Object:
    """The object a delete handler was given, or the last state its tombstone kept."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class Indexer:
    """Objects by key plus named secondary indices; not thread-safe, one event loop only."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Object] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: index_by_namespace}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._tallies: dict[str, _Tally] = {}
        if indexers:
            self.add_indexers(indexers)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indices (existing objects are indexed straight away)."""
        for name, func in indexers.items():
            self._indexers[name] = func
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    def add_tally(self, name: str, groups: IndexFunc, summary: SummaryFunc) -> None:
        """Count objects by ``summary`` within each of their ``groups`` (existing ones too)."""
        tally = _Tally(groups, summary)
        for obj in self._items.values():
            tally.count(obj, 1)
        self._tallies[name] = tally

    def has_tally(self, name: str) -> bool:
        return name in self._tallies

    def tally(self, name: str, group: str) -> Mapping[Hashable, int]:
        """How many objects of ``group`` have each summary (read-only; absent: none)."""
        return self._tallies[name].counts.get(group, {})

    def get(self, key: str) -> Object | None:
        return self._items.get(key)

    def list(self) -> list[Object]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def by_index(self, index: str, value: str) -> builtins.list[Object]:
        """The objects whose ``index`` function yielded ``value``."""
        keys = self._indices[index].get(value, ())
        return [self._items[k] for k in keys]

    def upsert(self, obj: Object) -> Object | None:
        """Store ``obj``; returns the object it replaced, if any."""
        key = meta_namespace_key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        for tally in self._tallies.values():
            tally.replace(old, obj)
        for name, func in self._indexers.items():
            values = func(obj)
            if old is not None:
                before = func(old)
                if before == values:
                    continue  # most updates (status writes) keep every index value
                self._drop(name, key, before)
            index = self._indices[name]
            for value in values:
                index.setdefault(value, set()).add(key)
        return old

    def delete(self, key: str) -> Object | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
            for tally in self._tallies.values():
                tally.count(old, -1)
        return old

    def _index_one(self, name: str, key: str, obj: Object) -> None:
        for value in self._indexers[name](obj):
            self._indices[name].setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Object) -> None:
        for name, func in self._indexers.items():
            self._drop(name, key, func(obj))

    def _drop(self, name: str, key: str, values: Iterable[str]) -> None:
        index = self._indices[name]
        for value in values:
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]


class _Tally:
    """Per group, how many objects have each summary; updated as the indexer changes."""

    def __init__(self, groups: IndexFunc, summary: SummaryFunc) -> None:
        self.groups = groups
        self.summary = summary
        self.counts: dict[str, dict[Hashable, int]] = {}

    def count(self, obj: Object, delta: int) -> None:
        self._add(self.groups(obj), self.summary(obj), delta)

    def replace(self, old: Object | None, new: Object) -> None:
        groups, summary = self.groups(new), self.summary(new)
        if old is not None:
            old_groups, old_summary = self.groups(old), self.summary(old)
            if old_groups == groups and old_summary == summary:
                return  # most updates change neither
            self._add(old_groups, old_summary, -1)
        self._add(groups, summary, 1)

    def _add(self, groups: Iterable[str], summary: Hashable | None, delta: int) -> None:
        if summary is None:
            return
        for group in groups:
            counts = self.counts.setdefault(group, {})
            total = counts.get(summary, 0) + delta
            if total:
                counts[summary] = total
            else:
                del counts[summary]
                if not counts:
                    del self.counts[group]


@dataclasses.dataclass(frozen=True, slots=True)
class EventHandler:
    """Callbacks for cache changes; ``on_delete`` may receive a ``DeletedFinalStateUnknown``."""

    on_add: Callable[[Object], None] | None = None
    on_update: Callable[[Object, Object], None] | None = None
    on_delete: Callable[[Object | DeletedFinalStateUnknown], None] | None = None


def strip_managed_fields(obj: Object) -> Object:
    """Drop ``metadata.managedFields`` (upstream's TransformStripManagedFields)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


class Informer:
    """List + watch one resource into an ``Indexer``; ``start()``, then ``await stop()``."""

    def __init__(
        self,
        client: rest.Client,
        resource: rest.Resource,
        *,
        namespace: str = "",
        metadata_only: bool = False,
        resync_period: float = 0.0,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Callable[[Object], Object] | None = None,
    ) -> None:
        self.client = client
        self.transform = transform
        self.resource = resource
        self.namespace = namespace
        self.metadata_only = metadata_only
        self.resync_period = resync_period
        self.indexer = Indexer(indexers)
        self.resource_version = ""
        self.relists = 0
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def add_event_handler(self, handler: EventHandler) -> None:
        """Register ``handler``; objects already cached are delivered to it as adds."""
        self._handlers.append(handler)
        if handler.on_add is not None:
            for obj in self.indexer.list():
                _call(handler.on_add, obj)

    def remove_event_handler(self, handler: EventHandler) -> None:
        """Stop calling ``handler`` (a component sharing this informer stopped)."""
        self._handlers = [h for h in self._handlers if h is not handler]

    def has_synced(self) -> bool:
        """True once the first list has been stored and delivered."""
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.ensure_future(self._run()))
        if self.resync_period > 0:
            self._tasks.append(asyncio.ensure_future(self._resync_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        listed = False
        while True:
            try:
                if not listed:
                    await self._list_and_replace()
                    listed = True
                    backoff = INITIAL_BACKOFF
                if await self._watch():
                    backoff = INITIAL_BACKOFF
                    continue
                # A watch that ended at once with nothing: do not spin on it.
            except rest.ApiError as exc:
                listed = False
                if exc.gone:
                    log.debug("%s: watch expired (%s), re-listing", self._name, exc.message)
                    continue
                log.warning("%s: list/watch failed: %s", self._name, exc)
            except (httpx.HTTPError, OSError) as exc:
                listed = False
                log.warning("%s: list/watch failed: %r", self._name, exc)
            await asyncio.sleep(backoff * (1 + random.random() * 0.1))
            backoff = min(backoff * 2, MAX_BACKOFF)

    @property
    def _name(self) -> str:
        return f"informer {self.resource.plural}.{self.resource.group}"

    async def _list_and_replace(self) -> None:
        listed = await self.client.list_all(
            self.resource, namespace=self.namespace, metadata_only=self.metadata_only
        )
        self.resource_version = (listed.get("metadata") or {}).get("resourceVersion", "")
        self.relists += 1
        self._replace(listed.get("items") or [])
        self._synced.set()

    def _replace(self, items: list[Object]) -> None:
        if self.transform is not None:
            items = [self.transform(obj) for obj in items]
        fresh = {meta_namespace_key(obj): obj for obj in items}
        for key in set(self.indexer.keys()) - fresh.keys():
            old = self.indexer.delete(key)
            assert old is not None
            self._notify_delete(DeletedFinalStateUnknown(key, old))
        for obj in fresh.values():
            self._store(obj)

    async def _watch(self) -> int:
        """Watch from ``resource_version`` until the stream ends; the events it brought.

        A stream that ends cleanly (its timeout, or the server ending a
        watcher that fell behind) is resumed from the last resourceVersion
        seen, as the reflector does; only 410 Gone, when that version has
        left the server's history, makes ``_run`` list again.
        """
        seen = 0
        timeout = int(MIN_WATCH_TIMEOUT * (1 + random.random()))
        events = self.client.watch(
            self.resource,
            namespace=self.namespace,
            resource_version=self.resource_version,
            timeout_seconds=timeout,
            allow_bookmarks=True,
            metadata_only=self.metadata_only,
        )
        async for event in events:
            seen += 1
            obj = event.get("object") or {}
            if self.transform is not None and event.get("type") != "BOOKMARK":
                obj = self.transform(obj)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            kind = event.get("type")
            if kind in ("ADDED", "MODIFIED"):
                self._store(obj)
            elif kind == "DELETED":
                self.indexer.delete(meta_namespace_key(obj))
                self._notify_delete(obj)
            if rv:
                self.resource_version = rv
        return seen

    def _store(self, obj: Object) -> None:
        old = self.indexer.upsert(obj)
        for handler in self._handlers:
            if old is None and handler.on_add is not None:
                _call(handler.on_add, obj)
            elif old is not None and handler.on_update is not None:
                _call(handler.on_update, old, obj)

    def _notify_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        for handler in self._handlers:
            if handler.on_delete is not None:
                _call(handler.on_delete, obj)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            if not self.has_synced():
                continue
            for obj in self.indexer.list():
                for handler in self._handlers:
                    if handler.on_update is not None:
                        _call(handler.on_update, obj, obj)


def _call(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:  # one faulty handler must not stop the informer
        log.exception("informer event handler failed")


class InformerFactory:
    """One shared informer per (resource, namespace, metadata-only) for a whole process.

    With ``share`` (the default) and an in-process client, the informers are
    shared with every other sharing factory over the same app (see the
    module docstring); otherwise they are this factory's own.
    """

    def __init__(
        self,
        client: rest.Client,
        *,
        resync_period: float = 0.0,
        transform: Callable[[Object], Object] | None = None,
        share: bool = True,
    ) -> None:
        self.client = client
        self.resync_period = resync_period
        self.transform = transform
        self._app = client.in_process_app if share else None
        self._informers: dict[tuple[rest.Resource, str, bool], Informer] = {}

    def informer(
        self, resource: rest.Resource, *, namespace: str = "", metadata_only: bool = False
    ) -> Informer:
        key = (_identity(resource), namespace, metadata_only)
        found = self._informers.get(key)
        if found is None:
            if self._app is not None:
                found = _SharedView.join(
                    self._app,
                    (*key, self.resync_period, self.transform),
                    lambda: self._new(resource, namespace, metadata_only, shared=True),
                )
            else:
                found = self._new(resource, namespace, metadata_only)
            self._informers[key] = found
        return found

    def existing(self, resource: rest.Resource, *, namespace: str = "") -> Informer | None:
        """The full-object informer of ``resource`` this factory, or a factory it shares
        with, already made; ``None`` when there is none (none is made)."""
        key = (_identity(resource), namespace, False)
        if key in self._informers:
            return self._informers[key]
        shared = _SHARED.get(self._app, {}) if self._app is not None else {}
        if (*key, self.resync_period, self.transform) in shared:
            return self.informer(resource, namespace=namespace)
        return None

    def _new(
        self, resource: rest.Resource, namespace: str, metadata_only: bool, *, shared: bool = False
    ) -> Informer:
        return Informer(
            # A shared informer outlives the component that made it: a client of its own.
            self.client.in_process_copy() if shared else self.client,
            resource,
            namespace=namespace,
            metadata_only=metadata_only,
            resync_period=self.resync_period,
            transform=self.transform,
        )

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running (safe to call again after adding more)."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self) -> None:
        await asyncio.gather(*(i.wait_for_sync() for i in self._informers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))


@dataclasses.dataclass(slots=True)
class _Shared:
    """An informer shared by the in-process factories of one app, and how many hold it."""

    informer: Informer
    holders: int = 0


# app → (resource, namespace, metadata-only, resync period, transform) → the shared informer.
# Weak: an app that is gone (a test's server) takes its informers' entries with it.
_SHARED: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _Shared]] = (
    weakref.WeakKeyDictionary()
)


class _SharedView(Informer):
    """One factory's handle on a shared informer: reads go to it; handlers, start, stop are its own.

    Attribute reads fall through to the shared informer (its indexer, its
    sync state); ``stop`` removes this holder's handlers and stops the
    informer (and closes its client) once no factory holds it any more.
    """

    def __init__(self, app: Any, key: tuple[Any, ...], shared: _Shared) -> None:
        # Not Informer.__init__: everything but the fields below is the shared one's.
        self._app, self._key, self._shared = app, key, shared
        self._own_handlers: list[EventHandler] = []
        self._held = True

    @classmethod
    def join(cls, app: Any, key: tuple[Any, ...], make: Callable[[], Informer]) -> _SharedView:
        entries = _SHARED.setdefault(app, {})
        shared = entries.get(key)
        if shared is None:
            shared = entries[key] = _Shared(make())
        shared.holders += 1
        return cls(app, key, shared)

    def __getattr__(self, name: str) -> Any:
        if name == "_shared":  # not set yet (a copy being made): no shared informer to ask
            raise AttributeError(name)
        return getattr(self._shared.informer, name)

    def add_event_handler(self, handler: EventHandler) -> None:
        self._own_handlers.append(handler)
        self._shared.informer.add_event_handler(handler)

    @property
    def started(self) -> bool:
        return self._shared.informer.started

    def start(self) -> None:
        self._shared.informer.start()

    async def stop(self) -> None:
        for handler in self._own_handlers:
            self._shared.informer.remove_event_handler(handler)
        self._own_handlers.clear()
        if not self._held:
            return
        self._held = False
        self._shared.holders -= 1
        if self._shared.holders > 0:
            return
        entries = _SHARED.get(self._app) or {}
        if entries.get(self._key) is self._shared:
            del entries[self._key]
        await self._shared.informer.stop()
        await self._shared.informer.client.aclose()


def _identity(resource: rest.Resource) -> rest.Resource:
    # Discovery adds kind and verbs; the informer is the same either way.
    return rest.Resource(resource.group, resource.version, resource.plural, resource.namespaced)
