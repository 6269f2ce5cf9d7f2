"""The scheduling queue: active, backoff and unschedulable sub-queues, as upstream's PriorityQueue.

Mirrors pkg/scheduler/backend/queue/scheduling_queue.go:

* **active** — pods ready to be tried, highest ``spec.priority`` first, then
  the earliest enqueued; ``pop`` waits for one and marks it in flight;
* **backoff** — pods that failed and wait out their backoff (1 s doubling
  per attempt, at most 10 s) before going back to active;
* **unschedulable** — pods no node could take. Nothing is retried there
  until the cluster changes (``move_all_to_active_or_backoff``: a node added
  or updated, an assigned pod deleted) or the pod has waited
  ``max_unschedulable`` seconds (upstream's 5 minutes).

A pod that failed while a cluster change happened during its attempt goes
to backoff, not unschedulable (upstream's moveRequestCycle), so the change
is not missed. ``flush`` moves due pods along; the scheduler calls it every
second. Time is read from ``clock`` so tests drive it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

Object = dict[str, Any]
Clock = Callable[[], float]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE = 300.0


def pod_key(pod: Object) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pod_priority(pod: Object) -> int:
    priority: int = (pod.get("spec") or {}).get("priority") or 0
    return priority


@dataclasses.dataclass(slots=True)
class QueuedPod:
    """A pod in the queue, with when it was (re)queued and how often it was tried."""

    pod: Object
    timestamp: float
    attempts: int = 0
    # The scheduling cycle of the pod's last attempt.
    cycle: int = 0

    @property
    def key(self) -> str:
        return pod_key(self.pod)


class SchedulingQueue:
    """Three sub-queues keyed by ``namespace/name``; every method but ``pop`` is synchronous."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        max_unschedulable: float = MAX_UNSCHEDULABLE,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.active: dict[str, QueuedPod] = {}
        self.backoff: dict[str, QueuedPod] = {}
        self.unschedulable: dict[str, QueuedPod] = {}
        self.in_flight: dict[str, QueuedPod] = {}
        self._heap: list[tuple[int, float, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._closed = False
        self.scheduling_cycle = 0
        self._move_request_cycle = -1

    # --- adding ---------------------------------------------------------------

    def add(self, pod: Object) -> None:
        """A new unscheduled pod (or one seen again): straight to active."""
        key = pod_key(pod)
        if key in self.in_flight:
            self.in_flight[key].pod = pod
            return
        known = self.active.get(key) or self.backoff.pop(key, None)
        known = known or self.unschedulable.pop(key, None)
        if known is None:
            known = QueuedPod(pod, self.clock())
        known.pod = pod
        self._activate(known)

    def update(self, pod: Object) -> None:
        """An unscheduled pod changed: an unschedulable one may fit now, so retry it."""
        key = pod_key(pod)
        for queue in (self.active, self.backoff):
            if key in queue:
                queue[key].pod = pod
                return
        if key in self.unschedulable:
            self._requeue(self.unschedulable.pop(key), pod)
            return
        self.add(pod)

    def delete(self, pod: Object) -> None:
        key = pod_key(pod)
        for queue in (self.active, self.backoff, self.unschedulable, self.in_flight):
            queue.pop(key, None)

    def add_unschedulable(self, queued: QueuedPod, *, error: bool = False) -> None:
        """A tried pod did not fit (or failed with ``error``): park it or back it off."""
        key = queued.key
        if self.in_flight.pop(key, None) is None:
            return  # deleted while it was being scheduled
        queued.timestamp = self.clock()
        if error or self._move_request_cycle >= queued.cycle:
            self.backoff[key] = queued
        else:
            self.unschedulable[key] = queued

    def done(self, queued: QueuedPod) -> None:
        """The pod was bound (or dropped): it leaves the queue."""
        self.in_flight.pop(queued.key, None)

    # --- moving ---------------------------------------------------------------

    def move_all_to_active_or_backoff(self) -> None:
        """The cluster changed: every unschedulable pod gets another chance."""
        for queued in list(self.unschedulable.values()):
            self._requeue(self.unschedulable.pop(queued.key), queued.pod)
        self._move_request_cycle = self.scheduling_cycle

    def flush(self) -> None:
        """Backed-off pods whose time is up, and long-parked unschedulable pods, move on."""
        now = self.clock()
        for key, queued in list(self.backoff.items()):
            if self.backoff_expiry(queued) <= now:
                del self.backoff[key]
                self._activate(queued)
        for key, queued in list(self.unschedulable.items()):
            if now - queued.timestamp >= self.max_unschedulable:
                self._requeue(self.unschedulable.pop(key), queued.pod)

    def backoff_duration(self, queued: QueuedPod) -> float:
        if queued.attempts <= 0:
            return 0.0
        return min(self.initial_backoff * 2 ** (queued.attempts - 1), self.max_backoff)

    def backoff_expiry(self, queued: QueuedPod) -> float:
        return queued.timestamp + self.backoff_duration(queued)

    def _requeue(self, queued: QueuedPod, pod: Object) -> None:
        queued.pod = pod
        if self.backoff_expiry(queued) > self.clock():
            self.backoff[queued.key] = queued
        else:
            self._activate(queued)

    def _activate(self, queued: QueuedPod) -> None:
        key = queued.key
        self.active[key] = queued
        heapq.heappush(
            self._heap, (-pod_priority(queued.pod), queued.timestamp, next(self._seq), key)
        )
        self._wake.set()

    # --- popping --------------------------------------------------------------

    async def pop(self) -> QueuedPod | None:
        """The next pod to schedule, waiting for one; None once ``close``d."""
        while not self._closed:
            while self._heap:
                _, _, _, key = heapq.heappop(self._heap)
                queued = self.active.pop(key, None)
                if queued is None:
                    continue  # a stale heap entry: the pod moved or was deleted
                self.scheduling_cycle += 1
                queued.attempts += 1
                queued.cycle = self.scheduling_cycle
                self.in_flight[key] = queued
                return queued
            self._wake.clear()
            await self._wake.wait()
        return None

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def pending(self) -> dict[str, list[str]]:
        """The keys in each sub-queue (for tests and debugging)."""
        return {
            "active": sorted(self.active),
            "backoff": sorted(self.backoff),
            "unschedulable": sorted(self.unschedulable),
        }
