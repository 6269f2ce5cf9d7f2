"""An event recorder writing core/v1 Events about objects (client-go's tools/record).

Owns how a component reports what it did: ``recorder.event(obj, "Normal",
"Reason", "message")`` returns at once and a background task writes the
Event, so a controller never waits on (or fails because of) its own
reporting. Events about cluster-scoped objects go to the ``default``
namespace, as upstream's. What upstream's EventCorrelator does before a
write, this recorder does too:

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

Bounds: at most ``MAX_PENDING`` events wait to be written (more are dropped
with a log line, as upstream's broadcaster drops under pressure), and the
dedup cache remembers the last ``CACHE_SIZE`` distinct events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
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


class EventRecorder:
    """Writes Events from ``component`` (on ``host``); ``start()`` then ``await stop()``."""

    def __init__(self, client: rest.Client, *, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        self._pending: asyncio.Queue[tuple[Object, EventKey]] = asyncio.Queue(MAX_PENDING)
        self._seen: collections.OrderedDict[EventKey, _Seen] = collections.OrderedDict()
        self._similar: collections.OrderedDict[EventKey, _Similar] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[EventKey, _Bucket] = collections.OrderedDict()
        self.clock = time.monotonic
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._write_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def flush(self) -> None:
        """Wait until every event recorded so far has been written (or given up on)."""
        await self._pending.join()

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
        try:
            event = self._new_event(obj, event_type, reason, message, field_path)
            key = self._aggregate(event)
            if not self._allowed(event):
                log.debug("event dropped (spam filter): %s %s", reason, message)
                return
            self._pending.put_nowait((event, key))
        except asyncio.QueueFull:
            log.warning("event dropped (too many pending): %s %s", reason, message)

    def _new_event(
        self, obj: Object, event_type: str, reason: str, message: str, field_path: str
    ) -> Object:
        meta = obj.get("metadata") or {}
        involved = {
            "kind": obj.get("kind", ""),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
            "fieldPath": field_path,
        }
        now = _now()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                # Upstream: the object's name plus the time in nanoseconds, in hex.
                "name": f"{involved['name']}.{time.time_ns():x}",
                "namespace": involved["namespace"] or "default",
            },
            "involvedObject": {k: v for k, v in involved.items() if v},
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

    async def _write_loop(self) -> None:
        while True:
            event, key = await self._pending.get()
            try:
                await self._write(event, key)
            except (rest.ApiError, httpx.HTTPError, OSError) as exc:
                log.warning("cannot write event %s: %s", event["reason"], exc)
            finally:
                self._pending.task_done()

    async def _write(self, event: Object, key: EventKey | None = None) -> None:
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
        created = await self.client.create(rest.EVENTS, event)
        meta = created["metadata"]
        self._seen[key] = _Seen(
            meta["name"], meta["namespace"], int(created.get("count") or 1), event["firstTimestamp"]
        )
        while len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)


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
