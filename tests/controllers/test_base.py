"""The one controller mechanism: the worker loop and ``QueueController``.

The loop: success forgets, failure backs off (dropped after ``max_retries``),
RequeueAfter delays, done always. ``QueueController``: ``watch`` turns cache
changes into keys (tombstones unwrapped) and ``run`` waits for the watched
caches. Informers here are never started: the tests feed them the way a
list or re-list does (``_replace``), so no server is needed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

from kajitori.client import informer, rest, workqueue
from kajitori.controllers import base

UNUSED_CLIENT = cast(rest.Client, None)


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


async def test_requeue_rate_limited_backs_off_quietly_until_a_success_forgets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``RequeueRateLimited`` re-adds after the key's growing back-off, logs nothing, and a
    later success resets the back-off."""
    caplog.set_level(logging.DEBUG)
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    seen: list[int] = []

    async def sync(key: str) -> None:
        seen.append(queue.num_requeues(key))
        if len(seen) < 3:
            raise base.RequeueRateLimited("not yet")

    queue.add("k")
    await base.process_item(queue, sync, await queue.get(), name="test")
    assert len(queue) == 0  # waiting out its back-off
    for _ in range(2):
        await base.process_item(queue, sync, await asyncio.wait_for(queue.get(), 1), name="test")
    assert seen == [0, 1, 2]
    assert queue.num_requeues("k") == 0
    assert "failed" not in caplog.text


async def test_a_key_re_added_during_sync_is_synced_again_afterwards() -> None:
    """``done`` runs even after an error, so a re-add made during sync is not lost."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()

    async def sync(key: str) -> None:
        queue.add(key)

    queue.add("k")
    await base.process_item(queue, sync, await queue.get())
    assert len(queue) == 1


async def test_a_key_failing_past_max_retries_is_dropped_and_forgotten() -> None:
    """upstream's handleErr: requeue rate-limited up to maxRetries, then drop the key."""
    queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue()
    attempts: list[int] = []

    async def sync(key: str) -> None:
        attempts.append(queue.num_requeues(key))
        raise RuntimeError("always")

    queue.add("k")
    for _ in range(3):
        # The first key comes from add, the next two from the rate-limited re-adds.
        await base.process_item(queue, sync, await asyncio.wait_for(queue.get(), 1), max_retries=2)
    assert attempts == [0, 1, 2]
    assert queue.num_requeues("k") == 0  # forgotten: its next event starts afresh
    await asyncio.sleep(0.05)
    assert len(queue) == 0  # and not re-added


class _Recorder(base.QueueController[str]):
    name = "recorder"

    def __init__(self, source: informer.Informer) -> None:
        super().__init__()
        self.deleted: list[object] = []
        self.source = self.watch(source, on_change=self.enqueue, on_delete=self._deleted)

    def _deleted(self, obj: dict[str, Any]) -> None:
        self.deleted.append(obj)
        self.enqueue(obj)


def _configmap(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "1"}}


async def test_watch_enqueues_keys_and_hands_delete_handlers_the_object_of_a_tombstone() -> None:
    """A re-list that misses an object reports a tombstone; handlers see the object."""
    source = informer.Informer(UNUSED_CLIENT, rest.CONFIGMAPS)
    controller = _Recorder(source)
    source._replace([_configmap("a"), _configmap("b")])  # the first list
    source._replace([_configmap("a")])  # a re-list: "b" went while we were not watching
    assert controller.deleted == [_configmap("b")]
    keys = {await controller.queue.get(), await controller.queue.get()}
    assert keys == {"ns/a", "ns/b"}
    assert controller.caches == [source]


async def test_run_waits_for_the_watched_caches_and_shut_down_ends_it() -> None:
    source = informer.Informer(UNUSED_CLIENT, rest.CONFIGMAPS)
    controller = _Recorder(source)
    synced: list[str] = []

    async def sync(key: str) -> None:
        synced.append(key)

    controller.sync = sync  # type: ignore[method-assign]
    running = asyncio.ensure_future(controller.run(2))
    controller.enqueue_key("ns/early")
    await asyncio.sleep(0.05)
    assert synced == []  # the cache has not synced yet
    source._replace([])
    source._synced.set()  # what the first list does after storing its items
    await asyncio.sleep(0.05)
    assert synced == ["ns/early"]
    controller.shut_down()
    await asyncio.wait_for(running, 1)
