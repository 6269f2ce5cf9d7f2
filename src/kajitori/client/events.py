"""Event recorders: core/v1 through a correlator (tools/record), events.k8s.io/v1 in series (tools/events).

Owns how a component reports what it did: ``recorder.event(obj, "Normal",
"Reason", "message")`` returns at once and a broadcaster's background task
writes the Event, so a controller never waits on (or fails because of) its
own reporting. Events about cluster-scoped objects go to the ``default``
namespace, as upstream's. Both broadcasters share one writer (``_Writer``: a
bounded queue, one write at a time, failures logged); a process makes one
broadcaster and a recorder per component from it, as upstream's components
name themselves (``replicaset-controller``, ``kubelet`` on its node).

``EventBroadcaster``/``EventRecorder`` write core/v1 Events (the kubelet's and
the controllers'), doing what upstream's EventCorrelator does before a write:

* **dedup** — an identical event (same involved object and its fieldPath,
  type, reason, message and source) seen again is not written anew: the
  existing Event's ``count`` goes up and its ``lastTimestamp`` moves, by a patch;
* **aggregation** — from the 10th distinct message with the same source,
  object, type and reason within 10 minutes, the events become one Event
  whose message is ``(combined from similar events): <latest message>``,
  counted up by patches (a ReplicaSet creating 1,000 pods: 10 Events, not 1,000);
* **spam filter** — a source may write 25 events (creates or patches)
  about one object, then one more every 5 minutes (a token bucket per
  source and object); the rest are dropped.

``EventsBroadcaster``/``EventsRecorder`` write events.k8s.io/v1 Events (the
scheduler's: ``reportingController``, ``reportingInstance``, ``action``,
``note``) without a correlator; repeats of one become an EventSeries (see
``EventsBroadcaster``). The API server stores both kinds as core/v1 Events.

Bounds: at most ``MAX_PENDING`` events wait to be written per broadcaster
(more are dropped with a log line, as upstream's broadcaster drops under
pressure), and each cache remembers the last ``CACHE_SIZE`` distinct events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx

from kajitori.client import rest
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]
EventType = Literal["Normal", "Warning"]
EventKey = tuple[str, ...]

MAX_PENDING = 1000
CACHE_SIZE = 4096
# Upstream's defaultAggregateMaxEvents / defaultAggregateIntervalInSeconds and
# defaultSpamBurst / defaultSpamQPS (client-go tools/record).
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
AGGREGATE_PREFIX = "(combined from similar events): "
# Upstream's finishTime and refreshTime (client-go tools/events).
SERIES_FINISH = 360.0
SERIES_REFRESH = 1800.0

EVENTS_V1 = rest.Resource("events.k8s.io", "v1", "events", True, "Event")


@dataclasses.dataclass(slots=True)
class _Similar:
    """Distinct messages seen lately for one aggregation key (upstream's aggregateRecord)."""

    messages: set[str]
    last: float


@dataclasses.dataclass(slots=True)
class _Bucket:
    """A token bucket: ``tokens`` left at ``at`` (upstream's per source+object rate limiter)."""

    tokens: float
    at: float


@dataclasses.dataclass(slots=True)
class _Seen:
    name: str
    namespace: str
    count: int
    first_timestamp: str


class _Writer:
    """One bounded queue of writes and the task that makes them, one at a time.

    What both broadcasters share: ``record`` never blocks (a full queue drops,
    as upstream's broadcaster does under pressure), ``flush`` waits for what
    was queued, and a failed write is logged, never raised to the recorder.
    """

    def __init__(self, client: rest.Client) -> None:
        self.client = client
        self._pending: asyncio.Queue[Any] = asyncio.Queue(MAX_PENDING)
        self.clock = time.monotonic
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(loop()) for loop in self._loops()]

    def _loops(self) -> list[Callable[[], Awaitable[None]]]:
        return [self._write_loop]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def flush(self) -> None:
        """Wait until every event recorded so far has been written (or given up on)."""
        await self._pending.join()

    def _queue(self, item: Any, reason: str) -> None:
        try:
            self._pending.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("event dropped (too many pending): %s", reason)

    async def _write_loop(self) -> None:
        while True:
            item = await self._pending.get()
            try:
                await self._write(item)
            except (rest.ApiError, httpx.HTTPError, OSError) as exc:
                log.warning("cannot write event: %s", exc)
            finally:
                self._pending.task_done()

    async def _write(self, item: Any) -> None:
        raise NotImplementedError


class EventBroadcaster(_Writer):
    """core/v1 Events of every recorder made by ``new_recorder``, through one correlator.

    Upstream gives each controller a broadcaster of its own; one here writes
    for all of a process's components in turn (the correlator's keys include
    the source, so sharing it changes nothing but the caches' common bound).
    """

    def __init__(self, client: rest.Client) -> None:
        super().__init__(client)
        self._seen: collections.OrderedDict[EventKey, _Seen] = collections.OrderedDict()
        self._similar: collections.OrderedDict[EventKey, _Similar] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[EventKey, _Bucket] = collections.OrderedDict()

    def new_recorder(self, component: str, host: str = "") -> EventRecorder:
        """A recorder whose Events carry ``source.component``/``host`` (upstream's EventSource)."""
        return EventRecorder(self.client, component=component, host=host, broadcaster=self)

    def record(self, event: Object) -> None:
        key = self._aggregate(event)
        if not self._allowed(event):
            log.debug("event dropped (spam filter): %s %s", event["reason"], event["message"])
            return
        self._queue((event, key), event["reason"])

    def _aggregate(self, event: Object) -> EventKey:
        """Upstream's EventAggregate: the event's dedup key, its message combined from the 10th.

        Similar events (the same but for the message) are counted per
        source, object, type and reason; once ``AGGREGATE_MAX_EVENTS``
        distinct messages were seen within ``AGGREGATE_INTERVAL`` of each
        other, the event is the aggregate one, deduplicated by that key alone.
        """
        full = _key(event)
        similar_key = full[:7] + full[8:10]  # without fieldPath and message
        now = self.clock()
        similar = self._similar.get(similar_key)
        if similar is None or now - similar.last > AGGREGATE_INTERVAL:
            similar = _Similar(set(), now)
        similar.messages.add(event["message"])
        similar.last = now
        self._similar[similar_key] = similar
        self._similar.move_to_end(similar_key)
        _trim(self._similar)
        if len(similar.messages) < AGGREGATE_MAX_EVENTS:
            return full
        similar.messages.pop()  # the set stays below the threshold, as upstream's
        event["message"] = AGGREGATE_PREFIX + event["message"]
        return ("aggregate", *similar_key)

    def _allowed(self, event: Object) -> bool:
        """Upstream's EventSourceObjectSpamFilter: a token bucket per source and object."""
        involved, source = event["involvedObject"], event["source"]
        key = (
            source.get("component", ""),
            source.get("host", ""),
            *(involved.get(k, "") for k in ("kind", "namespace", "name", "uid", "apiVersion")),
        )
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(SPAM_BURST), now)
        bucket.tokens = min(float(SPAM_BURST), bucket.tokens + (now - bucket.at) * SPAM_QPS)
        bucket.at = now
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        _trim(self._buckets)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    async def _write(self, item: tuple[Object, EventKey | None]) -> None:
        event, key = item
        key = key or _key(event)
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            seen.count += 1
            patch = {
                "count": seen.count,
                "lastTimestamp": event["lastTimestamp"],
                "message": event["message"],  # an aggregate's message is the latest one
            }
            try:
                await self.client.patch(
                    rest.EVENTS,
                    seen.name,
                    patch,
                    namespace=seen.namespace,
                    patch_type="strategic",
                )
                return
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise
            # The Event expired or was deleted: write it again, keeping the count.
            event["count"] = seen.count
            event["firstTimestamp"] = seen.first_timestamp
        # The Event is named before it is sent (``_event_meta``) and the server keeps
        # its name, namespace and count: the answer is not decoded.
        await self.client.create(rest.EVENTS, event, decode=False)
        meta = event["metadata"]
        self._seen[key] = _Seen(
            meta["name"], meta["namespace"], int(event.get("count") or 1), event["firstTimestamp"]
        )
        while len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)


class EventRecorder:
    """Writes core/v1 Events from ``component`` (on ``host``) through a broadcaster.

    Without ``broadcaster`` it has one of its own (``start()``, then
    ``await stop()``); recorders made by ``EventBroadcaster.new_recorder``
    share theirs, which its owner starts and stops.
    """

    def __init__(
        self,
        client: rest.Client,
        *,
        component: str,
        host: str = "",
        broadcaster: EventBroadcaster | None = None,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.broadcaster = broadcaster or EventBroadcaster(client)

    def start(self) -> None:
        self.broadcaster.start()

    async def stop(self) -> None:
        await self.broadcaster.stop()

    async def flush(self) -> None:
        await self.broadcaster.flush()

    def event(
        self,
        obj: Object,
        event_type: EventType,
        reason: str,
        message: str,
        *,
        field_path: str = "",
    ) -> None:
        """Record that ``reason``/``message`` happened to ``obj``; never blocks or raises.

        ``field_path`` names a part of ``obj`` the event is about, as upstream's
        ObjectReference.fieldPath (the kubelet's ``spec.containers{name}``).
        """
        self.broadcaster.record(self._new_event(obj, event_type, reason, message, field_path))

    def _new_event(
        self, obj: Object, event_type: str, reason: str, message: str, field_path: str
    ) -> Object:
        involved = _reference(obj)
        if field_path:
            involved["fieldPath"] = field_path
        now = _now()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": _event_meta(involved),
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {k: v for k, v in (("component", self.component), ("host", self.host)) if v},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": event_type,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }


@dataclasses.dataclass(slots=True)
class _Isomorphic:
    """An events.k8s.io Event written lately, and its series (upstream's eventCache entry)."""

    event: Object
    observed: float  # clock() of the last occurrence
    count: int = 1  # 1: a singleton; 2 and up: its series' count
    last_observed: str = ""


class EventsBroadcaster(_Writer):
    """events.k8s.io/v1 Events of the recorders ``new_recorder`` makes (client-go tools/events).

    No correlator: an event about the same object with the same type,
    reason, action, reporting controller and instance and related object as
    one written less than ``SERIES_FINISH`` ago (whatever its note) is an
    isomorphic one. The second occurrence turns the first Event into an
    EventSeries (a patch of ``series.count: 2``); later ones only count in
    memory, and the series is written again every ``SERIES_REFRESH`` and
    when it ends (nothing new for ``SERIES_FINISH``), as upstream's.
    """

    def __init__(self, client: rest.Client) -> None:
        super().__init__(client)
        self._cache: collections.OrderedDict[EventKey, _Isomorphic] = collections.OrderedDict()
        self.finish_interval = SERIES_FINISH
        self._last_refresh = self.clock()

    def new_recorder(self, controller: str, instance: str = "") -> EventsRecorder:
        """A recorder whose Events name ``controller`` (and ``instance``) as their reporter.

        Upstream's default instance is ``<controller>-<hostname>``.
        """
        return EventsRecorder(self, controller, instance or f"{controller}-{socket.gethostname()}")

    def _loops(self) -> list[Callable[[], Awaitable[None]]]:
        return [self._write_loop, self._maintain_loop]

    def record(self, event: Object) -> None:
        key = _series_key(event)
        now = self.clock()
        known = self._cache.get(key)
        if known is None:
            self._cache[key] = _Isomorphic(event, now)
            _trim(self._cache)
            self._queue(("create", event), event["reason"])
            return
        self._cache.move_to_end(key)
        known.observed = now
        known.count += 1
        known.last_observed = event["eventTime"]
        if known.count == 2:  # later repeats wait for the refresh or the series' end
            self._queue(("series", _with_series(known)), event["reason"])

    async def _maintain_loop(self) -> None:
        while True:
            await asyncio.sleep(self.finish_interval)
            self.finish_series()

    def finish_series(self) -> None:
        """Upstream's finishSeries and refreshExistingEventSeries, run every ``finish_interval``.

        A series quiet for ``finish_interval`` is written with its final
        count and forgotten, a singleton that old only forgotten; every
        ``SERIES_REFRESH`` the live series are written again.
        """
        now = self.clock()
        refresh = now - self._last_refresh >= SERIES_REFRESH
        if refresh:
            self._last_refresh = now
        for key, known in list(self._cache.items()):
            ended = now - known.observed >= self.finish_interval
            if known.count > 1 and (ended or refresh):
                self._queue(("series", _with_series(known)), known.event["reason"])
            if ended:
                del self._cache[key]

    async def _write(self, item: tuple[str, Object]) -> None:
        what, event = item
        if what == "series":
            meta = event["metadata"]
            patch = {"series": event["series"]}
            try:
                await self.client.patch(
                    EVENTS_V1,
                    meta["name"],
                    patch,
                    namespace=meta["namespace"],
                    patch_type="strategic",
                )
                return
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise
            # The Event expired or was deleted: write it again, with its series.
        # Nothing reads the answer, so it is not decoded (a pod's life writes ~4 Events).
        await self.client.create(EVENTS_V1, event, decode=False)


class EventsRecorder:
    """Writes events.k8s.io/v1 Events as ``controller`` (``instance``) through its broadcaster."""

    def __init__(self, broadcaster: EventsBroadcaster, controller: str, instance: str) -> None:
        self.broadcaster = broadcaster
        self.controller = controller
        self.instance = instance

    def event(
        self,
        regarding: Object,
        event_type: EventType,
        reason: str,
        action: str,
        note: str,
        *,
        related: Object | None = None,
    ) -> None:
        """Record ``reason`` (what ``action`` found) about ``regarding``; never blocks or raises."""
        ref = _reference(regarding)
        event: Object = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": _event_meta(ref),
            "eventTime": times.now_micro_time(),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "regarding": ref,
            "note": note,
            "type": event_type,
        }
        if related is not None:
            event["related"] = _reference(related)
        self.broadcaster.record(event)


def _reference(obj: Object) -> Object:
    """Upstream's reference.GetReference: the ObjectReference of ``obj`` (empty fields left out)."""
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


def _event_meta(ref: Object) -> Object:
    return {
        # Upstream: the object's name plus the time in nanoseconds, in hex.
        "name": f"{ref.get('name', '')}.{time.time_ns():x}",
        # Events about cluster-scoped objects go to "default", as upstream's.
        "namespace": ref.get("namespace") or "default",
    }


def _with_series(known: _Isomorphic) -> Object:
    """A copy of the cached Event carrying its series (what upstream patches)."""
    event = dict(known.event)
    event["series"] = {"count": known.count, "lastObservedTime": known.last_observed}
    return event


def _series_key(event: Object) -> EventKey:
    """Upstream's getKey: everything but the note and the time."""
    regarding = event["regarding"]
    related = event.get("related") or {}
    return (
        event["type"],
        event["action"],
        event["reason"],
        event["reportingController"],
        event["reportingInstance"],
        *(regarding.get(k, "") for k in _REF_FIELDS),
        *(related.get(k, "") for k in _REF_FIELDS),
    )


_REF_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")


def _trim(cache: collections.OrderedDict[EventKey, Any]) -> None:
    """Keep an LRU cache at ``CACHE_SIZE`` entries (upstream's caches are LRUs of 4,096)."""
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def _key(event: Object) -> EventKey:
    involved = event["involvedObject"]
    source = event["source"]
    return (
        source.get("component", ""),
        source.get("host", ""),
        involved.get("kind", ""),
        involved.get("namespace", ""),
        involved.get("name", ""),
        involved.get("uid", ""),
        involved.get("apiVersion", ""),
        involved.get("fieldPath", ""),  # upstream's getEventKey: a container's events apart
        event["type"],
        event["reason"],
        event["message"],
    )


def _now() -> str:
    return times.now_rfc3339()
