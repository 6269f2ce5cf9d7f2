"""The watch cache: one storage watch per resource, shared by all of its API watches.

Owns ``WatchCache`` and its ``Subscription``s (upstream:
k8s.io/apiserver/pkg/storage/cacher, our own design). Without it every API
watch opens its own storage watch and decodes and encodes every event
itself: a hundred watchers of one resource cost a hundred times the work per
event, and on etcd a hundred gRPC watch streams.

* **One storage watch.** ``Store`` creates the cache on the first watch of
  its resource. It watches the resource's whole prefix from the revision
  that is current when it starts.
* **A ring of recent events.** The last ``Options.capacity`` events (1024 by
  default) are kept as ``store.DecodedEvent``s: each object is decoded at
  most once, when some watcher first needs it, and each view of it (type and
  object) is one ``WatchEvent`` whose JSON line is encoded at most once, so
  every watcher that wants plain JSON sends the same bytes. Those objects
  are shared: nothing may mutate them. Upstream sizes its ring between 100
  and 100 K events so that it holds at least the last 75 seconds; we keep a
  fixed count, which bounds memory to ``capacity`` events (raw, decoded and
  encoded) per watched resource.
* **Which watches it serves.** A watch from revision R gets every event of
  the resource after R only if none of them has left the ring: R must be at
  least the revision of the newest evicted event (or the start revision).
  ``subscribe`` answers None otherwise, and ``Store`` falls back to its own
  storage watch, which replays history or answers 410 Gone.
* **Subscribers.** ``subscribe`` copies the ring's events after R into the
  subscription's backlog and registers it for live events in the same step
  on the event loop, so nothing falls between them and nothing arrives
  twice. The dispatcher filters each live event per subscriber (namespace by
  an index, selectors through ``Store.event_type``, the one implementation
  of the ADDED/MODIFIED/DELETED transition rules) into a bounded queue of
  ``Options.queue_size`` events (1000, upstream's size for watchers of
  everything). A subscriber whose queue is full is ended at once, never
  waited for (upstream's "terminating slow watcher"): its stream closes
  cleanly and its client resumes from the last resourceVersion it saw, from
  the ring if that is still there, else by re-listing after a 410.
* **Lifecycle.** When the last subscriber leaves, the cache lingers for
  ``Options.linger_seconds`` (120 s) so that clients that re-watch (every
  reflector does, after each timeout) resume from the ring, then closes its
  storage watch. When the storage watch ends or fails (compaction overtook
  it, the backend closed), every subscriber is ended cleanly and the cache
  is marked stopped; the ``Store`` starts a fresh one on the next watch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kajitori.registry.resource import ResourceInfo
from kajitori.storage import interface as storage

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DecodedEvent, ListOptions, WatchEvent

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Options:
    """How much a watch cache keeps.

    ``capacity``: events in the ring; ``queue_size``: live events a
    subscriber may fall behind before it is ended; ``linger_seconds``: how
    long the storage watch outlives the last subscriber.
    """

    capacity: int = 1024
    queue_size: int = 1000
    linger_seconds: float = 120.0


DEFAULT_OPTIONS = Options()


class Source(Protocol):
    """What the cache needs from the ``Store`` it serves."""

    info: ResourceInfo
    backend: storage.Backend
    prefix: str

    def decode_event(self, event: storage.Event) -> DecodedEvent:
        """The event, to be decoded lazily and shared by every subscriber."""

    def event_type(self, change: DecodedEvent, opts: ListOptions) -> str | None:
        """ADDED, MODIFIED or DELETED as a watcher with ``opts`` sees it, or None."""


@dataclass(slots=True)
class Stats:
    """Counters for tests and benchmarks."""

    events: int = 0
    terminated: int = 0


class Subscription:
    """One API watch served by the cache: its backlog from the ring, then live events.

    Iterating yields ``WatchEvent``s shared with other subscribers (never
    mutate them). Iteration ends when the subscription fell ``queue_size``
    events behind, when the cache stopped, or after ``close``.
    """

    def __init__(self, cache: WatchCache, *, namespace: str, opts: ListOptions, after: int) -> None:
        self.namespace = namespace
        self.opts = opts
        # Only events after this revision: the client already has the rest.
        self.after = after
        self.ended = False
        self._cache = cache
        # Without selectors every such watcher sees an event the same way (computed once).
        self._unfiltered = opts.label_selector is None and opts.field_selector is None
        self._pending: collections.deque[WatchEvent] = collections.deque()
        self._live: collections.deque[WatchEvent] = collections.deque()
        self._wakeup = asyncio.Event()

    def view_of(self, change: DecodedEvent) -> WatchEvent | None:
        """What this subscriber sees of ``change``, or None."""
        if change.revision <= self.after:
            return None
        if self._unfiltered:
            return change.unfiltered_view(self._cache.source.event_type, self.opts)
        kind = self._cache.source.event_type(change, self.opts)
        return None if kind is None else change.view(kind)

    def replay(self, changes: Iterable[DecodedEvent]) -> None:
        """Take the ring's events as this subscriber's backlog (not counted in its bound)."""
        for change in changes:
            view = self.view_of(change)
            if view is not None:
                self._pending.append(view)

    def offer(self, change: DecodedEvent) -> bool:
        """Queue a live event; False when the queue is full (the caller ends us)."""
        if self.ended:
            return True
        view = self.view_of(change)
        if view is None:
            return True
        if len(self._live) >= self._cache.options.queue_size:
            return False
        self._live.append(view)
        self._wakeup.set()
        return True

    def end(self) -> None:
        """Stop at once: queued events are dropped, the iterator finishes."""
        self.ended = True
        self._pending.clear()
        self._live.clear()
        self._wakeup.set()

    def close(self) -> None:
        """The watcher is gone; leave the cache."""
        self.end()
        self._cache.unsubscribe(self)

    async def next_batch(self) -> list[WatchEvent]:
        """Every event queued now, in order (waiting for one if none); [] once ended.

        The batched form of iteration: a watch handler sends them all at once
        instead of taking one event per step.
        """
        while True:
            if self._pending or self._live:
                batch = [*self._pending, *self._live]
                self._pending.clear()
                self._live.clear()
                return batch
            if self.ended:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._live:
                return self._live.popleft()
            if self.ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()


class WatchCache:
    """One resource's shared storage watch, ring of recent events and subscribers."""

    def __init__(self, source: Source, options: Options = DEFAULT_OPTIONS) -> None:
        self.source = source
        self.options = options
        self.stats = Stats()
        # Set once the cache stops for good; the Store then builds a new one.
        self.stopped = False
        self._ring: collections.deque[DecodedEvent] = collections.deque()
        # The cache serves watches from any revision at or after this one.
        self._oldest = 0
        self._subscribers: dict[str, set[Subscription]] = {}
        self._count = 0
        self._started: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.TimerHandle | None = None

    @property
    def oldest_revision(self) -> int:
        """The oldest revision a watch may start after and still be served here."""
        return self._oldest

    @property
    def subscriber_count(self) -> int:
        return self._count

    # ----- lifecycle -----------------------------------------------------

    async def start(self) -> None:
        """Open the storage watch (once; concurrent callers share the attempt).

        Raises the backend's ``StorageError`` if the current revision cannot
        be read; the cache is then stopped.
        """
        if self._started is None:
            self._started = asyncio.ensure_future(self._open())
        await asyncio.shield(self._started)

    async def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            revision = await self.source.backend.current_revision()
        except BaseException:
            self.stopped = True
            raise
        self._oldest = revision
        stream = self.source.backend.watch(self.source.prefix, after_revision=revision)
        self._task = self._loop.create_task(
            self._run(stream), name=f"watch cache {self.source.prefix}"
        )
        self._schedule_idle_stop()

    async def stop(self) -> None:
        """Close the storage watch and end every subscriber."""
        self.stopped = True
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, stream: AsyncIterator[list[storage.Event]]) -> None:
        try:
            async for batch in stream:
                self._append(batch)
            _log.info("watch cache %s: storage watch ended", self.source.prefix)
        except Exception as exc:  # whatever ended it, the subscribers must end
            _log.warning("watch cache %s: storage watch failed: %s", self.source.prefix, exc)
        finally:
            self._shut_down()
            await stream.aclose()  # type: ignore[attr-defined]

    def _shut_down(self) -> None:
        """End every subscriber; they resume from their last revision on a new cache."""
        self.stopped = True
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.end()
        self._subscribers.clear()
        self._count = 0

    def _schedule_idle_stop(self) -> None:
        if self._count or self.stopped or self._loop is None or self._idle is not None:
            return
        # The loop may already be closed when a watch is finalized at shutdown.
        with contextlib.suppress(RuntimeError):
            self._idle = self._loop.call_later(self.options.linger_seconds, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        self._idle = None
        if self._count == 0 and self._task is not None:
            # Stopped now, so that no new watch joins a cache that is closing.
            self.stopped = True
            self._task.cancel()

    # ----- subscribers ---------------------------------------------------

    def subscribe(self, namespace: str, opts: ListOptions, *, after: int) -> Subscription | None:
        """Serve a watch of ``namespace`` ("" for all) for changes after revision ``after``.

        None when the cache cannot: it has stopped, or events after
        ``after`` have already left the ring (the caller watches storage).
        """
        if self.stopped or self._task is None or after < self._oldest:
            return None
        namespace = namespace if self.source.info.namespaced else ""
        subscription = Subscription(self, namespace=namespace, opts=opts, after=after)
        subscription.replay(
            change
            for change in self._ring
            if not namespace or self._namespace_of(change) == namespace
        )
        self._subscribers.setdefault(namespace, set()).add(subscription)
        self._count += 1
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.namespace)
        if subscribers is None or subscription not in subscribers:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.namespace]
        self._count -= 1
        self._schedule_idle_stop()

    # ----- events --------------------------------------------------------

    def _append(self, batch: list[storage.Event]) -> None:
        for event in batch:
            change = self.source.decode_event(event)
            self._ring.append(change)
            if len(self._ring) > self.options.capacity:
                self._oldest = self._ring.popleft().revision
            self.stats.events += 1
            if self._count:
                self._dispatch(change)

    def _dispatch(self, change: DecodedEvent) -> None:
        targets = list(self._subscribers.get("", ()))
        namespace = self._namespace_of(change)
        if namespace:
            targets.extend(self._subscribers.get(namespace, ()))
        for subscription in targets:
            try:
                kept_up = subscription.offer(change)
            except Exception:  # one watcher's filter must not stop the others
                _log.exception("watch cache %s: filtering failed", self.source.prefix)
                kept_up = False
            if not kept_up:
                self._terminate(subscription)

    def _terminate(self, subscription: Subscription) -> None:
        _log.info("watch cache %s: ending a watcher that fell behind", self.source.prefix)
        self.stats.terminated += 1
        subscription.close()

    def _namespace_of(self, change: DecodedEvent) -> str:
        if not self.source.info.namespaced:
            return ""
        namespace, slash, _ = change.event.kv.key[len(self.source.prefix) :].partition("/")
        return namespace if slash else ""
