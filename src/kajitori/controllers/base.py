"""The one worker loop every controller runs (client-go's processNextWorkItem).

Owns what happens around a controller's ``sync(key)``: take a key from the
work queue, sync it, and then

* success → ``forget`` (the key's backoff starts again from 5 ms);
* ``RequeueAfter`` → look again after the given delay, without counting a
  failure (upstream's namespace controller does this while content remains);
* any other exception → ``add_rate_limited`` (exponential backoff per key);
* always → ``done``, so that a key re-added while it was being synced is
  synced once more.

A key is never synced by two workers at once (the queue guarantees it), so
``sync`` needs no locking per key. Workers end when the queue shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from kajitori.client import workqueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Sync = Callable[[K], Awaitable[None]]


class RequeueAfter(Exception):
    """Raised by ``sync`` to have its key looked at again after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"requeue after {delay:.1f}s")
        self.delay = delay


async def run_workers(
    queue: workqueue.RateLimitingQueue[K], sync: Sync[K], workers: int = 1, *, name: str = ""
) -> None:
    """Run ``workers`` loops over ``queue`` until it is shut down."""
    await asyncio.gather(*(_worker(queue, sync, name) for _ in range(workers)))


async def _worker(queue: workqueue.RateLimitingQueue[K], sync: Sync[K], name: str) -> None:
    while True:
        try:
            key = await queue.get()
        except workqueue.ShutDown:
            return
        await process_item(queue, sync, key, name=name)


async def process_item(
    queue: workqueue.RateLimitingQueue[K], sync: Sync[K], key: K, *, name: str = ""
) -> None:
    """Sync one key taken from ``queue`` and settle it (forget, delay, or back off)."""
    try:
        await sync(key)
    except RequeueAfter as requeue:
        queue.add_after(key, requeue.delay)
    except Exception as exc:
        retries = queue.num_requeues(key)
        level = logging.INFO if retries < 5 else logging.WARNING
        log.log(level, "%s: syncing %r failed (retry %d): %s", name, key, retries, exc)
        queue.add_rate_limited(key)
    else:
        queue.forget(key)
    finally:
        queue.done(key)
