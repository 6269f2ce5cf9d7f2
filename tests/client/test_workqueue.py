"""The work queue's guarantees: dedup, one worker per key, delays, backoff, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from kajitori.client import workqueue


async def test_a_key_added_twice_before_get_is_handed_out_once() -> None:
    """Dedup: keys queued again while waiting are processed once, in first-added order."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_added_while_processing_is_requeued_only_after_done() -> None:
    """No two workers ever hold the same key; the re-add is delivered after ``done``."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_done_without_a_re_add_does_not_requeue() -> None:
    """A key processed without being re-added leaves the queue empty."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_get_waits_for_an_add() -> None:
    """A waiting ``get`` wakes up when a key arrives."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("k")
    assert await asyncio.wait_for(getter, 1) == "k"


async def test_shut_down_wakes_waiting_getters_with_shutdown() -> None:
    """Workers blocked in ``get`` end with ``ShutDown``; later adds are ignored."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.shut_down()
    with pytest.raises(workqueue.ShutDown):
        await asyncio.wait_for(getter, 1)
    queue.add("late")
    assert len(queue) == 0


async def test_add_after_delivers_later_and_the_earliest_request_wins() -> None:
    """A delayed key is not visible before its time; a sooner request replaces a later one."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    queue.add_after("k", 10.0)
    queue.add_after("k", 0.02)
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "k"
    queue.done("k")
    await asyncio.sleep(0.05)
    assert len(queue) == 0


async def test_idle_only_once_nothing_is_queued_processing_or_delayed() -> None:
    """``idle`` stays false while a key is queued, held by a worker or waiting on a delay."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    assert queue.idle()
    queue.add_after("k", 10.0)
    assert len(queue) == 0 and not queue.idle()  # delayed
    queue.add("k")
    assert not queue.idle()  # queued
    key = await queue.get()
    assert len(queue) == 0 and not queue.idle()  # processing
    queue.done(key)
    assert not queue.idle()  # the 10 s delay is still pending
    queue.shut_down()
    assert queue.idle()


async def test_shut_down_drops_delayed_keys() -> None:
    """Keys still waiting on a delay never arrive after shutdown."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    queue.add_after("k", 0.01)
    queue.shut_down()
    await asyncio.sleep(0.03)
    assert len(queue) == 0


def test_per_item_backoff_doubles_from_5ms_to_the_1000s_cap() -> None:
    """client-go's ItemExponentialFailureRateLimiter(5ms, 1000s), per key, reset by forget."""
    limiter: workqueue.ItemExponentialFailureRateLimiter[str] = (
        workqueue.ItemExponentialFailureRateLimiter()
    )
    delays = [limiter.when("a") for _ in range(4)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert limiter.when("b") == pytest.approx(0.005)
    assert limiter.num_requeues("a") == 4
    for _ in range(100):
        last = limiter.when("a")
    assert last == 1000.0
    limiter.forget("a")
    assert limiter.when("a") == pytest.approx(0.005)


def test_bucket_limiter_allows_a_burst_then_spaces_items_by_qps() -> None:
    """10 per second with a burst of 100: the 101st item waits 0.1 s, the 102nd 0.2 s."""
    now = [0.0]
    limiter: workqueue.BucketRateLimiter[int] = workqueue.BucketRateLimiter(
        10.0, 100, clock=lambda: now[0]
    )
    assert all(limiter.when(i) == 0.0 for i in range(100))
    assert limiter.when(100) == pytest.approx(0.1)
    assert limiter.when(101) == pytest.approx(0.2)
    now[0] = 10.0  # refilled
    assert limiter.when(102) == 0.0


async def test_add_rate_limited_delays_by_the_backoff_and_forget_resets_it() -> None:
    """The default controller limiter delays a failing key 5 ms, then 10 ms."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    queue.add_rate_limited("k")
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "k"
    queue.done("k")
    assert queue.num_requeues("k") == 1
    queue.forget("k")
    assert queue.num_requeues("k") == 0
