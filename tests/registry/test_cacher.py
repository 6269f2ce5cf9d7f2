"""The watch cache: one storage watch per resource shared by every API watch of it.

Real ``Store``s over a real ``SqliteBackend`` in a temporary directory; the
only stand-in is a SQLite backend whose watches the test can cut, as an etcd
stream that ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kajitori.machinery import errors, fields, labels
from kajitori.registry.core import configmaps
from kajitori.registry.generic import cacher
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store, WatchEvent
from kajitori.storage import interface as storage
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
Seen = tuple[str, str, str]  # (type, namespace/name, resourceVersion)

CTX = RequestContext()
TIMEOUT = 5.0


class CuttableBackend(SqliteBackend):
    """SQLite whose watch streams the test can end, as when etcd drops a stream."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path)
        self.cut = asyncio.Event()

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[storage.Event]]:
        return self._cuttable(super().watch(prefix, after_revision=after_revision))

    def watch_into(
        self,
        prefix: str,
        *,
        after_revision: int,
        deliver: Callable[[list[storage.Event]], None],
        end: Callable[[BaseException | None], None],
    ) -> Callable[[], None]:
        """The watch the cache uses; cutting it stops it and ends it with an error."""
        stop = super().watch_into(prefix, after_revision=after_revision, deliver=deliver, end=end)
        cut = asyncio.ensure_future(self.cut.wait())

        def on_cut(_: object) -> None:
            if not cut.cancelled():
                stop()
                end(storage.StorageError("watch stream ended"))

        def stop_both() -> None:
            cut.cancel()
            stop()

        cut.add_done_callback(on_cut)
        return stop_both

    async def _cuttable(
        self, stream: AsyncIterator[list[storage.Event]]
    ) -> AsyncIterator[list[storage.Event]]:
        cut = asyncio.ensure_future(self.cut.wait())
        batch: asyncio.Future[list[storage.Event]] | None = None
        try:
            while True:
                batch = asyncio.ensure_future(anext(stream))
                await asyncio.wait({batch, cut}, return_when=asyncio.FIRST_COMPLETED)
                if not batch.done():
                    raise storage.StorageError("watch stream ended")
                try:
                    events = batch.result()
                except StopAsyncIteration:
                    return
                yield events
        finally:
            cut.cancel()
            if batch is not None and not batch.done():
                batch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await batch
            await stream.aclose()  # type: ignore[attr-defined]


StoreFactory = Callable[[cacher.Options | None], Store]


@pytest.fixture
async def backend(tmp_path: pathlib.Path) -> AsyncIterator[CuttableBackend]:
    """A started SQLite backend, closed after the test; its revision is above 0.

    (A watch from resourceVersion "0" means "current state, then changes".)
    """
    db = CuttableBackend(tmp_path / "kajitori.db")
    await db.start()
    await db.create("/registry/other/seed", b"{}")
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def sqlite_backend(backend: CuttableBackend) -> CuttableBackend:
    """tests/conftest.py's ``sqlite_store`` makes its stores over ``backend`` here."""
    return backend


@pytest.fixture
def configmap_store(sqlite_store: Callable[..., Store]) -> StoreFactory:
    """Makes ConfigMap stores over ``backend``; their watch caches are stopped after the test."""
    return lambda options: sqlite_store(configmaps.RESOURCE, watch_cache=options)


def configmap(namespace: str, name: str, **labels_: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels_},
        "data": {"k": "v"},
    }


async def relabel(store: Store, namespace: str, name: str, **labels_: str) -> Object:
    obj, _ = await store.update(namespace, name, configmap(namespace, name, **labels_), CTX)
    return obj


def seen(event: WatchEvent) -> Seen:
    meta = event.object["metadata"]
    return (event.type, f"{meta['namespace']}/{meta['name']}", meta["resourceVersion"])


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    return [await asyncio.wait_for(anext(events), TIMEOUT) for _ in range(count)]


async def nothing_more(events: AsyncIterator[WatchEvent]) -> bool:
    """True when no further event arrives promptly (ends the watch)."""
    try:
        await asyncio.wait_for(anext(events), 0.2)
    except TimeoutError:
        return True
    return False


def watch_from(store: Store, revision: int | str, **opts: Any) -> AsyncIterator[WatchEvent]:
    return store.watch(
        opts.pop("namespace", ""), ListOptions(resource_version=str(revision), **opts)
    )


async def running_cache(store: Store) -> cacher.WatchCache:
    cache = await store.running_watch_cache()
    assert cache is not None
    return cache


async def test_every_subscriber_receives_every_event_exactly_once_in_order(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """Twenty watchers share one storage watch and each sees all 29 changes, in order."""
    store = configmap_store(cacher.Options())
    cache = await running_cache(store)
    start = await backend.current_revision()
    watchers = [watch_from(store, start) for _ in range(20)]
    first = await store.create("ns", configmap("ns", "cm-0"), CTX)
    expected: list[Seen] = [("ADDED", "ns/cm-0", first["metadata"]["resourceVersion"])]
    for watcher in watchers:  # now all are subscribed
        assert [seen(e) for e in await take(watcher, 1)] == expected
    for i in range(1, 10):
        obj = await store.create("ns", configmap("ns", f"cm-{i}"), CTX)
        expected.append(("ADDED", f"ns/cm-{i}", obj["metadata"]["resourceVersion"]))
        obj = await relabel(store, "ns", f"cm-{i}", changed="yes")
        expected.append(("MODIFIED", f"ns/cm-{i}", obj["metadata"]["resourceVersion"]))
    for i in range(1, 11):
        await store.delete("ns", f"cm-{i % 10}", DeleteOptions(), CTX)
        revision = str(await backend.current_revision())
        expected.append(("DELETED", f"ns/cm-{i % 10}", revision))
    results = await asyncio.gather(*(take(w, len(expected) - 1) for w in watchers))
    for events in results:
        assert [seen(e) for e in events] == expected[1:]
    assert (cache.subscriber_count, cache.stats.events) == (20, len(expected))
    assert await nothing_more(watchers[0])


SCENARIO_EXPECTATIONS = [
    pytest.param(
        {},
        [
            ("ADDED", "a/one", "ADDED"),
            ("ADDED", "b/two", "TWO"),
            ("MODIFIED", "a/one", "MOVED_OUT"),
            ("MODIFIED", "a/one", "MOVED_IN"),
            ("DELETED", "a/one", "DELETED"),
        ],
        id="everything",
    ),
    pytest.param(
        {"namespace": "a"},
        [
            ("ADDED", "a/one", "ADDED"),
            ("MODIFIED", "a/one", "MOVED_OUT"),
            ("MODIFIED", "a/one", "MOVED_IN"),
            ("DELETED", "a/one", "DELETED"),
        ],
        id="one-namespace",
    ),
    pytest.param(
        {"label_selector": labels.parse_selector("app=web")},
        [
            ("ADDED", "a/one", "ADDED"),
            ("ADDED", "b/two", "TWO"),
            ("DELETED", "a/one", "MOVED_OUT"),
            ("ADDED", "a/one", "MOVED_IN"),
            ("DELETED", "a/one", "DELETED"),
        ],
        id="label-selector-transitions",
    ),
    pytest.param(
        {"namespace": "b", "label_selector": labels.parse_selector("app=web")},
        [("ADDED", "b/two", "TWO")],
        id="namespace-and-labels",
    ),
    pytest.param(
        {
            "field_selector": fields.parse_field_selector("metadata.name=one"),
            "field_names": ("metadata.name",),
        },
        [
            ("ADDED", "a/one", "ADDED"),
            ("MODIFIED", "a/one", "MOVED_OUT"),
            ("MODIFIED", "a/one", "MOVED_IN"),
            ("DELETED", "a/one", "DELETED"),
        ],
        id="field-selector",
    ),
]


@pytest.mark.parametrize("options", [cacher.Options(), None], ids=["cache", "storage"])
@pytest.mark.parametrize(("selection", "expected"), SCENARIO_EXPECTATIONS)
async def test_watchers_see_their_namespace_and_selection_with_transitions(
    backend: CuttableBackend,
    configmap_store: StoreFactory,
    options: cacher.Options | None,
    selection: dict[str, Any],
    expected: list[tuple[str, str, str]],
) -> None:
    """Leaving a selection is DELETED with the old content, entering it ADDED; cache and storage agree."""
    store = configmap_store(options)
    await store.running_watch_cache()
    watcher = watch_from(store, await backend.current_revision(), **selection)
    first = asyncio.ensure_future(anext(watcher))
    revisions: dict[str, str] = {}
    revisions["ADDED"] = (await store.create("a", configmap("a", "one", app="web"), CTX))[
        "metadata"
    ]["resourceVersion"]
    revisions["TWO"] = (await store.create("b", configmap("b", "two", app="web"), CTX))["metadata"][
        "resourceVersion"
    ]
    revisions["MOVED_OUT"] = (await relabel(store, "a", "one", app="db"))["metadata"][
        "resourceVersion"
    ]
    revisions["MOVED_IN"] = (await relabel(store, "a", "one", app="web"))["metadata"][
        "resourceVersion"
    ]
    await store.delete("a", "one", DeleteOptions(), CTX)
    revisions["DELETED"] = str(await backend.current_revision())
    events = [await asyncio.wait_for(first, TIMEOUT), *await take(watcher, len(expected) - 1)]
    assert [seen(e) for e in events] == [(t, n, revisions[r]) for t, n, r in expected]
    for event in events:
        if event.type == "DELETED" and event.revision == int(revisions["MOVED_OUT"]):
            assert event.object["metadata"]["labels"] == {"app": "web"}
    assert await nothing_more(watcher)


async def test_writes_committed_together_reach_each_kind_of_watcher_in_one_ordered_step(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """One storage batch over two namespaces: every watcher gets its part of it, in order, once.

    All namespaces, one namespace, a label selector and a watcher already past
    some of the batch's revisions each take exactly the events they select.
    """
    store = configmap_store(cacher.Options())
    cache = await running_cache(store)
    start = await backend.current_revision()
    plain = store.watch_batches("", ListOptions(resource_version=str(start)))
    only_a = store.watch_batches("a", ListOptions(resource_version=str(start)))
    web = store.watch_batches(
        "",
        ListOptions(resource_version=str(start), label_selector=labels.parse_selector("app=web")),
    )
    firsts = [asyncio.ensure_future(anext(w)) for w in (plain, only_a, web)]
    while cache.subscriber_count < 3:
        await asyncio.sleep(0.01)
    created = await asyncio.gather(
        *(
            store.create(ns, configmap(ns, f"cm-{i}", app="web" if i % 2 else "db"), CTX)
            for i in range(8)
            for ns in ("a", "b")
        )
    )
    revision = {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in created
    }
    in_order = sorted(revision, key=lambda key: int(revision[key]))

    async def collect(
        batches: AsyncIterator[list[WatchEvent]], first: Any, count: int
    ) -> list[str]:
        got = [
            f"{e.object['metadata']['namespace']}/{e.object['metadata']['name']}"
            for e in await first
        ]
        while len(got) < count:
            batch = await asyncio.wait_for(anext(batches), TIMEOUT)
            got.extend(
                f"{e.object['metadata']['namespace']}/{e.object['metadata']['name']}" for e in batch
            )
        return got

    everything = await collect(plain, firsts[0], 16)
    namespace_a = await collect(only_a, firsts[1], 8)
    labelled = await collect(web, firsts[2], 8)
    assert everything == in_order
    assert namespace_a == [key for key in in_order if key.startswith("a/")]
    assert labelled == [key for key in in_order if int(key.rsplit("-", 1)[1]) % 2]
    # A watcher from the middle of the batch gets only what came after its revision.
    middle = in_order[7]
    late = watch_from(store, revision[middle])
    assert [seen(e)[1] for e in await take(late, 8)] == in_order[8:]
    for batches in (plain, only_a, web):
        await batches.aclose()  # type: ignore[attr-defined]
    assert await nothing_more(late)


async def test_a_batch_that_overflows_a_subscriber_ends_it_and_not_the_others(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """A watcher with events queued that cannot take a whole new batch is ended at once."""
    store = configmap_store(cacher.Options(queue_size=4))
    cache = await running_cache(store)
    start = await backend.current_revision()
    slow, prompt = watch_from(store, start, namespace="a"), watch_from(store, start, namespace="b")
    pending = [asyncio.ensure_future(anext(w)) for w in (slow, prompt)]
    await asyncio.gather(*(store.create(ns, configmap(ns, "first"), CTX) for ns in ("a", "b")))
    await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT)
    await store.create("a", configmap("a", "queued"), CTX)
    for i in range(4):
        await store.create("a", configmap("a", f"more-{i}"), CTX)
    await store.create("b", configmap("b", "second"), CTX)
    assert seen((await take(prompt, 1))[0])[1] == "b/second"
    assert (cache.stats.terminated, cache.subscriber_count) == (1, 1)
    with pytest.raises(StopAsyncIteration):
        await anext(slow)


async def test_an_event_that_cannot_be_decoded_ends_its_watchers_not_the_cache(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """Garbage stored under the prefix ends the watchers it reaches; later watches still work."""
    store = configmap_store(cacher.Options())
    cache = await running_cache(store)
    start = await backend.current_revision()
    watchers = [watch_from(store, start) for _ in range(2)]
    pending = [asyncio.ensure_future(anext(w)) for w in watchers]
    while cache.subscriber_count < 2:
        await asyncio.sleep(0.01)
    bad = await backend.create(f"{store.prefix}ns/garbage", b"not json")
    for waiting in pending:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, TIMEOUT)
    assert (cache.stopped, cache.stats.terminated) == (False, 2)
    after = watch_from(store, bad)
    obj = await store.create("ns", configmap("ns", "fine"), CTX)
    assert [seen(e) for e in await take(after, 1)] == [
        ("ADDED", "ns/fine", obj["metadata"]["resourceVersion"])
    ]


async def test_a_watch_from_a_buffered_revision_replays_then_follows_live_events(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """Events after the revision come from the ring, then live ones, with no gap or repeat."""
    store = configmap_store(cacher.Options())
    cache = await running_cache(store)
    created = [await store.create("ns", configmap("ns", f"cm-{i}"), CTX) for i in range(5)]
    resume_at = created[1]["metadata"]["resourceVersion"]
    watcher = watch_from(store, resume_at)
    replayed = await take(watcher, 3)
    assert cache.subscriber_count == 1
    live = [await store.create("ns", configmap("ns", f"cm-{i}"), CTX) for i in range(5, 7)]
    followed = await take(watcher, 2)
    assert [seen(e) for e in replayed + followed] == [
        ("ADDED", f"ns/{o['metadata']['name']}", o["metadata"]["resourceVersion"])
        for o in created[2:] + live
    ]
    assert await nothing_more(watcher)


async def test_a_watch_from_before_the_ring_falls_back_to_storage_history(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """With the ring already past the revision, the watch replays storage and misses nothing."""
    store = configmap_store(cacher.Options(capacity=4))
    cache = await running_cache(store)
    start = await backend.current_revision()
    created = [await store.create("ns", configmap("ns", f"cm-{i}"), CTX) for i in range(10)]
    await until(lambda: cache.stats.events == 10)
    assert cache.oldest_revision == int(created[5]["metadata"]["resourceVersion"])
    watcher = watch_from(store, start)
    events = await take(watcher, 10)
    assert cache.subscriber_count == 0
    assert [e.object["metadata"]["name"] for e in events] == [f"cm-{i}" for i in range(10)]
    assert events[-1].revision == int(created[-1]["metadata"]["resourceVersion"])


async def test_a_compacted_revision_before_the_ring_is_410_gone(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """The fallback keeps storage's answer for history that no longer exists."""
    store = configmap_store(cacher.Options(capacity=2))
    start = await backend.current_revision()
    await running_cache(store)
    for i in range(5):
        await store.create("ns", configmap("ns", f"cm-{i}"), CTX)
    await backend.compact(await backend.current_revision())
    with pytest.raises(errors.StatusError) as caught:
        await take(watch_from(store, start), 1)
    assert caught.value.code == 410


async def test_a_slow_subscriber_is_ended_and_the_others_get_everything(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """A watcher three events behind is ended; the storage watch and a prompt watcher carry on."""
    store = configmap_store(cacher.Options(queue_size=3))
    cache = await running_cache(store)
    start = await backend.current_revision()
    slow, prompt = watch_from(store, start), watch_from(store, start)
    pending = [asyncio.ensure_future(anext(w)) for w in (slow, prompt)]
    await store.create("ns", configmap("ns", "cm-0"), CTX)
    await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT)
    names = []
    for i in range(1, 8):
        await store.create("ns", configmap("ns", f"cm-{i}"), CTX)
        names.extend(e.object["metadata"]["name"] for e in await take(prompt, 1))
    assert names == [f"cm-{i}" for i in range(1, 8)]
    assert (cache.stats.terminated, cache.subscriber_count) == (1, 1)
    with pytest.raises(StopAsyncIteration):
        await anext(slow)


@pytest.mark.parametrize(
    ("options", "lines_per_event"),
    [pytest.param(cacher.Options(), 1, id="cache"), pytest.param(None, 8, id="storage")],
)
async def test_each_event_is_encoded_once_for_all_plain_json_watchers(
    backend: CuttableBackend,
    configmap_store: StoreFactory,
    options: cacher.Options | None,
    lines_per_event: int,
) -> None:
    """Eight watchers send the same bytes object per event through the cache, not eight."""
    store = configmap_store(options)
    await store.running_watch_cache()
    start = await backend.current_revision()
    watchers = [watch_from(store, start) for _ in range(8)]
    firsts = [asyncio.ensure_future(anext(w)) for w in watchers]
    for i in range(5):
        await store.create("ns", configmap("ns", f"cm-{i}"), CTX)
    received = [
        [await asyncio.wait_for(first, TIMEOUT), *await take(watcher, 4)]
        for first, watcher in zip(firsts, watchers, strict=True)
    ]
    lines = [event.json_line() for events in received for event in events]
    assert len({id(line) for line in lines}) == 5 * lines_per_event
    assert lines[0].startswith(b'{"type":"ADDED","object":{') and lines[0].endswith(b"}\n")
    assert len(set(lines)) == 5


async def test_plain_watchers_of_a_namespace_share_each_batch_and_its_encoded_body(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """Watchers without selectors get one Batch per storage batch, its body encoded once.

    A watcher with a selector gets its own selection; one that fell behind
    by several batches takes them as one, in order, made of the shared ones.
    """
    store = configmap_store(cacher.Options())
    cache = await running_cache(store)
    start = await backend.current_revision()
    plain = [watch_batches_from(store, start, namespace="ns") for _ in range(3)]
    web = watch_batches_from(store, start, namespace="ns", label_selector="app=web")
    firsts = [asyncio.ensure_future(anext(w)) for w in (*plain, web)]
    await until(lambda: cache.subscriber_count == 4)
    created = await asyncio.gather(
        *(
            store.create("ns", configmap("ns", f"cm-{i}", app=("web", "db")[i % 2]), CTX)
            for i in range(6)
        )
    )
    batches = [await asyncio.wait_for(first, TIMEOUT) for first in firsts]
    shared, selected = batches[0], batches[3]
    assert all(batch is shared for batch in batches[:3])
    assert isinstance(shared, cacher.Batch) and shared.json_body() is shared.json_body()
    assert shared.json_body() == b"".join(event.json_line() for event in shared)
    names = [o["metadata"]["name"] for o in created]
    assert [e.object["metadata"]["name"] for e in shared] == names[: len(shared)]
    assert {e.object["metadata"]["labels"]["app"] for e in selected} == {"web"}
    # Take the rest of the concurrent creates (they may have been committed in several batches).
    for watcher, batch in zip(plain, batches, strict=False):
        seen = len(batch)
        while seen < len(created):
            seen += len(await asyncio.wait_for(anext(watcher), TIMEOUT))
    # The first watcher now falls behind by three single-write batches.
    revisions = []
    for i in range(3):
        obj = await store.create("ns", configmap("ns", f"late-{i}"), CTX)
        revisions.append(int(obj["metadata"]["resourceVersion"]))
        singles = [await asyncio.wait_for(anext(w), TIMEOUT) for w in plain[1:]]
        assert singles[0] is singles[1]
    behind = await asyncio.wait_for(anext(plain[0]), TIMEOUT)
    assert [e.revision for e in behind] == revisions
    assert behind.json_body() == b"".join(event.json_line() for event in behind)


def watch_batches_from(
    store: Store, revision: int, *, namespace: str, label_selector: str | None = None
) -> AsyncIterator[list[WatchEvent]]:
    selector = labels.parse_selector(label_selector) if label_selector else None
    opts = ListOptions(resource_version=str(revision), label_selector=selector)
    return store.watch_batches(namespace, opts)


async def test_the_cache_ends_its_watchers_and_restarts_after_its_storage_watch_ends(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """A cut storage watch ends every subscriber cleanly; the next watch gets a fresh cache."""
    store = configmap_store(cacher.Options())
    first_cache = await running_cache(store)
    watchers = [watch_from(store, await backend.current_revision()) for _ in range(3)]
    pending = [asyncio.ensure_future(anext(w)) for w in watchers]
    await store.create("ns", configmap("ns", "before"), CTX)
    await asyncio.wait_for(asyncio.gather(*pending), TIMEOUT)
    backend.cut.set()
    for watcher in watchers:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(watcher), TIMEOUT)
    assert first_cache.stopped
    backend.cut = asyncio.Event()
    second_cache = await running_cache(store)
    assert second_cache is not first_cache
    resumed = watch_from(store, await backend.current_revision())
    first = asyncio.ensure_future(anext(resumed))
    await store.create("ns", configmap("ns", "after"), CTX)
    event = await asyncio.wait_for(first, TIMEOUT)
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "after")
    assert second_cache.subscriber_count == 1


async def test_an_idle_cache_closes_its_storage_watch_after_lingering(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """With no subscriber left for linger_seconds the cache stops; the next watch starts anew."""
    store = configmap_store(cacher.Options(linger_seconds=0.2))
    cache = await running_cache(store)
    watcher = watch_from(store, await backend.current_revision())
    first = asyncio.ensure_future(anext(watcher))
    await store.create("ns", configmap("ns", "cm"), CTX)
    await asyncio.wait_for(first, TIMEOUT)
    assert not cache.stopped
    await watcher.aclose()  # type: ignore[attr-defined]
    await until(lambda: cache.stopped)
    assert await running_cache(store) is not cache


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (bounded by TIMEOUT)."""

    async def spin() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(spin(), TIMEOUT)


async def test_a_selecting_watcher_costs_one_decode_per_write_not_two(
    backend: CuttableBackend, configmap_store: StoreFactory
) -> None:
    """An update's object before it is the previous write's object, restamped, not decoded again.

    A watcher with a selector tests every update against the object before it
    (to tell MODIFIED from ADDED or DELETED); the ring already holds that
    object, decoded for the previous event of the key.
    """
    store = configmap_store(cacher.DEFAULT_OPTIONS)
    decoded: list[int] = []
    decode = store._decode_watched

    def counting(kv: storage.KeyValue, revision: int) -> Object:
        decoded.append(kv.mod_revision)
        return decode(kv, revision)

    store._decode_watched = counting  # type: ignore[method-assign]
    await store.running_watch_cache()
    selector = labels.parse_selector("app=web")
    watcher = watch_from(store, await backend.current_revision(), label_selector=selector)
    first = asyncio.ensure_future(anext(watcher))
    await store.create("a", configmap("a", "one", app="web"), CTX)
    for tier in ("x", "y"):
        await relabel(store, "a", "one", app="web", tier=tier)
    await relabel(store, "a", "one", app="db")  # out of the selection: DELETED
    out_rv = str(await backend.current_revision())
    await relabel(store, "a", "one", app="web")  # back in: ADDED
    await store.delete("a", "one", DeleteOptions(), CTX)
    gone_rv = str(await backend.current_revision())
    events = [await asyncio.wait_for(first, TIMEOUT), *await take(watcher, 5)]

    assert [e.type for e in events] == [
        "ADDED",
        "MODIFIED",
        "MODIFIED",
        "DELETED",
        "ADDED",
        "DELETED",
    ]
    # The object before leaving the selection, at the revision that took it out.
    left = events[3].object
    assert left["metadata"]["labels"] == {"app": "web", "tier": "y"}
    assert left["metadata"]["resourceVersion"] == out_rv
    # ... while the event that wrote it keeps its own resourceVersion.
    assert events[2].object["metadata"]["resourceVersion"] == str(events[2].revision)
    assert events[2].object["metadata"]["labels"] == left["metadata"]["labels"]
    assert events[5].object["metadata"]["resourceVersion"] == gone_rv
    assert events[5].object["metadata"]["labels"] == {"app": "web"}
    assert events[5].json_line() == events[5].json_line()
    # One decode per write (five), none for the delete or for any "before".
    assert len(decoded) == 5, decoded
    assert len(set(decoded)) == 5


class CountingGets:
    """Counts the backend's point reads (``get``) while installed."""

    def __init__(self, backend: CuttableBackend, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        get = backend.get

        async def counting(key: str, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await get(key, *args, **kwargs)

        monkeypatch.setattr(backend, "get", counting)


async def created_and_cached(store: Store, name: str, **labels_: str) -> Object:
    """Create a ConfigMap and wait until the watch cache has dispatched it."""
    cache = await running_cache(store)
    watcher = watch_from(store, await store.backend.current_revision(), namespace="ns")
    first = asyncio.ensure_future(anext(watcher))
    obj = await store.create("ns", configmap("ns", name, **labels_), CTX)
    await asyncio.wait_for(first, TIMEOUT)
    await watcher.aclose()  # type: ignore[attr-defined]
    assert cache.newest_value(store.key("ns", name)) is not None
    return obj


def add_label(key: str, value: str) -> Callable[[Object], Any]:
    async def mutate(current: Object) -> Object:
        current["metadata"].setdefault("labels", {})[key] = value
        return current

    return mutate


async def test_an_update_takes_the_current_object_from_the_watch_cache_not_storage(
    backend: CuttableBackend, configmap_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = configmap_store(cacher.DEFAULT_OPTIONS)
    created = await created_and_cached(store, "one", app="web")
    gets = CountingGets(backend, monkeypatch)

    obj, _ = await store.guaranteed_update("ns", "one", add_label("tier", "a"), CTX)
    replaced = configmap("ns", "one", app="db")
    replaced["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
    await asyncio.sleep(0)  # the commit's callback has run: the cache has the update
    again, _ = await store.update("ns", "one", replaced, CTX)

    assert gets.count == 0
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "a"}
    assert int(obj["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert again["metadata"]["labels"] == {"app": "db"}
    stored = await store.get("ns", "one")
    assert stored["metadata"]["labels"] == {"app": "db"}
    assert stored["metadata"]["resourceVersion"] == again["metadata"]["resourceVersion"]


async def test_a_stale_cached_object_is_checked_against_storage_before_it_decides(
    backend: CuttableBackend, configmap_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache that lags a write: the update still applies to, and is judged by, the newest."""
    store = configmap_store(cacher.DEFAULT_OPTIONS)
    await created_and_cached(store, "one", app="web")
    cache = await running_cache(store)
    key = store.key("ns", "one")
    stale = cache.newest_value(key)
    monkeypatch.setattr(cache, "newest_value", lambda _: stale)
    newer, _ = await store.guaranteed_update("ns", "one", add_label("tier", "a"), CTX)
    rv = newer["metadata"]["resourceVersion"]

    # A precondition on the newest version holds, although the cache has an older one.
    obj, _ = await store.guaranteed_update(
        "ns", "one", add_label("zone", "b"), CTX, precondition_rv=rv
    )
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "a", "zone": "b"}
    # ... and one on the older version is a conflict, as before.
    with pytest.raises(errors.StatusError) as caught:
        await store.guaranteed_update(
            "ns", "one", add_label("x", "y"), CTX, precondition_rv=str(stale.mod_revision)
        )
    assert caught.value.code == 409
    # A no-op judged against the stale guess is judged again against storage: the
    # answer is the newest object, not the cache's older one.
    unchanged, _ = await store.guaranteed_update("ns", "one", no_change, CTX)
    assert unchanged["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert unchanged["metadata"]["labels"] == {"app": "web", "tier": "a", "zone": "b"}
    assert (await store.get("ns", "one"))["metadata"]["resourceVersion"] == obj["metadata"][
        "resourceVersion"
    ]


async def no_change(current: Object) -> Object:
    return current
