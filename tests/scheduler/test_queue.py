"""The scheduling queue: priority order, backoff, and when unschedulable pods come back."""

from __future__ import annotations

import asyncio

import pytest
from tests.scheduler import helpers

from kajitori.scheduler import queue as scheduling_queue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def q(clock: FakeClock) -> scheduling_queue.SchedulingQueue:
    return scheduling_queue.SchedulingQueue(clock=clock)


async def test_pop_returns_the_highest_priority_then_the_oldest(
    q: scheduling_queue.SchedulingQueue, clock: FakeClock
) -> None:
    """Active is ordered by spec.priority, then by enqueue time."""
    q.add(helpers.make_pod("old-low", priority=0))
    clock.now += 1
    q.add(helpers.make_pod("high", priority=100))
    clock.now += 1
    q.add(helpers.make_pod("new-low", priority=0))
    popped = [(await q.pop()) for _ in range(3)]
    assert [p.pod["metadata"]["name"] for p in popped if p] == ["high", "old-low", "new-low"]


async def test_an_unschedulable_pod_waits_for_a_cluster_change(
    q: scheduling_queue.SchedulingQueue, clock: FakeClock
) -> None:
    """Failed pods park in unschedulable; a move sends them to backoff, then to active."""
    q.add(helpers.make_pod("p"))
    queued = await q.pop()
    assert queued is not None
    q.add_unschedulable(queued)
    assert q.pending()["unschedulable"] == ["default/p"]
    clock.now += 60
    q.flush()
    assert q.pending()["unschedulable"] == ["default/p"]
    q.move_all_to_active_or_backoff()
    assert q.pending()["active"] == ["default/p"]


async def test_a_moved_pod_still_backing_off_goes_to_backoff_first(
    q: scheduling_queue.SchedulingQueue, clock: FakeClock
) -> None:
    """After attempt 1 the backoff is 1 s: a move within it lands in backoff until flushed."""
    q.add(helpers.make_pod("p"))
    queued = await q.pop()
    assert queued is not None
    q.add_unschedulable(queued)
    clock.now += 0.5
    q.move_all_to_active_or_backoff()
    assert q.pending()["backoff"] == ["default/p"]
    clock.now += 0.6
    q.flush()
    assert q.pending()["active"] == ["default/p"]


async def test_a_failure_during_a_cluster_change_goes_to_backoff_not_unschedulable(
    q: scheduling_queue.SchedulingQueue,
) -> None:
    """A move request during the pod's attempt must not be missed (moveRequestCycle)."""
    q.add(helpers.make_pod("p"))
    queued = await q.pop()
    assert queued is not None
    q.move_all_to_active_or_backoff()
    q.add_unschedulable(queued)
    assert q.pending()["backoff"] == ["default/p"]


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [
        pytest.param(1, 1.0, id="first"),
        pytest.param(2, 2.0, id="doubles"),
        pytest.param(4, 8.0, id="doubles-again"),
        pytest.param(5, 10.0, id="capped"),
        pytest.param(9, 10.0, id="stays-capped"),
    ],
)
def test_backoff_starts_at_one_second_and_doubles_to_ten(
    q: scheduling_queue.SchedulingQueue, attempts: int, seconds: float
) -> None:
    """Upstream's defaults: podInitialBackoffSeconds 1, podMaxBackoffSeconds 10."""
    queued = scheduling_queue.QueuedPod(helpers.make_pod(), 0.0, attempts=attempts)
    assert q.backoff_duration(queued) == seconds


async def test_unschedulable_pods_are_retried_after_the_timeout(
    clock: FakeClock,
) -> None:
    """Without any cluster change a parked pod is retried after max_unschedulable."""
    q = scheduling_queue.SchedulingQueue(clock=clock, max_unschedulable=300)
    q.add(helpers.make_pod("p"))
    queued = await q.pop()
    assert queued is not None
    q.add_unschedulable(queued)
    clock.now += 299
    q.flush()
    assert q.pending()["unschedulable"] == ["default/p"]
    clock.now += 1
    q.flush()
    assert q.pending()["active"] == ["default/p"]


async def test_a_pod_deleted_while_in_flight_is_forgotten(
    q: scheduling_queue.SchedulingQueue,
) -> None:
    """Deleting the pod during its attempt drops it, even if the attempt then fails."""
    pod = helpers.make_pod("p")
    q.add(pod)
    queued = await q.pop()
    assert queued is not None
    q.delete(pod)
    q.add_unschedulable(queued)
    assert q.pending() == {"active": [], "backoff": [], "unschedulable": []}


async def test_updating_an_unschedulable_pod_retries_it(
    q: scheduling_queue.SchedulingQueue, clock: FakeClock
) -> None:
    """A spec change (say, a new toleration) may make the pod fit: out of unschedulable."""
    pod = helpers.make_pod("p")
    q.add(pod)
    queued = await q.pop()
    assert queued is not None
    q.add_unschedulable(queued)
    clock.now += 5
    q.update(helpers.make_pod("p", tolerations=[{"operator": "Exists"}]))
    assert q.pending()["active"] == ["default/p"]


async def test_pop_waits_for_a_pod_and_close_ends_it(q: scheduling_queue.SchedulingQueue) -> None:
    """pop blocks until a pod is added; after close it answers None."""
    waiting = asyncio.ensure_future(q.pop())
    await asyncio.sleep(0)
    assert not waiting.done()
    q.add(helpers.make_pod("p"))
    queued = await asyncio.wait_for(waiting, 1)
    assert queued is not None
    assert queued.attempts == 1
    q.close()
    assert await q.pop() is None
