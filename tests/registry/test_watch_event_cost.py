"""The cost of a watch event: shortcuts that must answer as the slow path does.

Real ``Store``s over a real ``SqliteBackend``, and the watch handler's own
pump draining into a stand-in connection (the HTTP server's part is not
involved). Pins three things (decision 0065): each event's selectable field
values are worked out once per side and shared by every selecting watcher
(a randomized comparison with the selection worked out afresh), a watch
handler takes its batches from the cache's subscription directly once it is
served there (and closing the stream still ends the subscription), and
bookmarks come from one timer per quiet period without ending the stream.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from tests.registry.pod_lives import (
    CTX,
    NS,
    SELECTORS,
    TIMEOUT,
    assert_events,
    pod,
    random_lives,
    until,
    watch_options,
)

from kajitori.registry.core import pods
from kajitori.registry.generic import cacher
from kajitori.registry.generic.store import ListOptions, Store, WatchEvent
from kajitori.server.handlers import watch as watch_handler
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]


@pytest.fixture
async def store(sqlite_backend: SqliteBackend, sqlite_store: Callable[..., Store]) -> Store:
    await sqlite_backend.create("/registry/other/seed", b"{}")  # the revision is above 0
    return sqlite_store(pods.RESOURCE)


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    return [await asyncio.wait_for(anext(events), TIMEOUT) for _ in range(count)]


async def test_selecting_watchers_see_what_the_objects_select_with_shared_field_values(
    store: Store,
) -> None:
    """Random pod lives; every selecting watcher's stream equals the rules worked out afresh.

    The field values each event keeps (and an update's previous side takes
    from the event before it) serve every watcher that selects on the same
    fields; a wrong share shows as a missing, extra or mistyped event.
    """
    cache = await store.running_watch_cache()
    assert cache is not None
    start = await store.backend.current_revision()
    # Two watchers per selector: the second reads what the first one's filter kept.
    watches = [
        (label, field, store.watch(NS, watch_options(start, label, field)))
        for label, field in SELECTORS
        for _ in range(2)
    ]
    plain = store.watch(NS, ListOptions(resource_version=str(start)))
    writes, expected = await random_lives(
        store, 65, steps=120, names=6, deletes=0.2, bindings=False
    )
    # Every write reached the cache once the plain watcher has them all.
    for event in await take(plain, writes):
        assert event.type in ("ADDED", "MODIFIED", "DELETED")
    await until(lambda: cache.stats.events >= writes)
    for label, field, events in watches:
        want = expected[(label, field)]
        got = await take(events, len(want))
        # A DELETED carries the last state at the deletion's revision (not known above).
        assert_events(got, want, (label, field))
        assert await _nothing_more(events)


async def _nothing_more(events: AsyncIterator[WatchEvent]) -> bool:
    try:
        await asyncio.wait_for(anext(events), 0.1)
    except TimeoutError:
        return True
    return False


class _Connection:
    """Where the pump's chunks go: each line decoded, as a client reads them."""

    def __init__(self) -> None:
        self.events: list[Object] = []

    async def send(self, message: dict[str, Any]) -> None:
        body = message.get("body", b"")
        self.events += [orjson.loads(line) for line in body.split(b"\n") if line]


def _pumped(
    store: Store, start: int, bookmarks: bool
) -> tuple[_Connection, asyncio.Future[None], AsyncIterator[list[WatchEvent]]]:
    """A watch as the handler runs it: its batches, drained by its pump."""
    connection = _Connection()
    scope = types.SimpleNamespace(
        store=store, send=connection.send, media=types.SimpleNamespace(transform="")
    )
    batches = store.watch_batches(
        NS,
        ListOptions(resource_version=str(start)),
        idle=watch_handler.BOOKMARK_INTERVAL if bookmarks else float("inf"),
    )
    pump = asyncio.ensure_future(watch_handler._pump(scope, batches, bookmarks))  # type: ignore[arg-type]
    return connection, pump, batches


async def test_a_quiet_watch_gets_bookmarks_and_goes_on_streaming(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bookmark after each quiet interval, at the last delivered version; then the next event."""
    monkeypatch.setattr(watch_handler, "BOOKMARK_INTERVAL", 0.05)
    cache = await store.running_watch_cache()
    assert cache is not None
    start = await store.backend.current_revision()
    connection, pump, batches = _pumped(store, start, bookmarks=True)
    try:
        first = await store.create(NS, pod("a", "n1"), CTX)
        await until(lambda: sum(e["type"] == "BOOKMARK" for e in connection.events) >= 2)
        second = await store.create(NS, pod("b", "n1"), CTX)
        await until(lambda: connection.events[-1]["type"] == "ADDED")
        assert not pump.done()
        assert cache.subscriber_count == 1
        types_ = [e["type"] for e in connection.events]
        assert types_[0] == "ADDED" and types_[-1] == "ADDED"
        assert set(types_[1:-1]) == {"BOOKMARK"}
        for event in connection.events[1:-1]:
            rv = event["object"]["metadata"]["resourceVersion"]
            assert rv == first["metadata"]["resourceVersion"]
        assert connection.events[-1]["object"]["metadata"]["name"] == "b"
        assert (
            connection.events[-1]["object"]["metadata"]["resourceVersion"]
            == (second["metadata"]["resourceVersion"])
        )
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        await batches.aclose()  # type: ignore[attr-defined]
    assert cache.subscriber_count == 0


async def test_without_bookmarks_nothing_but_events_and_leaving_ends_the_subscription(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pump reads the subscription itself; closing the watch still unsubscribes it."""
    monkeypatch.setattr(watch_handler, "BOOKMARK_INTERVAL", 0.02)
    cache = await store.running_watch_cache()
    assert cache is not None
    start = await store.backend.current_revision()
    connection, pump, batches = _pumped(store, start, bookmarks=False)
    try:
        for name in ("a", "b", "c"):
            await store.create(NS, pod(name, "n1"), CTX)
            await asyncio.sleep(0.05)
        await until(lambda: len(connection.events) >= 3)
        assert [e["object"]["metadata"]["name"] for e in connection.events] == ["a", "b", "c"]
        assert {e["type"] for e in connection.events} == {"ADDED"}
        assert cache.subscriber_count == 1
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        await batches.aclose()  # type: ignore[attr-defined]
    assert cache.subscriber_count == 0


async def test_a_subscription_that_ends_ends_the_pump(store: Store) -> None:
    """When the cache stops, the pump reading the subscription directly returns."""
    cache = await store.running_watch_cache()
    assert cache is not None
    start = await store.backend.current_revision()
    connection, pump, batches = _pumped(store, start, bookmarks=True)
    try:
        await store.create(NS, pod("a", "n1"), CTX)
        await until(lambda: len(connection.events) == 1)
        await store.stop_watch_cache()
        await asyncio.wait_for(pump, TIMEOUT)
    finally:
        await batches.aclose()  # type: ignore[attr-defined]
    assert isinstance(cacher.IDLE, cacher.Idle) and cacher.IDLE.subscription is None
