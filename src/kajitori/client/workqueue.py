"""A rate-limited work queue of keys (client-go's workqueue: Type + delaying + rate limiting).

Owns the guarantees every controller relies on:

* an item is processed by at most one worker at a time: an item added while
  it is being processed is marked dirty and queued again only when the
  worker calls ``done``;
* an item queued several times before a worker gets it is processed once
  (dedup), in first-added order;
* ``add_after`` delays an item (the earliest requested time wins);
  ``add_rate_limited`` delays it by its rate limiter: per item, 5 ms
  doubling up to 1000 s, and overall a token bucket of 10 per second with a
  burst of 100, the larger of the two (client-go's
  DefaultControllerRateLimiter); ``forget`` resets an item's failures;
* ``shut_down`` wakes every waiting ``get`` with ``ShutDown``; delayed adds
  still pending are dropped.

Delays use the event loop's clock (``loop.call_at``), so tests may use short
real delays; the limiters take an injectable clock.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T", bound=Hashable)
# A limiter only takes items in: one for any Hashable serves a queue of str keys.
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class ShutDown(Exception):
    """The queue was shut down; workers stop."""


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """Seconds to wait before ``item`` may be retried; counts a failure."""

    def forget(self, item: T_contra) -> None:
        """Clear ``item``'s failure history."""

    def num_requeues(self, item: T_contra) -> int: ...


class ItemExponentialFailureRateLimiter(Generic[T]):
    """``base * 2**failures`` seconds per item, capped at ``cap``."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: collections.Counter[T] = collections.Counter()

    def when(self, item: T) -> float:
        exponent = self._failures[item]
        self._failures[item] += 1
        # 2**exponent grows without bound; past the cap the value no longer matters.
        if exponent > 64:
            return self.cap
        return min(self.base * 2**exponent, self.cap)

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures[item]


class BucketRateLimiter(Generic[T]):
    """An overall token bucket: ``qps`` tokens a second, at most ``burst`` saved up."""

    def __init__(
        self, qps: float = 10.0, burst: int = 100, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: T) -> float:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        # Tokens may go negative: each reservation waits for its own future token.
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: T) -> None:
        return None

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The longest delay any of ``limiters`` asks for."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        self.limiters = limiters

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter[Hashable]:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(), BucketRateLimiter())


class RateLimitingQueue(Generic[T]):
    """The controller work queue; see the module docstring for its guarantees."""

    def __init__(self, rate_limiter: RateLimiter[T] | None = None, *, name: str = "") -> None:
        self.name = name
        self.rate_limiter: RateLimiter[T] = rate_limiter or MaxOfRateLimiter(
            ItemExponentialFailureRateLimiter(), BucketRateLimiter()
        )
        self._queue: collections.deque[T] = collections.deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: dict[T, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def idle(self) -> bool:
        """Nothing queued, being processed or waiting out a delay: all work so far is done."""
        return not self._queue and not self._processing and not self._waiting

    def add(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._ready.set()

    async def get(self) -> T:
        """The next item, which the caller must pass to ``done``; raises ``ShutDown``."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._ready.clear()
            await self._ready.wait()
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._ready.set()

    def add_after(self, item: T, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        pending = self._waiting.get(item)
        if pending is not None:
            if pending[0] <= at:
                return
            pending[1].cancel()
        self._waiting[item] = (at, loop.call_at(at, self._fire, item))

    def _fire(self, item: T) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    def add_rate_limited(self, item: T) -> None:
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    def shut_down(self) -> None:
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._ready.set()
