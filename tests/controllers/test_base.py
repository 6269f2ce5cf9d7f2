"""The one worker loop: success forgets, failure backs off, RequeueAfter delays, done always."""

from __future__ import annotations

import asyncio

from kajitori.client import workqueue
from kajitori.controllers import base


async def test_a_failing_key_is_retried_with_backoff_until_it_succeeds() -> None:
    """raise → add_rate_limited; success → forget (the failure count resets)."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    attempts: list[str] = []
    succeeded = asyncio.Event()

    async def sync(key: str) -> None:
        attempts.append(key)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        succeeded.set()

    queue.add("k")
    workers = asyncio.ensure_future(base.run_workers(queue, sync, 2))
    await asyncio.wait_for(succeeded.wait(), 2)
    assert attempts == ["k", "k", "k"]
    assert queue.num_requeues("k") == 0
    queue.shut_down()
    await asyncio.wait_for(workers, 1)


async def test_requeue_after_looks_again_later_without_counting_a_failure() -> None:
    """``RequeueAfter`` re-adds after its delay and leaves the backoff untouched."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    seen: list[int] = []

    async def sync(key: str) -> None:
        seen.append(queue.num_requeues(key))
        if len(seen) == 1:
            raise base.RequeueAfter(0.02)

    queue.add("k")
    await base.process_item(queue, sync, await queue.get())
    assert len(queue) == 0
    await base.process_item(queue, sync, await asyncio.wait_for(queue.get(), 1))
    assert seen == [0, 0]


async def test_a_key_re_added_during_sync_is_synced_again_afterwards() -> None:
    """``done`` runs even after an error, so a re-add made during sync is not lost."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()

    async def sync(key: str) -> None:
        queue.add(key)

    queue.add("k")
    await base.process_item(queue, sync, await queue.get())
    assert len(queue) == 1
