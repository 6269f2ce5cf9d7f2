"""etcd-only behaviour of ``EtcdBackend`` and the ``EtcdServer`` test helper.

The shared conformance suite checks every ``Backend`` method; these tests
cover what only a shared, external store has: several clients (as several
API servers) on one etcd, prefixes isolating tenants, races decided by etcd's
transactions, and the helper that starts etcd itself.
"""

from __future__ import annotations

import asyncio
import pathlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from kajitori.registry.core import configmaps
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions, Store
from kajitori.storage import etcd, interface
from kajitori.testing import etcd_server

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(
        not etcd_server.etcd_available(),
        reason="no etcd binary on PATH or at /usr/bin/etcd (apt-get install etcd-server)",
    ),
]


async def _started(endpoint: str, prefix: str) -> etcd.EtcdBackend:
    backend = etcd.EtcdBackend(endpoint, prefix=prefix)
    await backend.start()
    return backend


@pytest.fixture
async def pair(etcd_endpoint: str) -> AsyncIterator[tuple[etcd.EtcdBackend, etcd.EtcdBackend]]:
    """Two clients on one etcd and one prefix, like two API servers of one cluster."""
    prefix = f"/test-{uuid.uuid4().hex}"
    first = await _started(etcd_endpoint, prefix)
    second = await _started(etcd_endpoint, prefix)
    yield first, second
    await first.close()
    await second.close()


async def test_a_write_through_one_client_is_read_and_updated_through_another(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Clients share etcd's state and revisions: B reads A's create and CAS-updates it."""
    a, b = pair
    created = await a.create("/registry/pods/default/web", b"v1")
    _, seen = await b.get("/registry/pods/default/web")
    assert seen == interface.KeyValue("/registry/pods/default/web", b"v1", created, created)
    updated = await b.update("/registry/pods/default/web", b"v2", expected_revision=created)
    _, after = await a.get("/registry/pods/default/web")
    assert after is not None
    assert (after.value, after.mod_revision, after.create_revision) == (b"v2", updated, created)


async def test_a_watch_through_one_client_sees_writes_through_another(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """A's watch streams B's create, update and delete in order, with previous values."""
    a, b = pair
    start = await a.current_revision()
    events = a.watch("/registry/pods/", after_revision=start)
    created = await b.create("/registry/pods/default/web", b"v1")
    updated = await b.update("/registry/pods/default/web", b"v2", expected_revision=created)
    deleted, _ = await b.delete("/registry/pods/default/web", expected_revision=updated)
    seen: list[interface.Event] = []
    while len(seen) < 3:
        seen.extend(await asyncio.wait_for(anext(events), 10))
    await events.aclose()
    assert [(e.type, e.revision, e.kv.value) for e in seen] == [
        ("PUT", created, b"v1"),
        ("PUT", updated, b"v2"),
        ("DELETE", deleted, b""),
    ]
    assert seen[0].is_create and seen[0].prev_kv is None
    assert [e.prev_kv.value for e in seen[1:] if e.prev_kv] == [b"v1", b"v2"]


async def test_prefixes_isolate_clients_sharing_one_etcd(etcd_endpoint: str) -> None:
    """Same key under two prefixes: each client sees only its own, keys come back unprefixed."""
    one = await _started(etcd_endpoint, f"/one-{uuid.uuid4().hex}")
    two = await _started(etcd_endpoint, f"/two-{uuid.uuid4().hex}")
    try:
        start = await two.current_revision()
        watch_two = two.watch("/registry/", after_revision=start)
        await one.create("/registry/a", b"from-one")
        await two.create("/registry/a", b"from-two")
        page = await one.range("/registry/")
        assert [(kv.key, kv.value) for kv in page.kvs] == [("/registry/a", b"from-one")]
        assert (await two.count("/registry/"))[1] == 1
        batch = await asyncio.wait_for(anext(watch_two), 10)
        assert [(e.kv.key, e.kv.value) for e in batch] == [("/registry/a", b"from-two")]
        await watch_two.aclose()
    finally:
        await one.close()
        await two.close()


async def test_a_compare_and_swap_race_between_two_clients_has_exactly_one_winner(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Concurrent updates at one expected revision: one succeeds, the rest see the winner."""
    a, b = pair
    base = await a.create("/registry/leases/lock", b"free")
    contenders = [
        client.update("/registry/leases/lock", f"holder-{i}".encode(), expected_revision=base)
        for i, client in enumerate([a, b] * 8)
    ]
    results = await asyncio.gather(*contenders, return_exceptions=True)
    wins = [r for r in results if isinstance(r, int)]
    losses = [r for r in results if isinstance(r, interface.RevisionConflictError)]
    assert len(wins) == 1 and len(losses) == len(results) - 1
    _, final = await a.get("/registry/leases/lock")
    assert final is not None and final.mod_revision == wins[0]
    assert {loss.current for loss in losses} == {final}


async def test_a_create_race_between_two_clients_has_exactly_one_winner(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Concurrent creates of one key from two clients: one succeeds, the rest get KeyExists."""
    a, b = pair
    results = await asyncio.gather(
        *(client.create("/registry/ns/x", b"v") for client in [a, b] * 8),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, interface.KeyExistsError) for r in results) == len(results) - 1


async def test_a_paged_range_keeps_one_snapshot_while_another_client_writes(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Later pages read at the first page's revision, unaffected by another client's writes."""
    a, b = pair
    for name in "abcde":
        await a.create(f"/registry/cm/{name}", name.encode())
    first = await a.range("/registry/cm/", limit=2)
    await b.delete("/registry/cm/c")
    await b.create("/registry/cm/f", b"f")
    second = await a.range(
        "/registry/cm/", start_after=first.kvs[-1].key, limit=2, revision=first.revision
    )
    last = await a.range("/registry/cm/", start_after=second.kvs[-1].key, revision=first.revision)
    assert [kv.key[-1] for kv in first.kvs + second.kvs + last.kvs] == list("abcde")
    assert (first.more, second.more, last.more) == (True, True, False)
    assert (first.count, second.count, last.count) == (5, 5, 5)
    assert second.revision == last.revision == first.revision
    now = await a.range("/registry/cm/")
    assert [kv.key[-1] for kv in now.kvs] == list("abdef")


async def test_an_unguarded_update_or_delete_of_a_missing_key_is_not_found(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """expected_revision=0 still requires the key to exist."""
    a, _ = pair
    with pytest.raises(interface.KeyNotFoundError):
        await a.update("/registry/missing", b"v", expected_revision=0)
    with pytest.raises(interface.KeyNotFoundError):
        await a.delete("/registry/missing")
    with pytest.raises(interface.KeyNotFoundError):
        await a.delete("/registry/missing", expected_revision=7)


async def test_compaction_by_one_client_is_reported_to_the_other(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """B compacts; A's compacted_revision, old reads and old watches all report it."""
    a, b = pair
    old = await a.create("/registry/x", b"1")
    await a.update("/registry/x", b"2", expected_revision=old)
    target = await a.update("/registry/x", b"3", expected_revision=0)
    await b.compact(target)
    await b.compact(old)  # older than what is compacted: a no-op, not an error
    assert await a.compacted_revision() >= target  # other tests may compact too
    with pytest.raises(interface.CompactedError) as read:
        await a.get("/registry/x", revision=old)
    assert (read.value.requested, read.value.compact_revision >= target) == (old, True)
    events = a.watch("/registry/", after_revision=old - 1)
    with pytest.raises(interface.CompactedError):
        await asyncio.wait_for(anext(events), 10)
    _, live = await a.get("/registry/x")
    assert live is not None and live.value == b"3"


async def test_reading_a_future_revision_reports_the_current_one(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """A revision etcd has not reached yet is FutureRevisionError carrying the current one."""
    a, _ = pair
    current = await a.current_revision()
    with pytest.raises(interface.FutureRevisionError) as error:
        await a.range("/registry/", revision=current + 1000)
    assert error.value.requested == current + 1000
    assert error.value.current >= current


async def test_closing_the_backend_ends_its_pending_watches(etcd_endpoint: str) -> None:
    """A watch waiting for events stops iterating when its backend closes."""
    backend = await _started(etcd_endpoint, f"/test-{uuid.uuid4().hex}")
    events = backend.watch("/", after_revision=await backend.current_revision())
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.1)  # let the watch reach etcd before closing
    await backend.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 10)


async def test_the_server_helper_serves_on_a_free_port_and_stops(tmp_path: pathlib.Path) -> None:
    """EtcdServer starts a private etcd, logs to its data dir, and frees the port on exit."""
    async with etcd_server.EtcdServer(tmp_path) as server:
        backend = await _started(server.endpoint, "")
        assert await backend.current_revision() >= 1
        await backend.close()
    assert (tmp_path / "etcd.log").exists()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint


def test_the_server_helper_reports_the_log_tail_when_etcd_fails(tmp_path: pathlib.Path) -> None:
    """A data dir etcd cannot use fails start() with etcd's own error message."""
    (tmp_path / "member-data").write_text("not a directory")
    with pytest.raises(etcd_server.EtcdStartError, match="data directory"):
        etcd_server.EtcdServer(tmp_path).start()


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _collect(events: AsyncIterator[list[interface.Event]], count: int) -> list[int]:
    seen: list[int] = []
    while len(seen) < count:
        seen.extend(e.revision for e in await asyncio.wait_for(anext(events), 10))
    return seen


async def test_local_watchers_of_one_prefix_share_one_etcd_stream(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Watchers that can join a running stream do; one from an older revision gets its own."""
    a, b = pair
    start = await a.current_revision()
    first = a.watch("/registry/pods/", after_revision=start)
    second = a.watch("/registry/pods/", after_revision=start)
    # Generators start on first use: both are waiting before anything is written.
    waiting = [asyncio.ensure_future(_collect(events, 1)) for events in (first, second)]
    await _until(lambda: sum(len(h._watchers) for h in a._hubs.values()) == 2)
    one = await b.create("/registry/pods/default/one", b"1")
    assert [await task for task in waiting] == [[one], [one]]
    assert len(a._watch_calls) == 1  # both read the same gRPC stream
    # This watcher wants an event the shared stream has already handed out.
    late = a.watch("/registry/pods/", after_revision=start)
    two = await b.create("/registry/pods/default/two", b"2")
    assert await _collect(late, 2) == [one, two]
    assert await _collect(first, 1) == [two]
    assert await _collect(second, 1) == [two]
    assert len(a._watch_calls) == 2
    for events in (first, second, late):
        await events.aclose()
    await asyncio.sleep(0.05)
    assert not a._watch_calls and not a._hubs


async def test_gets_issued_together_are_answered_together_at_one_revision(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Concurrent newest-value gets share one read; each caller gets its own key (or None)."""
    a, b = pair
    written = {
        f"/registry/pods/default/p{i}": await b.create(f"/registry/pods/default/p{i}", b"%d" % i)
        for i in range(3)
    }
    keys = [*written, "/registry/pods/default/missing", *written]
    answers = await asyncio.gather(*(a.get(key) for key in keys))
    assert len({revision for revision, _ in answers}) == 1
    assert answers[0][0] >= max(written.values())
    for key, (_, kv) in zip(keys, answers, strict=True):
        if key in written:
            assert kv is not None and kv.key == key and kv.mod_revision == written[key]
        else:
            assert kv is None


async def test_more_concurrent_gets_than_a_txn_may_hold_are_all_answered(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """etcd caps a Txn at 128 operations: a larger burst of gets is split, not refused."""
    a, b = pair
    revision = await b.create("/registry/pods/default/only", b"x")
    keys = [f"/registry/pods/default/k{i}" for i in range(300)] + ["/registry/pods/default/only"]
    answers = await asyncio.gather(*(a.get(key) for key in keys))
    assert all(kv is None for _, kv in answers[:-1])
    assert answers[-1][1] is not None and answers[-1][1].mod_revision == revision


async def test_a_shared_stream_delivers_concurrent_writes_once_each_in_revision_order(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """Sixty-four writers at once: both watchers of the stream see every revision once, in order."""
    a, b = pair
    start = await a.current_revision()
    watchers = [a.watch("/registry/cm/", after_revision=start) for _ in range(2)]
    first = [asyncio.ensure_future(anext(events)) for events in watchers]
    await _until(lambda: sum(len(h._watchers) for h in a._hubs.values()) == 2)

    async def writer(index: int) -> list[int]:
        return [await b.create(f"/registry/cm/{index}/{n}", b"v") for n in range(4)]

    written = sorted(r for rs in await asyncio.gather(*(writer(i) for i in range(64))) for r in rs)
    for events, head in zip(watchers, first, strict=True):
        seen = [e.revision for e in await asyncio.wait_for(head, 10)]
        if len(seen) < len(written):
            seen.extend(await _collect(events, len(written) - len(seen)))
        assert seen == written
    assert len(a._watch_calls) == 1
    for events in watchers:
        await events.aclose()


async def test_a_watcher_that_falls_behind_a_shared_stream_goes_on_alone_without_gaps(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher too many batches behind moves to a stream of its own from where it was."""
    monkeypatch.setattr(etcd, "_FEED_BACKLOG", 2)
    a, b = pair
    start = await a.current_revision()
    prompt = a.watch("/registry/cm/", after_revision=start)
    slow = a.watch("/registry/cm/", after_revision=start)
    waiting = [asyncio.ensure_future(_collect(events, 1)) for events in (prompt, slow)]
    await _until(lambda: sum(len(h._watchers) for h in a._hubs.values()) == 2)
    written = [await b.create("/registry/cm/first", b"v")]
    assert [await task for task in waiting] == [written, written]
    for n in range(6):  # one batch each: the prompt watcher takes them as they come
        written.append(await b.create(f"/registry/cm/{n}", b"v"))
        assert await _collect(prompt, 1) == written[-1:]
    assert await _collect(slow, 6) == written[1:]
    assert len(a._watch_calls) == 2  # the slow one now reads a stream of its own
    written.append(await b.create("/registry/cm/last", b"v"))
    assert await _collect(prompt, 1) == await _collect(slow, 1) == written[-1:]
    for events in (prompt, slow):
        await events.aclose()
    await _until(lambda: not a._watch_calls and not a._hubs)


async def test_a_watch_cache_over_etcd_takes_batches_straight_from_the_stream(
    pair: tuple[etcd.EtcdBackend, etcd.EtcdBackend],
) -> None:
    """The watch cache on etcd: every write reaches every subscriber once, in order.

    Stopping the cache closes its etcd stream; closing the backend ends a cache.
    """
    a, b = pair
    store = Store(configmaps.RESOURCE, a)
    writer = Store(configmaps.RESOURCE, b)
    cache = await store.running_watch_cache()
    assert cache is not None and cache._task is None  # fed by watch_into, no task
    start = await a.current_revision()
    watchers = [store.watch_batches("ns", ListOptions(resource_version=str(start)))]
    watchers.append(store.watch_batches("", ListOptions(resource_version=str(start))))
    firsts = [asyncio.ensure_future(anext(w)) for w in watchers]
    await _until(lambda: cache.subscriber_count == 2)
    created = await asyncio.gather(
        *(
            writer.create("ns", {"metadata": {"name": f"cm-{i}"}, "data": {}}, RequestContext())
            for i in range(20)
        )
    )
    expected = sorted(int(o["metadata"]["resourceVersion"]) for o in created)
    for events, first in zip(watchers, firsts, strict=True):
        seen = [e.revision for e in await asyncio.wait_for(first, 10)]
        while len(seen) < len(expected):
            seen.extend(e.revision for e in await asyncio.wait_for(anext(events), 10))
        assert seen == expected
    assert cache.stats.events == len(expected) and len(a._watch_calls) == 1
    await store.stop_watch_cache()
    assert cache.stopped and not a._watch_calls
    for events in watchers:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(events), 10)
    # A new cache on the same backend ends, with its subscriber, when the backend closes.
    fresh = await store.running_watch_cache()
    assert fresh is not None and fresh is not cache
    late = store.watch_batches("ns", ListOptions(resource_version=str(expected[-1])))
    waiting = asyncio.ensure_future(anext(late))
    await _until(lambda: fresh.subscriber_count == 1)
    await a.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 10)
    assert fresh.stopped
