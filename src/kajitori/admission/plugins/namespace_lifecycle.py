"""NamespaceLifecycle: nothing lives in a missing or terminating namespace.

As upstream's plugin (plugin/pkg/admission/namespace/lifecycle): creating a
namespaced object in a namespace that does not exist is 404 NotFound for the
namespace; in one that is being deleted it is 403 Forbidden; the initial
namespaces (default, kube-system, kube-public) may not be deleted.

Every namespaced create asks for its namespace, and a storage read under
write load costs more than the rest of the check (about a third of a
ConfigMap create on SQLite). So, as upstream's plugin reads an informer, the
plugin keeps the namespaces a watch has shown it (``NamespaceCache``) and
reads storage only for a namespace the watch has not shown (one created a
moment ago, or one that does not exist), while the watch is not running, and
for a while after a namespace's deletion started (upstream's "force live
lookup"): the watch's event comes a few loop turns after the write, and a
create right after a namespace's delete must already be refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kajitori.admission.chain import Plugin
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store, WatchEvent

Object = dict[str, Any]
NamespaceGetter = Callable[[str], Awaitable[Object]]
# All namespaces: their current state, an end-of-initial-state bookmark, then changes.
NamespaceWatcher = Callable[[], AsyncIterator["WatchEvent"]]

IMMORTAL_NAMESPACES = frozenset(("default", "kube-system", "kube-public"))
# Upstream's forceLiveLookupTTL: how long a namespace whose deletion started
# is read from storage rather than from the watch.
FORCE_LIVE_LOOKUP_SECONDS = 30.0
# The least time between two starts of the watch (it failed, or storage closed).
RESTART_INTERVAL_SECONDS = 1.0

_log = logging.getLogger(__name__)


class NamespaceCache:
    """Namespaces as the watch last showed them; storage for what it cannot answer."""

    def __init__(self, get_namespace: NamespaceGetter, watch: NamespaceWatcher) -> None:
        self.get_namespace = get_namespace
        self.watch = watch
        self.synced = False
        self._objects: dict[str, Object] = {}
        self._force_live: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_start = float("-inf")

    async def get(self, name: str) -> Object:
        """The namespace ``name`` (never to be mutated); 404 if it does not exist."""
        self._ensure_watching()
        if self.synced and not self._forced_live(name):
            cached = self._objects.get(name)
            if cached is not None:
                return cached
        return await self.get_namespace(name)

    def force_live_lookup(self, name: str) -> None:
        """Read ``name`` from storage for a while: it is changing faster than the watch shows."""
        self._force_live[name] = time.monotonic() + FORCE_LIVE_LOOKUP_SECONDS

    def _forced_live(self, name: str) -> bool:
        until = self._force_live.get(name)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._force_live[name]
        return False

    def _ensure_watching(self) -> None:
        if self._task is not None and not self._task.done():
            return
        now = time.monotonic()
        if now - self._last_start < RESTART_INTERVAL_SECONDS:
            return
        self._last_start = now
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="NamespaceLifecycle namespace watch"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            async for event in self.watch():
                self._apply(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storage trouble: read storage until it restarts
            _log.info("NamespaceLifecycle: namespace watch ended: %s", exc)
        finally:
            self.synced = False
            self._objects.clear()

    def _apply(self, event: WatchEvent) -> None:
        if event.type == "BOOKMARK":
            if event.extra.get("initial_events_end"):
                self.synced = True
            return
        name = event.object.get("metadata", {}).get("name", "")
        if event.type == "DELETED":
            self._objects.pop(name, None)
        else:
            self._objects[name] = event.object


class NamespaceLifecycle(Plugin):
    def __init__(
        self, get_namespace: NamespaceGetter, watch_namespaces: NamespaceWatcher | None = None
    ) -> None:
        """Without ``watch_namespaces``, every check reads the namespace from storage."""
        self.get_namespace = get_namespace
        self.cache = (
            NamespaceCache(get_namespace, watch_namespaces)
            if watch_namespaces is not None
            else None
        )

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if not store.info.namespaced:
            if operation == "UPDATE" and self.cache is not None and _is_namespaces(store):
                self.cache.force_live_lookup(obj.get("metadata", {}).get("name", ""))
            return
        if operation != "CREATE":
            return
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace", "")
        ns = await (
            self.cache.get(namespace) if self.cache is not None else self.get_namespace(namespace)
        )
        if ns.get("status", {}).get("phase") == "Terminating" or ns["metadata"].get(
            "deletionTimestamp"
        ):
            name = meta.get("name") or meta.get("generateName", "")
            raise errors.forbidden(
                store.gr,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        if _is_namespaces(store):
            name = obj["metadata"]["name"]
            if name in IMMORTAL_NAMESPACES:
                raise errors.forbidden(store.gr, name, "this namespace may not be deleted")
            if self.cache is not None:
                self.cache.force_live_lookup(name)


def _is_namespaces(store: Store) -> bool:
    return store.info.group == "" and store.info.plural == "namespaces"
