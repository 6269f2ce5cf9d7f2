"""How many sandboxes and containers the oci runtime creates at once, containers first.

Creating a sandbox (pinned namespaces, CNI ADD) or a container (overlay,
shim, ``runc create``) is mostly CPU in short-lived processes. With every
pod's worker running at once, twenty pods created together share the CPU
evenly and all become Ready at the end, together; letting only as many
creations run as there are cores, and a pod's container before another
pod's sandbox, finishes pods one after another instead: the same total
time, but the median pod is Ready in about half of it (decision 0034).
Image pulls, volume set-up and hooks are not gated: they wait on the
network or on the container, and a slow pull must not hold up other pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
from collections.abc import AsyncIterator

CONTAINER = 0  # served first: it finishes a pod already under way
SANDBOX = 1


class StartGate:
    """At most ``limit`` creations at once; waiters by priority, then in arrival order."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = max(limit or os.cpu_count() or 2, 1)
        self._busy = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self._busy < self.limit and not self._waiting:
            self._busy += 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), granted))
        try:
            await granted  # _release counted us in before waking us
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # woken and cancelled at once: pass the slot on
            raise

    def _release(self) -> None:
        self._busy -= 1
        while self._waiting and self._busy < self.limit:
            _, _, granted = heapq.heappop(self._waiting)
            if granted.done():  # its waiter was cancelled
                continue
            self._busy += 1
            granted.set_result(None)
