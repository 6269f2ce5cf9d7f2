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
import random
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from kajitori.machinery import fields, labels
from kajitori.registry.core import pods
from kajitori.registry.generic import cacher
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store, WatchEvent
from kajitori.server.handlers import watch as watch_handler
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
CTX = RequestContext()
TIMEOUT = 5.0
NS = "w"


@pytest.fixture
async def store(sqlite_backend: SqliteBackend, sqlite_store: Callable[..., Store]) -> Store:
    await sqlite_backend.create("/registry/other/seed", b"{}")  # the revision is above 0
    return sqlite_store(pods.RESOURCE)


def pod(name: str, node: str, **labels_: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels_},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]},
    }


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.005)


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    return [await asyncio.wait_for(anext(events), TIMEOUT) for _ in range(count)]


def selection(
    kind: str, old: Object | None, new: Object | None, label: str, field: str
) -> str | None:
    """Upstream's cacheWatcher rules, worked out afresh from the two objects."""
    label_sel = labels.parse_selector(label) if label else None
    field_sel = fields.parse_field_selector(field) if field else None

    def matches(obj: Object | None) -> bool:
        if obj is None:
            return False
        if label_sel is not None and not label_sel.matches(obj["metadata"].get("labels") or {}):
            return False
        if field_sel is None:
            return True
        extract = pods.RESOURCE.all_selectable_fields
        return field_sel.matches({r.field: extract[r.field](obj) for r in field_sel.requirements})

    if kind == "DELETE":
        return "DELETED" if matches(old) else None
    now, before = matches(new), matches(old)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


SELECTORS = [
    ("", "status.phase=Running"),
    ("", "status.phase!=Pending"),
    ("", "spec.nodeName=n1"),
    ("", "spec.nodeName=n1,status.phase!=Failed"),
    ("app=web", "status.phase=Running"),
    ("app in (web,db)", "metadata.name!=p-0"),
    ("app=db", ""),
]


async def test_selecting_watchers_see_what_the_objects_select_with_shared_field_values(
    store: Store,
) -> None:
    """Random pod lives; every selecting watcher's stream equals the rules worked out afresh.

    The field values each event keeps (and an update's previous side takes
    from the event before it) serve every watcher that selects on the same
    fields; a wrong share shows as a missing, extra or mistyped event.
    """
    rng = random.Random(65)
    cache = await store.running_watch_cache()
    assert cache is not None
    start = await store.backend.current_revision()
    # Two watchers per selector: the second reads what the first one's filter kept.
    watches = [
        (label, field, store.watch(NS, _opts(start, label, field)))
        for label, field in SELECTORS
        for _ in range(2)
    ]
    plain = store.watch(NS, ListOptions(resource_version=str(start)))
    expected: dict[tuple[str, str], list[tuple[str, str, str]]] = {s: [] for s in SELECTORS}
    live: dict[str, Object] = {}
    writes = 0
    for step in range(120):
        name = f"p-{rng.randrange(6)}"
        old = live.get(name)
        if old is None:
            app = rng.choice(["web", "db", "other"])
            new = await store.create(NS, pod(name, rng.choice(["n1", "n2"]), app=app), CTX)
            kind = "PUT"
        elif rng.random() < 0.2:
            await store.delete(NS, name, DeleteOptions(grace_period_seconds=0), CTX)
            new, kind = None, "DELETE"
        else:
            changed = orjson.loads(orjson.dumps(old))
            if rng.random() < 0.5:
                changed["status"] = {"phase": rng.choice(["Pending", "Running", "Failed"])}
                new, _ = await store.update(NS, name, changed, CTX, subresource="status")
            else:
                changed["metadata"]["labels"] = {"app": rng.choice(["web", "db"]), "s": str(step)}
                new, _ = await store.update(NS, name, changed, CTX)
            kind = "PUT"
        rv = new["metadata"]["resourceVersion"] if new else None
        if old is not None and new is not None and rv == old["metadata"]["resourceVersion"]:
            continue  # nothing changed: nothing written, no event
        writes += 1
        for label, field in SELECTORS:
            seen = selection(kind, old, new, label, field)
            if seen is not None:
                obj = new if seen != "DELETED" else old
                assert obj is not None
                expected[(label, field)].append((seen, name, rv or ""))
        if new is None:
            live.pop(name)
        else:
            live[name] = new
    # Every write reached the cache once the plain watcher has them all.
    for event in await take(plain, writes):
        assert event.type in ("ADDED", "MODIFIED", "DELETED")
    await until(lambda: cache.stats.events >= writes)
    for label, field, events in watches:
        want = expected[(label, field)]
        got = await take(events, len(want))
        # A DELETED carries the last state at the deletion's revision (not known above).
        assert [(e.type, e.object["metadata"]["name"]) for e in got] == [
            (t, n) for t, n, _ in want
        ], (label, field)
        for event, (_, _, rv) in zip(got, want, strict=True):
            if rv:
                assert event.object["metadata"]["resourceVersion"] == rv
        assert await _nothing_more(events)


def _opts(start: int, label: str, field: str) -> ListOptions:
    opts = ListOptions(resource_version=str(start))
    if label:
        opts.label_selector = labels.parse_selector(label)
    if field:
        opts.field_selector = fields.parse_field_selector(field)
        opts.field_names = tuple(r.field for r in opts.field_selector.requirements)
    return opts


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
