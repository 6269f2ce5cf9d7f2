"""The stored APIServices, kept in memory from a list and watch of their store.

Every part of the aggregator reads APIServices from here (upstream: the
APIService informer they share); each part subscribes to learn which names
changed. The objects are the watch's shared ones: never mutate them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from kajitori.auth import reflector
from kajitori.registry.generic.store import Store

Object = dict[str, Any]
Listener = Callable[[str], None]


def name_of(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def service_of(obj: Object) -> Object | None:
    """``spec.service`` of a remote APIService; None for a local one."""
    service = (obj.get("spec") or {}).get("service")
    return service if isinstance(service, dict) else None


class APIServiceIndex:
    """APIServices by name, with listeners told of every changed name."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.objects: dict[str, Object] = {}
        self.synced = asyncio.Event()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._task = asyncio.create_task(
            reflector.reflect(
                "aggregator apiservices", self.store, self._replace, self._apply, self.synced
            )
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def remote(self, group: str, version: str) -> Object | None:
        """The remote APIService for a group version, if there is one."""
        obj = self.objects.get(f"{version}.{group}")
        return obj if obj is not None and service_of(obj) is not None else None

    def remotes(self) -> list[Object]:
        return [obj for obj in self.objects.values() if service_of(obj) is not None]

    def _replace(self, items: Iterable[Object]) -> None:
        fresh = {name_of(obj): obj for obj in items}
        changed = set(self.objects) | set(fresh)
        self.objects = fresh
        for name in changed:
            self._notify(name)

    def _apply(self, event_type: str, obj: Object) -> None:
        name = name_of(obj)
        if event_type == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        self._notify(name)

    def _notify(self, name: str) -> None:
        for listener in self._listeners:
            listener(name)
