"""WATCH: a stream of newline-delimited ``{"type": ..., "object": ...}`` events.

The stream ends when the client goes away, when ``timeoutSeconds`` passes
(default: upstream's min-request-timeout of 1800 s, stretched by a random
factor up to 2 so that watchers do not all reconnect at once), or when the
store raises: errors after the stream started (such as 410 Expired for a
compacted resourceVersion) are sent as one ``ERROR`` event carrying a
``Status``, as upstream does. With ``allowWatchBookmarks`` a ``BOOKMARK``
carrying the last delivered resourceVersion is sent every
``BOOKMARK_INTERVAL`` seconds of quiet, never ahead of delivered events.
Plain JSON watchers send the event's own ``json_line()``: the watch cache
hands the same event to every watcher, so it is encoded once for all of them.
Events come from the store in batches (those ready together); a watcher
writes the lines of a batch as one chunk, so with many watchers and many
writes the fan-out costs one step and one write per batch, not per event.
A batch from the watch cache (``cacher.Batch``) is usually the very list
every watcher without selectors of that namespace got, and its body is
encoded once for all of them: per watcher, a batch costs the same whatever
the number of events in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson

from kajitori.machinery import errors
from kajitori.registry.generic import cacher
from kajitori.registry.generic.store import WatchEvent
from kajitori.server import asgi, negotiation, request_info
from kajitori.server.handlers import resources, transform
from kajitori.server.handlers.scope import RequestScope

Object = dict[str, Any]

MIN_REQUEST_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 60.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _timeout(scope: RequestScope) -> float:
    raw = scope.query.get("timeoutSeconds", "")
    if raw:
        try:
            return max(float(int(raw)), 0.0)
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds {raw!r}") from None
    return MIN_REQUEST_TIMEOUT * (1 + random.random())


async def watch(scope: RequestScope) -> None:
    opts = resources.list_options(scope)
    if scope.info.name:
        # GET .../pods/<name>?watch=true watches one object, as a field selector would.
        opts.field_selector, opts.field_names = resources._field_selector(
            scope, f"metadata.name={scope.info.name}"
        )
    timeout = _timeout(scope)
    bookmarks = bool(request_info.query_flag(scope.query, "allowWatchBookmarks"))
    events = scope.store.watch_batches(
        scope.namespace,
        opts,
        send_initial_events=opts.send_initial_events,
        idle=BOOKMARK_INTERVAL if bookmarks else math.inf,
    )
    content_type = negotiation.encode({}, scope.media)[1]
    if scope.media.type == negotiation.YAML:
        content_type = negotiation.JSON
    await asgi.start_stream(scope.send, 200, content_type, scope.headers())
    pump = asyncio.ensure_future(_pump(scope, events, bookmarks))
    gone = asyncio.ensure_future(_client_gone(scope))
    try:
        await asyncio.wait({pump, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, gone):
            task.cancel()
        for task in (pump, gone):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await events.aclose()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        await asgi.send_chunk(scope.send, b"", more=False)


async def _client_gone(scope: RequestScope) -> None:
    while True:
        message = await scope.request.receive()
        if message["type"] == "http.disconnect":
            return


async def _pump(
    scope: RequestScope, batches: AsyncIterator[list[WatchEvent]], bookmarks: bool
) -> None:
    last_rv = 0
    iterator = batches.__aiter__()
    # Plain JSON in the stored version: each event's shared line as it is
    # (decided once; this loop runs once per batch of events per watcher).
    plain = scope.store.info.conversion is None and not scope.media.transform
    # Once the changes come from the watch cache (a ``cacher.Idle`` naming the
    # subscription says so), batches are taken from it directly, not through
    # the store's generators (closing ``batches`` still ends the subscription),
    # and the cache says when the watch has been quiet for BOOKMARK_INTERVAL:
    # one timer per quiet period. Before that (the initial list, a storage
    # watch catching up) each wait has a timeout of its own.
    subscription: cacher.Subscription | None = None
    idle = BOOKMARK_INTERVAL if bookmarks else math.inf
    batch: list[WatchEvent]
    try:
        while True:
            try:
                if subscription is not None:
                    batch = await subscription.next_batch(idle)
                    if not batch and not isinstance(batch, cacher.Idle):
                        return  # the subscription ended
                elif bookmarks:
                    # A timeout scope, not wait_for: no task per batch.
                    async with asyncio.timeout(BOOKMARK_INTERVAL):
                        batch = await iterator.__anext__()
                else:
                    batch = await iterator.__anext__()
            except TimeoutError:
                if last_rv:
                    await _send_event(scope, _bookmark(scope, last_rv, end=False))
                continue
            except StopAsyncIteration:
                return
            if isinstance(batch, cacher.Idle):
                if batch.subscription is not None:
                    subscription = batch.subscription
                elif bookmarks and last_rv:
                    await _send_event(scope, _bookmark(scope, last_rv, end=False))
                continue
            last_rv = await _send_batch(scope, batch, plain, last_rv, bookmarks)
    except errors.StatusError as exc:
        await _send_event(scope, {"type": "ERROR", "object": exc.to_status()})


async def _send_batch(
    scope: RequestScope, batch: list[WatchEvent], plain: bool, last_rv: int, bookmarks: bool
) -> int:
    """Write ``batch`` as one body chunk; returns the newest resourceVersion it delivered.

    Lines rendered before an error (a StatusError ends the watch with an
    ERROR event) still go out first, in order. The initial-events-end
    bookmark goes only to a watch that allows bookmarks (upstream's
    isListWatchRequest).
    """
    if plain and isinstance(batch, cacher.Batch) and batch:
        # From the watch cache: the body is encoded once for every watcher given this batch.
        body = batch.json_body()
        if body is not None:
            await _send_body(scope, body)
            return max(last_rv, batch[-1].revision)
    lines: list[bytes] = []
    try:
        for event in batch:
            last_rv = max(last_rv, event.revision)
            line = _line(scope, event, plain, bookmarks)
            if line is not None:
                lines.append(line)
    finally:
        if lines:
            await _send_lines(scope, lines)
    return last_rv


def _line(scope: RequestScope, event: WatchEvent, plain: bool, bookmarks: bool) -> bytes | None:
    """The event as this watcher sends it; None for what it does not send."""
    if event.type == "BOOKMARK":
        if bookmarks and event.extra.get("initial_events_end"):
            return orjson.dumps(_bookmark(scope, event.revision, end=True)) + b"\n"
        return None
    obj = event.object
    if plain and "kind" in obj and "apiVersion" in obj:
        return event.json_line()  # shared by every watcher of the event
    return _watch_line(scope, event)


async def _send_lines(scope: RequestScope, lines: list[bytes]) -> None:
    await _send_body(scope, lines[0] if len(lines) == 1 else b"".join(lines))


async def _send_body(scope: RequestScope, body: bytes) -> None:
    # "flush": the server writes the chunk now rather than a loop turn later
    # with others of that turn; a watcher sends one chunk per wake-up anyway.
    await scope.send({"type": "http.response.body", "body": body, "more_body": True, "flush": True})


def _bookmark(scope: RequestScope, revision: int, *, end: bool) -> Object:
    obj = scope.store.bookmark_object(revision)
    if end:
        obj["metadata"]["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": obj}


def _render(scope: RequestScope, obj: Object) -> Any:
    kind = scope.media.transform
    if kind == "Table":
        return transform.table(
            scope.store.info,
            [obj],
            scope.media,
            scope.query,
            now=datetime.datetime.now(datetime.UTC),
        )
    if kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
        return transform.partial_object_metadata(obj, scope.media)
    obj.setdefault("kind", scope.store.info.kind)
    obj.setdefault("apiVersion", scope.store.info.group_version)
    return obj


def _watch_line(scope: RequestScope, event: WatchEvent) -> bytes:
    if scope.store.info.conversion is not None:
        # An older served version: each watcher converts its own copy.
        obj = _render(scope, scope.external(event.object))
        return orjson.dumps({"type": event.type, "object": obj}) + b"\n"
    if scope.media.transform:
        rendered = _render(scope, event.object)
        return orjson.dumps({"type": event.type, "object": rendered}) + b"\n"
    # Cached events already carry kind and apiVersion, so this never mutates a shared object.
    _render(scope, event.object)
    return event.json_line()


async def _send_event(scope: RequestScope, event: Object) -> None:
    await asgi.send_chunk(scope.send, orjson.dumps(event) + b"\n")
