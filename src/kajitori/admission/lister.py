"""Objects of one resource as a watch last showed them, for admission plugins' reads.

Owns ``StoreLister`` (upstream: the informer listers admission plugins read,
e.g. the ServiceAccount, LimitRanger and Priority plugins). A pod create
read a ServiceAccount, the namespace's LimitRanges (twice) and every
PriorityClass from storage: four storage round trips, about a sixth of the
create's CPU. A lister keeps the resource's objects from one watch of the
resource's ``Store`` (served by its watch cache), so those reads cost a dict
lookup.

When it answers, and when the plugin reads storage instead (``cached_get``
and ``cached_list`` return None):

* before the watch has delivered the initial state, and after it ended
  (storage trouble, server shutdown) until it runs again;
* while the watch is behind a write this server made to the resource
  (``Store.written_revision``): a client that just created a LimitRange or
  a ServiceAccount through this server is answered as from storage, so no
  one sees the window between a write and its watch event. Writes made
  through another API server sharing etcd show up when their watch event
  does, as with upstream's informers.

What a plugin does with "not in the cache" (a live read, as upstream's
ServiceAccount and LimitRanger plugins do) is its own business. The objects
handed out are the watch's shared objects: never mutate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store, WatchEvent

Object = dict[str, Any]
StoreGetter = Callable[[], "Store | None"]

# The least time between two starts of the watch (it failed, or storage closed).
RESTART_INTERVAL_SECONDS = 1.0

_log = logging.getLogger(__name__)


class StoreLister:
    """One resource's objects by namespace and name, kept by a watch of its store."""

    def __init__(self, store: StoreGetter, *, name: str) -> None:
        """``store`` finds the resource's store (None: not served); ``name`` names the task."""
        self._get_store = store
        self._name = name
        self._store: Store | None = None
        self.synced = False
        # The newest revision the watch has shown (an event's, or the initial state's).
        self.revision = 0
        self._objects: dict[str, dict[str, Object]] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_start = float("-inf")

    def cached_get(self, namespace: str, name: str) -> Object | None:
        """The object if the watch is current and holds it; None: read storage."""
        objects = self._current()
        if objects is None:
            return None
        return objects.get(namespace, {}).get(name)

    def cached_list(self, namespace: str) -> list[Object] | None:
        """The namespace's objects (all, for "") if the watch is current; None: read storage."""
        objects = self._current()
        if objects is None:
            return None
        if namespace:
            return list(objects.get(namespace, {}).values())
        return [obj for names in objects.values() for obj in names.values()]

    def cached_empty(self) -> bool:
        """Whether the watch is current and holds nothing: a plugin with nothing configured."""
        return not self._objects and self._current() is not None

    def _current(self) -> dict[str, dict[str, Object]] | None:
        self._ensure_watching()
        store = self._store
        if not self.synced or store is None or store.written_revision > self.revision:
            return None
        return self._objects

    def _ensure_watching(self) -> None:
        if self._task is not None and not self._task.done():
            return
        now = time.monotonic()
        if now - self._last_start < RESTART_INTERVAL_SECONDS:
            return
        self._last_start = now
        store = self._get_store()
        if store is None:
            return
        self._store = store
        self._task = asyncio.get_running_loop().create_task(self._run(store), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, store: Store) -> None:
        try:
            async for event in store.watch("", ListOptions(), send_initial_events=True):
                self._apply(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storage trouble: read storage until it restarts
            _log.info("%s ended: %s", self._name, exc)
        finally:
            self.synced = False
            self._objects = {}

    def _apply(self, event: WatchEvent) -> None:
        self.revision = max(self.revision, event.revision)
        if event.type == "BOOKMARK":
            if event.extra.get("initial_events_end"):
                self.synced = True
            return
        meta = event.object.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if event.type == "DELETED":
            names = self._objects.get(namespace)
            if names is not None:
                names.pop(name, None)
                if not names:
                    del self._objects[namespace]
        else:
            self._objects.setdefault(namespace, {})[name] = event.object
