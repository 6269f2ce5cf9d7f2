"""Seats, queues and rejections of one priority level.

Upstream's fairqueuing/queueset, reduced: every request takes one seat (no
work estimator); a level's seats are its nominal concurrency limit (no
borrowing between levels). A request that finds a free seat and nobody
waiting runs at once. Otherwise, on a ``Queue`` level, the flow's hand of
queues (shuffle sharding, dealt once per flow) gives the queue with the
fewest requests waiting or running; a full queue (``queueLengthLimit``)
rejects. When a seat frees, the non-empty queues are served in turn (round
robin, our stand-in for upstream's virtual-time fair queuing: each flow's
queue gets its share however many requests it holds). A ``Reject`` level
has no queues and rejects when its seats are taken. Exempt levels only
count.

Everything runs on the event loop: no locks. ``Waiter`` futures are
resolved by ``release``; a waiter that gives up (time-out, cancellation)
removes itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from kajitori.server.flowcontrol.classify import LevelSpec
from kajitori.server.request_info import RequestInfo

# Upstream's maxRetryAfter (dropped_requests_tracker.go).
MAX_RETRY_AFTER = 32


@dataclass(slots=True, eq=False)
class FlowStats:
    """Per (FlowSchema, level) numbers behind ``apiserver_flowcontrol_*``."""

    schema: str
    level: str
    dispatched: int = 0
    executing: int = 0
    waiting: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Waiter:
    """A queued request: resolved with True once it holds a seat, False if it gives up."""

    future: asyncio.Future[bool]
    queue: int
    stats: FlowStats
    distinguisher: str
    arrived: float  # wall-clock seconds, for dump_requests
    user: str
    info: RequestInfo
    timed_out: bool = False


class LevelState:
    """One priority level's seats and queues (kept across configuration changes)."""

    def __init__(self, spec: LevelSpec) -> None:
        self.spec = spec
        self.executing = 0
        self.waiting = 0
        self.dispatched = 0
        self.rejected = 0
        self.timed_out = 0
        self.cancelled = 0
        self.queues: list[deque[Waiter]] = []
        self.queue_executing: list[int] = []
        self._next = 0
        self.dropped = DroppedRequests()
        self.configure(spec)

    def configure(self, spec: LevelSpec) -> None:
        """Take a new spec; queued requests are dealt again if the queue count changed."""
        self.spec = spec
        wanted = spec.queues if spec.queuing and not spec.exempt else 0
        if wanted == len(self.queues):
            self.dispatch()  # the limit may have grown
            return
        old = [w for q in self.queues for w in q]
        self.queues = [deque() for _ in range(wanted)]
        self.queue_executing = [0] * wanted
        self._next = 0
        for waiter in old:
            waiter.queue = waiter.queue % wanted if wanted else 0
            if wanted:
                self.queues[waiter.queue].append(waiter)
            else:
                waiter.stats.waiting -= 1
                if not waiter.future.done():
                    waiter.future.set_result(False)  # no queues any more: rejected
        self.waiting = sum(len(q) for q in self.queues)
        self.dispatch()

    @property
    def active_queues(self) -> int:
        return sum(1 for q in self.queues if q)

    def try_start(self, hand: list[int] | None) -> int | None:
        """A seat now (the queue index, -1 without queues), or None: wait or reject."""
        if self.spec.exempt:
            self.executing += 1
            return -1
        if self.executing < self.spec.limit and not self.waiting:
            self.executing += 1
            if not self.queues or not hand:
                return -1
            index = self._least_loaded(hand)
            self.queue_executing[index] += 1
            return index
        return None

    def choose_queue(self, hand: list[int]) -> int | None:
        """The hand's least loaded queue, or None when it is full (or there are no queues)."""
        if not self.queues or not hand:
            return None
        index = self._least_loaded(hand)
        if len(self.queues[index]) >= self.spec.queue_length_limit:
            return None
        return index

    def _least_loaded(self, hand: list[int]) -> int:
        queues, running = self.queues, self.queue_executing
        return min(hand, key=lambda i: len(queues[i]) + running[i])

    def enqueue(self, waiter: Waiter) -> None:
        self.queues[waiter.queue].append(waiter)
        self.waiting += 1
        waiter.stats.waiting += 1

    def expire(self, waiter: Waiter) -> None:
        """The waiter's time is up (its timer calls this): out of the queue, refused."""
        if waiter.future.done():
            return
        self.withdraw(waiter)
        self.timed_out += 1
        waiter.timed_out = True
        waiter.future.set_result(False)

    def withdraw(self, waiter: Waiter) -> None:
        """A waiter that gave up leaves its queue."""
        queue = self.queues[waiter.queue] if waiter.queue < len(self.queues) else None
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self.waiting -= 1
            waiter.stats.waiting -= 1

    def release(self, queue: int) -> None:
        """A request's seat is free again: hand it to the next waiter, queues in turn."""
        self.executing -= 1
        if queue >= 0 and queue < len(self.queue_executing) and self.queue_executing[queue]:
            self.queue_executing[queue] -= 1  # (counts restart when the queues are remade)
        if self.waiting:
            self.dispatch()

    def dispatch(self) -> None:
        """Hand free seats to waiters, their queues in turn."""
        while self.waiting and self.executing < self.spec.limit:
            waiter = self._next_waiter()
            if waiter is None:
                return
            self.executing += 1
            self.queue_executing[waiter.queue] += 1
            waiter.future.set_result(True)

    def _next_waiter(self) -> Waiter | None:
        count = len(self.queues)
        for step in range(count):
            index = (self._next + step) % count
            queue = self.queues[index]
            while queue:
                waiter = queue.popleft()
                self.waiting -= 1
                waiter.stats.waiting -= 1
                if not waiter.future.done():
                    self._next = (index + 1) % count
                    return waiter
        return None


class DroppedRequests:
    """Upstream's droppedRequestsStats: the Retry-After a rejection suggests.

    Starts at 1 s. When a second ends that saw rejections, the rejections of
    the last ``retry_after`` seconds decide: at least 3 × retry_after doubles
    it (at most once per retry_after seconds, up to 32), fewer than
    retry_after takes one second off.
    """

    def __init__(self) -> None:
        self.retry_after = 1
        self._history: list[tuple[int, int]] = []  # (unix second, rejections)
        self._current = 0
        self._count = 0
        self._raised_at = 0

    def record(self, now: float | None = None) -> None:
        second = int(time.time() if now is None else now)
        if second == self._current:
            self._count += 1
            return
        self._history.append((self._current, self._count))
        self._history = [h for h in self._history if second - h[0] <= MAX_RETRY_AFTER]
        self._current, self._count = second, 1
        self._adjust(second)

    def _adjust(self, second: int) -> None:
        retry = self.retry_after
        dropped = sum(n for at, n in self._history if second - at <= retry and at < second)
        if second - self._raised_at >= retry and dropped >= 3 * retry:
            self.retry_after = min(retry * 2, MAX_RETRY_AFTER)
            self._raised_at = second
        elif dropped < retry and retry > 1:
            self.retry_after = retry - 1
