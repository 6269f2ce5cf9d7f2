"""The watch cache: one storage watch per resource, shared by all of its API watches.

Owns ``WatchCache`` and its ``Subscription``s (upstream:
k8s.io/apiserver/pkg/storage/cacher, our own design). Without it every API
watch opens its own storage watch and decodes and encodes every event
itself: a hundred watchers of one resource cost a hundred times the work per
event, and on etcd a hundred gRPC watch streams.

* **One storage watch.** ``Store`` creates the cache on the first watch of
  its resource. It watches the resource's whole prefix from the revision
  that is current when it starts. A backend with ``watch_into`` (etcd, SQLite)
  hands each batch to the cache in the loop callback that took it from
  storage (etcd: the stream's reader callback; SQLite: the commit's);
  otherwise a task iterates ``Backend.watch``. Either way each storage batch
  is dispatched in one step: every subscriber gets its part of it with one
  wake-up, and watchers without selectors of one namespace (or of all) share
  one ``Batch`` of views per storage batch, whose JSON body is encoded once
  for all of them. Fewer loop turns between storage and the watchers' pumps
  is most of what watch latency is made of when the loop is saturated.
* **A ring of recent events.** The last ``Options.capacity`` events (1024 by
  default) are kept as ``store.DecodedEvent``s: each object is decoded at
  most once, when some watcher first needs it, and each view of it (type and
  object) is one ``WatchEvent`` whose JSON line is encoded at most once, so
  every watcher that wants plain JSON sends the same bytes. Those objects
  are shared: nothing may mutate them. Upstream sizes its ring between 100
  and 100 K events so that it holds at least the last 75 seconds; we keep a
  fixed count, which bounds memory to ``capacity`` events (raw, decoded and
  encoded) per watched resource.
* **The newest value of each recently written key.** Writes start from the
  cache's newest value of their key (a guess the ``Store`` checks), and an
  update's previous side takes its field values from the key's event before
  it. At scale (10,000 pods) a pod's next write often comes after its last
  event left the ring (a binding waits in the scheduler's queue for seconds),
  so the newest event of up to ``Options.kept_keys`` keys stays known after
  eviction, without its decoded objects (``DecodedEvent.kept``: the value
  and the field values, a few KiB): no storage read and no ``prev_kv``
  decode for those keys. Upstream's cacher keeps every object; this keeps
  the recently written ones, bounded.
* **Which watches it serves.** A watch from revision R gets every event of
  the resource after R only if none of them has left the ring: R must be at
  least the revision of the newest evicted event (or the start revision).
  ``subscribe`` answers None otherwise, and ``Store`` falls back to its own
  storage watch, which replays history or answers 410 Gone, and moves onto
  the cache once it has caught up with what the ring holds.
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
import math
from collections.abc import AsyncIterator, Callable, Iterable
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
    long the storage watch outlives the last subscriber; ``kept_keys``: keys
    whose newest event left the ring and whose value is still kept (no
    decoded object: a few KiB each), the most recently evicted first.
    """

    capacity: int = 1024
    queue_size: int = 1000
    linger_seconds: float = 120.0
    kept_keys: int = 8192


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


_UNSET = object()


class Batch(list["WatchEvent"]):
    """Events a subscriber takes together, in revision order; shared, never mutate.

    The cache hands one ``Batch`` per storage batch to all the subscribers
    without selectors of a namespace (or of all namespaces), so its
    ``json_body`` (every event's shared JSON line, joined) is encoded once for
    all of them: a watch handler then sends the same bytes to each, and the
    work per watcher per batch no longer grows with the events in it. A
    subscriber that fell behind by several batches takes them as one
    ``Batch`` made of those ``parts``, whose body joins theirs.
    """

    __slots__ = ("_body", "_parts")

    def __init__(self, events: Iterable[WatchEvent] = (), parts: list[Batch] | None = None) -> None:
        super().__init__(events)
        self._body: bytes | object | None = _UNSET
        self._parts = parts

    def json_body(self) -> bytes | None:
        """The events' ``json_line()``s joined, worked out once; None if one has none.

        An event has none when it is a BOOKMARK or its object lacks ``kind``
        or ``apiVersion`` (a watch handler renders such events itself).
        """
        if self._body is _UNSET:
            self._body = self._encode()
        return self._body  # type: ignore[return-value]

    def _encode(self) -> bytes | None:
        if self._parts is not None:
            bodies = [part.json_body() for part in self._parts]
            return b"".join(b for b in bodies if b is not None) if None not in bodies else None
        if not all(_plain(event) for event in self):
            return None
        return b"".join([event.json_line() for event in self])


class Idle(Batch):
    """An empty batch that is not the end: see ``Subscription.next_batch(idle=...)``.

    ``subscription``: set on the first one a subscription answers, so that a
    consumer behind layers of generators may take the batches from it directly.
    """

    __slots__ = ("subscription",)

    def __init__(self, subscription: Subscription | None = None) -> None:
        super().__init__()
        self.subscription = subscription


# What ``next_batch(idle=...)`` answers after ``idle`` seconds with nothing.
IDLE = Idle()


def _plain(event: WatchEvent) -> bool:
    obj = event.object
    return event.type != "BOOKMARK" and "kind" in obj and "apiVersion" in obj


class Subscription:
    """One API watch served by the cache: its backlog from the ring, then live events.

    ``next_batch`` hands over everything queued as one ``Batch``; iterating
    yields the events one by one. Either way the events are shared with
    other subscribers (never mutate them). Iteration ends when the
    subscription fell ``queue_size`` events behind, when the cache stopped,
    or after ``close``.
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
        # The ring's events for this subscriber (not counted in its bound), then
        # live batches as offered, often the very Batch other subscribers hold.
        self._backlog = Batch()
        self._live: collections.deque[Batch] = collections.deque()
        self._live_count = 0
        # Events taken by ``__anext__`` from a batch and not yet yielded.
        self._iterating: collections.deque[WatchEvent] = collections.deque()
        # The future the consumer waits on while nothing is queued (one per wait).
        self._waiter: asyncio.Future[None] | None = None
        # For ``next_batch(idle=...)``: when the consumer last got something,
        # one timer for the whole quiet period (not one per batch, which cost
        # ~9 µs per batch per watcher as ``asyncio.timeout``), and whether it
        # found the consumer waiting that long.
        self._active = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_due = False
        self._announced = False

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
                self._backlog.append(view)

    def offer(self, change: DecodedEvent) -> bool:
        """Queue a live event; False when the queue is full (the caller ends us)."""
        return self.offer_many([change], None)

    def offer_many(self, changes: list[DecodedEvent], unfiltered: Batch | None) -> bool:
        """Queue live events (in order) with one wake-up; False when they do not fit.

        ``unfiltered``: the views of ``changes`` for watchers without
        selectors, when the caller has them (shared by all such watchers).
        A subscriber that cannot take them all is ended, as it would have
        been at the first one that did not fit (ending drops what is queued).
        """
        if self.ended:
            return True
        if unfiltered is not None and self._unfiltered and changes[0].revision > self.after:
            views = unfiltered
        else:
            views = Batch(view for change in changes if (view := self.view_of(change)) is not None)
        if not views:
            return True
        if self._live_count + len(views) > self._cache.options.queue_size:
            return False
        self._live.append(views)
        self._live_count += len(views)
        self._wake()
        return True

    def end(self) -> None:
        """Stop at once: queued events are dropped, the iterator finishes."""
        self.ended = True
        self._backlog = Batch()
        self._live.clear()
        self._live_count = 0
        self._iterating.clear()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        """The watcher is gone; leave the cache."""
        self.end()
        self._cache.unsubscribe(self)

    def _take(self) -> Batch | None:
        """Everything queued as one batch, or None."""
        live = self._live
        if self._backlog:
            parts = [self._backlog, *live]
            self._backlog = Batch()
        elif len(live) == 1:
            parts = [live[0]]
        elif live:
            parts = list(live)
        else:
            return None
        live.clear()
        self._live_count = 0
        if len(parts) == 1:
            return parts[0]
        return Batch((event for part in parts for event in part), parts)

    async def next_batch(self, idle: float | None = None) -> Batch:
        """Every event queued now, in order (waiting for one if none); empty once ended.

        The batched form of iteration: a watch handler sends them all at once
        instead of taking one event per step. ``idle`` (seconds, may be
        ``math.inf``): answer an ``Idle`` naming this subscription first
        thing, and then ``IDLE`` whenever the subscriber has waited ``idle``
        seconds since it last got anything (a watch handler's bookmark),
        without ending anything.
        """
        if idle is not None and not self._announced:
            self._announced = True
            self._active = asyncio.get_running_loop().time()
            return Idle(self)
        while True:
            if self._iterating:  # only when iteration and batches are mixed
                batch = Batch(self._iterating)
                self._iterating.clear()
                return batch
            taken = self._take()
            if taken is not None:
                if idle is not None:
                    self._active = asyncio.get_running_loop().time()
                return taken
            if self.ended:
                return Batch()
            if idle is not None:
                if self._idle_due:
                    self._idle_due = False
                    self._active = asyncio.get_running_loop().time()
                    return IDLE
                if self._idle_timer is None and idle != math.inf:
                    self._arm(idle)
            await self._wait()

    def _arm(self, idle: float) -> None:
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_at(self._active + idle, self._idle_check, idle)

    def _idle_check(self, idle: float) -> None:
        """The quiet period may be over: tell a consumer that waited it all, else re-arm."""
        self._idle_timer = None
        if self.ended or self._waiter is None:
            return  # not waiting: the next wait arms the timer again
        # (A timer may run up to the clock's resolution early.)
        if asyncio.get_running_loop().time() + 0.001 >= self._active + idle:
            self._idle_due = True
            self._wake()
        else:  # it got something since the timer was set
            self._arm(idle)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._iterating:
            batch = await self.next_batch()
            if not batch:
                raise StopAsyncIteration
            self._iterating.extend(batch)
        return self._iterating.popleft()


class WatchCache:
    """One resource's shared storage watch, ring of recent events and subscribers."""

    def __init__(self, source: Source, options: Options = DEFAULT_OPTIONS) -> None:
        self.source = source
        self.options = options
        self.stats = Stats()
        # Set once the cache stops for good; the Store then builds a new one.
        self.stopped = False
        self._ring: collections.deque[DecodedEvent] = collections.deque()
        # The newest event in the ring per key: the next change of that key
        # takes its object as its own ``previous`` (``DecodedEvent.follow``).
        self._newest: dict[str, DecodedEvent] = {}
        # Keys whose newest event left the ring: what is kept of it
        # (``DecodedEvent.kept``), oldest eviction first, at most
        # ``options.kept_keys``. Writes start from its value as from the
        # ring's (``newest_value``) and the key's next event takes its field
        # values, so a pod bound or updated seconds after its last change reads
        # no storage and a selecting watcher decodes no ``prev_kv`` for it.
        self._kept: collections.OrderedDict[str, DecodedEvent] = collections.OrderedDict()
        # The cache serves watches from any revision at or after this one.
        self._oldest = 0
        self._subscribers: dict[str, set[Subscription]] = {}
        self._count = 0
        self._started: asyncio.Future[None] | None = None
        # The storage watch: a task iterating it, or a backend delivering into
        # _append directly (``watch_into``); _stop_watch ends either.
        self._task: asyncio.Task[None] | None = None
        self._stop_watch: Callable[[], object] | None = None
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
        backend = self.source.backend
        try:
            revision = await backend.current_revision()
        except BaseException:
            self.stopped = True
            raise
        self._oldest = revision
        watch_into = getattr(backend, "watch_into", None)
        if watch_into is not None:
            # Batches are dispatched in the callback that takes them from storage.
            self._stop_watch = watch_into(
                self.source.prefix,
                after_revision=revision,
                deliver=self._append,
                end=self._storage_ended,
            )
        else:
            stream = backend.watch(self.source.prefix, after_revision=revision)
            self._task = self._loop.create_task(
                self._run(stream), name=f"watch cache {self.source.prefix}"
            )
            self._stop_watch = self._task.cancel
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
        elif self._stop_watch is not None:
            self._stop_watch()
            self._shut_down()

    async def _run(self, stream: AsyncIterator[list[storage.Event]]) -> None:
        try:
            async for batch in stream:
                self._append(batch)
        except Exception as exc:  # whatever ended it, the subscribers must end
            self._storage_ended(exc)
        else:
            self._storage_ended(None)
        finally:
            self._shut_down()
            await stream.aclose()  # type: ignore[attr-defined]

    def _storage_ended(self, exc: BaseException | None) -> None:
        if exc is None:
            _log.info("watch cache %s: storage watch ended", self.source.prefix)
        else:
            _log.warning("watch cache %s: storage watch failed: %s", self.source.prefix, exc)
        self._shut_down()

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
        if self._count == 0 and self._stop_watch is not None:
            # Stopped now, so that no new watch joins a cache that is closing.
            self.stopped = True
            self._stop_watch()
            if self._task is None:
                self._shut_down()

    def newest_value(self, key: str) -> storage.KeyValue | None:
        """``key``'s value as of its newest event in the ring; None if none is there.

        What storage held when that event was dispatched: a write committed
        since may not have reached the cache yet, so callers treat it as a
        guess (``Store.guaranteed_update``). None after a delete.
        """
        change = self.newest(key)
        return None if change is None else change.event.kv

    def newest(self, key: str) -> DecodedEvent | None:
        """``key``'s newest event (``newest_value``'s), shared: never mutate it.

        In the ring, or what is kept of it after (nothing decoded).
        """
        change = self._newest.get(key)
        return self._kept.get(key) if change is None else change

    # ----- subscribers ---------------------------------------------------

    def subscribe(self, namespace: str, opts: ListOptions, *, after: int) -> Subscription | None:
        """Serve a watch of ``namespace`` ("" for all) for changes after revision ``after``.

        None when the cache cannot: it has stopped, or events after
        ``after`` have already left the ring (the caller watches storage).
        """
        if self.stopped or self._stop_watch is None or after < self._oldest:
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
        changes = [self.source.decode_event(event) for event in batch]
        newest, kept = self._newest, self._kept
        for change in changes:
            key = change.event.kv.key
            prior = newest.get(key)
            if prior is not None:
                change.follow(prior)
            elif kept:
                prior = kept.pop(key, None)
                if prior is not None:
                    change.follow_kept(prior)
            if change.event.type == "DELETE":
                newest.pop(key, None)
            else:
                newest[key] = change
        ring = self._ring
        ring.extend(changes)
        while len(ring) > self.options.capacity:
            evicted = ring.popleft()
            self._oldest = evicted.revision
            key = evicted.event.kv.key
            if newest.get(key) is evicted:
                del newest[key]
                self._keep(key, evicted)
        self.stats.events += len(changes)
        if self._count:
            self._dispatch(changes)

    def _keep(self, key: str, evicted: DecodedEvent) -> None:
        """``evicted`` left the ring as its key's newest: keep its light form, within bounds."""
        kept = self._kept
        if self.options.kept_keys <= 0:
            return
        kept[key] = evicted.kept()
        if len(kept) > self.options.kept_keys:
            kept.popitem(last=False)

    def _dispatch(self, changes: list[DecodedEvent]) -> None:
        """Hand a storage batch to its subscribers: each gets its part in one step.

        Watchers of every namespace take the whole batch; watchers of one
        namespace take that namespace's events (revision order is kept).
        """
        everywhere = self._subscribers.get("", ())
        if everywhere:
            self._offer(list(everywhere), changes)
        namespaces = len(self._subscribers) - (1 if everywhere else 0)
        if not self.source.info.namespaced or not namespaces:
            return
        by_namespace: dict[str, list[DecodedEvent]] = {}
        for change in changes:
            namespace = self._namespace_of(change)
            if namespace and namespace in self._subscribers:
                by_namespace.setdefault(namespace, []).append(change)
        for namespace, its_changes in by_namespace.items():
            self._offer(list(self._subscribers.get(namespace, ())), its_changes)

    def _offer(self, targets: list[Subscription], changes: list[DecodedEvent]) -> None:
        if not targets:
            return
        # The views a watcher without selectors sees, worked out once for all of
        # them: one Batch, whose JSON body is then encoded once for all of them.
        unfiltered: Batch | None = None
        plain = next((s for s in targets if s._unfiltered), None)
        if plain is not None:
            event_type = self.source.event_type
            # An object that cannot be decoded fails each watcher on its own, below.
            with contextlib.suppress(Exception):
                unfiltered = Batch(
                    view
                    for change in changes
                    if (view := change.unfiltered_view(event_type, plain.opts)) is not None
                )
        for subscription in targets:
            try:
                kept_up = subscription.offer_many(changes, unfiltered)
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
