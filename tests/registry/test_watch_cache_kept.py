"""What the watch cache keeps of a key's newest event after it left the ring (decision 0069).

Real ``Store``s of pods over a real ``SqliteBackend``, with rings of a few
events so that most priors have left the ring. Pins that the kept value and
field values answer as the slow path does (storage reads, ``prev_kv``
decodes): selecting watchers' streams equal upstream's rules worked out
afresh, writes starting from a kept value store what they stored before,
and the kept keys stay within their bound and leave on delete.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.registry.pod_lives import (
    NS,
    SELECTORS,
    assert_events,
    pod,
    random_lives,
    until,
    watch_options,
)
from tests.registry.test_cacher import CountingGets

from kajitori.machinery import errors
from kajitori.registry.core import pod_binding, pods
from kajitori.registry.generic import cacher
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, Store, WatchEvent
from kajitori.storage import interface as storage
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
CTX = RequestContext()
SMALL_RING = cacher.Options(capacity=2, kept_keys=3)
NOTHING_KEPT = cacher.Options(capacity=2, kept_keys=0)


class Decodes:
    """Counts the store's decodes of stored values (``Store.decode``) while installed."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        decode = store.decode

        def counting(kv: storage.KeyValue) -> Object:
            self.count += 1
            return decode(kv)

        monkeypatch.setattr(store, "decode", counting)


async def pod_store(
    sqlite_backend: SqliteBackend, sqlite_store: Callable[..., Store], options: cacher.Options
) -> tuple[Store, cacher.WatchCache]:
    await sqlite_backend.create("/registry/other/seed", b"{}")  # the revision is above 0
    store = sqlite_store(pods.RESOURCE, watch_cache=options)
    cache = await store.running_watch_cache()
    assert cache is not None
    return store, cache


async def dispatched(cache: cacher.WatchCache, events: int) -> None:
    """Until the cache has taken ``events`` events of the test's pods (the seed is not one)."""
    await until(lambda: cache.stats.events >= events)


class Collected:
    """A watch read from now on (subscribed before the writes, so served by the cache)."""

    def __init__(self, events: AsyncIterator[WatchEvent]) -> None:
        self.events: list[WatchEvent] = []
        self._stream = events
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            self.events.append(event)

    async def first(self, count: int) -> list[WatchEvent]:
        """The first ``count`` events, once there, after a moment in which no more came."""
        await until(lambda: len(self.events) >= count)
        await asyncio.sleep(0.05)
        self._task.cancel()
        return self.events


class PrevDecodes:
    """Counts a store's watch-cache decodes of ``prev_kv`` values (older than their event)."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        decode = store._decode_watched

        def counting(kv: storage.KeyValue, revision: int) -> Object:
            self.count += kv.mod_revision != revision
            return decode(kv, revision)

        monkeypatch.setattr(store, "_decode_watched", counting)


async def test_selecting_watchers_see_upstreams_rules_when_priors_left_the_ring(
    sqlite_backend: SqliteBackend,
    sqlite_store: Callable[..., Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two-event rings, one keeping three evicted keys and one keeping none, watched alike.

    The kept field values stand in for ``prev_kv``'s: a wrong or stale one
    shows as a missing, extra or mistyped event. With nothing kept the same
    streams come from decoding ``prev_kv``, at the cost of more decodes.
    """
    store, cache = await pod_store(sqlite_backend, sqlite_store, SMALL_RING)
    other = sqlite_store(pods.RESOURCE, watch_cache=NOTHING_KEPT)  # same pods, its own cache
    other_cache = await other.running_watch_cache()
    assert other_cache is not None
    kept_decodes, other_decodes = PrevDecodes(store, monkeypatch), PrevDecodes(other, monkeypatch)
    start = await store.backend.current_revision()
    watches = [
        (label, field, Collected(each.watch(NS, watch_options(start, label, field))))
        for each in (store, other)
        for label, field in SELECTORS
    ]
    await until(lambda: cache.subscriber_count == other_cache.subscriber_count == len(SELECTORS))
    writes, expected = await random_lives(
        store, 69, steps=150, names=8, deletes=0.15, bindings=True
    )
    await until(lambda: cache.stats.events >= writes and other_cache.stats.events >= writes)
    for label, field, collected in watches:
        want = expected[(label, field)]
        got = await collected.first(len(want))
        assert_events(got, want, (label, field))
    assert len(cache._kept) <= SMALL_RING.kept_keys and not other_cache._kept
    # Never more prev_kv decodes (fewer needs watchers that select on fields only:
    # a label selector still needs a kept prior's object, see the next test).
    assert kept_decodes.count <= other_decodes.count, (kept_decodes.count, other_decodes.count)


async def test_an_update_after_the_ring_reads_no_storage_and_decodes_no_prev_kv(
    sqlite_backend: SqliteBackend,
    sqlite_store: Callable[..., Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, cache = await pod_store(sqlite_backend, sqlite_store, SMALL_RING)
    start = await store.backend.current_revision()
    scheduled = store.watch(NS, watch_options(start, "", "spec.nodeName!="))
    first = asyncio.ensure_future(anext(scheduled))  # served by the cache from here
    await until(lambda: cache.subscriber_count == 1)
    await store.create(NS, pod("a", ""), CTX)
    for name in ("b", "c"):  # two more events: a's leaves the ring
        await store.create(NS, pod(name, ""), CTX)
    await dispatched(cache, 3)
    key = store.key(NS, "a")
    assert key in cache._kept and cache.newest_value(key) is not None
    gets = CountingGets(sqlite_backend, monkeypatch)  # type: ignore[arg-type]
    decodes = Decodes(store, monkeypatch)

    binding = {"target": {"name": "n1"}}
    await pod_binding.create(store, NS, "a", binding, types.SimpleNamespace(dry_run=False))
    added = await asyncio.wait_for(first, 5)

    assert gets.count == 0  # the binding started from the kept value
    # One decode for the binding, one for the new value's event; none for its prev_kv.
    assert decodes.count == 2
    assert added.type == "ADDED" and added.object["spec"]["nodeName"] == "n1"
    stored = await store.get(NS, "a")
    assert stored["metadata"]["resourceVersion"] == added.object["metadata"]["resourceVersion"]
    assert [c["type"] for c in stored["status"]["conditions"]] == ["PodScheduled"]
    # A second binding is judged against storage, as from the ring: 409.
    for name in ("b", "c"):  # a's binding leaves the ring as well
        changed = await store.get(NS, name)
        changed["metadata"]["labels"] = {"x": "y"}
        await store.update(NS, name, changed, CTX)
    await dispatched(cache, 6)
    assert key in cache._kept
    with pytest.raises(errors.StatusError) as caught:
        await pod_binding.create(
            store, NS, "a", {"target": {"name": "n2"}}, types.SimpleNamespace(dry_run=False)
        )
    assert caught.value.code == 409
    assert (await store.get(NS, "a"))["spec"]["nodeName"] == "n1"


async def test_a_stale_kept_value_is_checked_against_storage(
    sqlite_backend: SqliteBackend,
    sqlite_store: Callable[..., Store],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kept value the cache has not yet seen replaced: the update applies to the newest."""
    store, cache = await pod_store(sqlite_backend, sqlite_store, SMALL_RING)
    for name in ("a", "b", "c"):
        await store.create(NS, pod(name, ""), CTX)
    await dispatched(cache, 3)
    key = store.key(NS, "a")
    stale = cache.newest_value(key)
    assert stale is not None and key in cache._kept
    monkeypatch.setattr(cache, "newest_value", lambda _: stale)
    newer = await store.get(NS, "a")
    newer["metadata"]["labels"] = {"tier": "a"}
    newer, _ = await store.update(NS, "a", newer, CTX)

    async def add_zone(current: Object) -> Object:
        current["metadata"].setdefault("labels", {})["zone"] = "b"
        return current

    obj, _ = await store.guaranteed_update(NS, "a", add_zone, CTX)
    assert obj["metadata"]["labels"] == {"tier": "a", "zone": "b"}
    assert int(obj["metadata"]["resourceVersion"]) > int(newer["metadata"]["resourceVersion"])


async def test_kept_keys_stay_within_their_bound_and_leave_on_delete(
    sqlite_backend: SqliteBackend, sqlite_store: Callable[..., Store]
) -> None:
    store, cache = await pod_store(sqlite_backend, sqlite_store, SMALL_RING)
    names = [f"p-{i}" for i in range(7)]
    for name in names:
        await store.create(NS, pod(name, ""), CTX)
    await dispatched(cache, len(names))
    keys = [store.key(NS, name) for name in names]
    # Two in the ring, the three evicted last kept, the oldest two forgotten.
    assert list(cache._kept) == keys[2:5]
    assert [cache.newest_value(k) is not None for k in keys] == [False] * 2 + [True] * 5
    assert all(cache._kept[k].decoded() is None for k in keys[2:5])  # nothing decoded kept
    await store.delete(NS, "p-3", DeleteOptions(grace_period_seconds=0), CTX)
    await dispatched(cache, len(names) + 1)
    assert cache.newest_value(keys[3]) is None and keys[3] not in cache._kept
