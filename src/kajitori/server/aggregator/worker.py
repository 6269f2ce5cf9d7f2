"""The one processNextWorkItem loop the aggregator's controllers share.

A key is synced; a failure is logged and the key comes back rate limited
(upstream's workqueue.AddRateLimited), a success forgets its failures.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from kajitori.client.workqueue import RateLimitingQueue, ShutDown

log = logging.getLogger(__name__)


async def run_worker(
    queue: RateLimitingQueue[str], sync: Callable[[str], Awaitable[None]], name: str
) -> None:
    """Until the queue shuts down (or the task is cancelled)."""
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
        except Exception as exc:  # a failed sync is retried, never fatal
            log.warning("%s: syncing %s failed: %s; retrying", name, key, exc)
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)
