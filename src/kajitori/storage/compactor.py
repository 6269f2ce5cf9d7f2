"""Automatic compaction for any storage backend.

Owns *when* history is forgotten; each backend owns *how* (``compact``).
Without it a revisioned store grows with every write forever (kine's
best-known problem).

Policy. Every ``interval_seconds`` (default 300 s, as kube-apiserver's
``--etcd-compaction-interval``) the compactor notes the current revision and
compacts to

    min(revision noted at the previous tick, current - keep_revisions)

if that is newer than what is already compacted. So at any moment at least
one whole interval of history *and* at least ``keep_revisions`` revisions
stay readable (the first bound is upstream's, the second kine's minimum
retention): a watcher or paginated list up to one interval behind can still
resume, and a burst of writes cannot compact away what a client read a second
ago. The first tick only notes the revision. A failed compaction (a
concurrent compactor got there first, a transient error) is logged and tried
again at the next tick; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kajitori.storage import interface

_log = logging.getLogger(__name__)


class Compactor:
    """Compacts ``backend`` in the background by the policy above.

    Use ``start()``/``stop()`` around the backend's life, or call ``tick()``
    to run one round yourself (tests drive it that way instead of sleeping).
    """

    def __init__(
        self,
        backend: interface.Backend,
        *,
        interval_seconds: float = 300.0,
        keep_revisions: int = 1000,
    ) -> None:
        if interval_seconds <= 0 or keep_revisions < 0:
            raise ValueError("interval_seconds must be > 0 and keep_revisions >= 0")
        self._backend = backend
        self._interval = interval_seconds
        self._keep = keep_revisions
        self._previous: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> int | None:
        """One round: returns the revision compacted to, or None if nothing was."""
        current = await self._backend.current_revision()
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        target = min(previous, current - self._keep)
        if target <= await self._backend.compacted_revision():
            return None
        try:
            await self._backend.compact(target)
        except interface.StorageError as exc:
            _log.warning("compaction to revision %d failed: %s", target, exc)
            return None
        _log.debug("compacted to revision %d", target)
        return target

    async def run(self) -> None:
        """Tick every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.tick()

    def start(self) -> None:
        """Run in a background task on the current loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="kajitori-storage-compactor"
            )

    async def stop(self) -> None:
        """Cancel the background task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
