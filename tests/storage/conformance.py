"""The storage conformance suite: what every ``interface.Backend`` must do.

Plain async test functions taking the ``backend`` fixture (see conftest.py);
test_conformance.py collects them once per backend. Revisions are only ever
compared with each other, never with fixed numbers, because the etcd backend
shares one server (and so one revision counter) across tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kajitori.storage import compactor, interface

_TIMEOUT = 10.0


async def _collect(
    events: AsyncIterator[list[interface.Event]], count: int
) -> list[interface.Event]:
    """Read ``count`` events from a watch (failing after a timeout)."""
    seen: list[interface.Event] = []
    async with asyncio.timeout(_TIMEOUT):
        while len(seen) < count:
            seen.extend(await anext(events))
    return seen


def _summary(events: list[interface.Event]) -> list[tuple[str, str, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.value, e.revision) for e in events]


async def test_every_write_gets_a_newer_revision(backend: interface.Backend) -> None:
    """Create, update and delete each advance the store's revision."""
    start = await backend.current_revision()
    created = await backend.create("/r/a", b"1")
    updated = await backend.update("/r/a", b"2", expected_revision=created)
    deleted, _ = await backend.delete("/r/a", expected_revision=updated)
    assert start < created < updated < deleted
    assert await backend.current_revision() == deleted


async def test_create_stores_a_value_whose_revisions_are_the_create(
    backend: interface.Backend,
) -> None:
    """A created key reads back with create_revision == mod_revision == the write's revision."""
    rev = await backend.create("/c/a", b"hello")
    read_at, kv = await backend.get("/c/a")
    assert read_at == rev
    assert kv == interface.KeyValue("/c/a", b"hello", rev, rev)


async def test_create_of_an_existing_key_fails(backend: interface.Backend) -> None:
    """Creating a present key raises KeyExistsError and changes nothing."""
    rev = await backend.create("/c/a", b"1")
    with pytest.raises(interface.KeyExistsError) as caught:
        await backend.create("/c/a", b"2")
    assert caught.value.key == "/c/a"
    assert await backend.current_revision() == rev
    assert (await backend.get("/c/a"))[1] == interface.KeyValue("/c/a", b"1", rev, rev)


async def test_create_after_delete_starts_a_new_incarnation(backend: interface.Backend) -> None:
    """A key deleted and created again gets a new create_revision."""
    await backend.create("/c/a", b"1")
    await backend.delete("/c/a")
    rev = await backend.create("/c/a", b"2")
    assert (await backend.get("/c/a"))[1] == interface.KeyValue("/c/a", b"2", rev, rev)


async def test_update_keeps_create_revision_and_moves_mod_revision(
    backend: interface.Backend,
) -> None:
    """An update keeps the key's create_revision and sets mod_revision to its own."""
    created = await backend.create("/u/a", b"1")
    updated = await backend.update("/u/a", b"2", expected_revision=created)
    again = await backend.update("/u/a", b"3", expected_revision=0)
    assert created < updated < again
    assert (await backend.get("/u/a"))[1] == interface.KeyValue("/u/a", b"3", created, again)


@pytest.mark.parametrize("operation", ["update", "delete"])
async def test_guarded_write_with_a_stale_revision_conflicts_and_carries_current(
    backend: interface.Backend, operation: str
) -> None:
    """update/delete guarded by an old mod_revision raise RevisionConflictError with the current value."""
    created = await backend.create("/g/a", b"1")
    updated = await backend.update("/g/a", b"2", expected_revision=created)
    with pytest.raises(interface.RevisionConflictError) as caught:
        if operation == "update":
            await backend.update("/g/a", b"3", expected_revision=created)
        else:
            await backend.delete("/g/a", expected_revision=created)
    assert caught.value.key == "/g/a"
    assert caught.value.current == interface.KeyValue("/g/a", b"2", created, updated)
    assert await backend.current_revision() == updated


@pytest.mark.parametrize("operation", ["update", "delete", "deleted-update", "deleted-delete"])
async def test_writes_to_a_missing_key_are_not_found(
    backend: interface.Backend, operation: str
) -> None:
    """update/delete of a never-created or deleted key raise KeyNotFoundError."""
    if operation.startswith("deleted-"):
        await backend.create("/n/a", b"1")
        await backend.delete("/n/a")
    before = await backend.current_revision()
    with pytest.raises(interface.KeyNotFoundError) as caught:
        if operation.endswith("update"):
            await backend.update("/n/a", b"2", expected_revision=0)
        else:
            await backend.delete("/n/a")
    assert caught.value.key == "/n/a"
    assert await backend.current_revision() == before


async def test_get_of_a_missing_key_is_none(backend: interface.Backend) -> None:
    """get of an absent key returns None at the current revision."""
    rev = await backend.create("/m/other", b"x")
    assert await backend.get("/m/a") == (rev, None)


async def test_delete_returns_the_deleted_value(backend: interface.Backend) -> None:
    """delete returns its revision and the value as it was before the delete."""
    created = await backend.create("/d/a", b"1")
    updated = await backend.update("/d/a", b"2", expected_revision=0)
    deleted, old = await backend.delete("/d/a", expected_revision=updated)
    assert deleted > updated
    assert old == interface.KeyValue("/d/a", b"2", created, updated)
    assert await backend.get("/d/a") == (deleted, None)


async def test_get_at_an_old_revision_sees_the_value_of_then(backend: interface.Backend) -> None:
    """get(revision=R) returns the key as it was at R, including before it existed and after delete."""
    before = await backend.create("/o/other", b"x")
    r1 = await backend.create("/o/a", b"1")
    r2 = await backend.update("/o/a", b"2", expected_revision=r1)
    r3, _ = await backend.delete("/o/a")
    assert await backend.get("/o/a", revision=before) == (before, None)
    assert await backend.get("/o/a", revision=r1) == (r1, interface.KeyValue("/o/a", b"1", r1, r1))
    assert await backend.get("/o/a", revision=r2) == (r2, interface.KeyValue("/o/a", b"2", r1, r2))
    assert await backend.get("/o/a", revision=r3) == (r3, None)


async def test_range_lists_only_keys_under_the_prefix_in_key_order(
    backend: interface.Backend,
) -> None:
    """range(prefix) returns exactly the live keys starting with prefix, sorted."""
    for key in ["/p/b", "/p/a", "/p", "/pa", "/p/c/d", "/o/z"]:
        await backend.create(key, key.encode())
    await backend.delete("/p/b")
    result = await backend.range("/p/")
    assert [kv.key for kv in result.kvs] == ["/p/a", "/p/c/d"]
    assert [kv.value for kv in result.kvs] == [b"/p/a", b"/p/c/d"]
    assert (result.revision, result.more, result.count) == (
        await backend.current_revision(),
        False,
        2,
    )


async def test_range_at_an_old_revision_lists_the_keys_of_then(backend: interface.Backend) -> None:
    """range(revision=R) shows keys and values as of R."""
    a = await backend.create("/ro/a", b"1")
    b = await backend.create("/ro/b", b"1")
    await backend.update("/ro/a", b"2", expected_revision=a)
    await backend.delete("/ro/b")
    await backend.create("/ro/c", b"1")
    old = await backend.range("/ro/", revision=b)
    assert old.kvs == [
        interface.KeyValue("/ro/a", b"1", a, a),
        interface.KeyValue("/ro/b", b"1", b, b),
    ]
    assert (old.revision, old.count) == (b, 2)
    assert [kv.key for kv in (await backend.range("/ro/")).kvs] == ["/ro/a", "/ro/c"]


async def test_paginated_range_at_a_fixed_revision_is_a_consistent_snapshot(
    backend: interface.Backend,
) -> None:
    """Pages read with start_after+limit at the first page's revision ignore writes made meanwhile."""
    keys = [f"/pg/{i:02d}" for i in range(10)]
    for key in keys:
        await backend.create(key, b"v1")
    first = await backend.range("/pg/", limit=3)
    assert ([kv.key for kv in first.kvs], first.more, first.count) == (keys[:3], True, 10)
    pages, result = [first], first
    while result.more:
        # Writes between pages: a new key, an update and a delete, all in range.
        await backend.create(f"/pg/{len(pages):02d}x", b"new")
        await backend.update(keys[-1], b"v2", expected_revision=0)
        if len(pages) == 1:
            await backend.delete(keys[5])
        result = await backend.range(
            "/pg/", start_after=result.kvs[-1].key, limit=3, revision=first.revision
        )
        assert (result.revision, result.count) == (first.revision, 10)
        pages.append(result)
    listed = [kv for page in pages for kv in page.kvs]
    assert [kv.key for kv in listed] == keys
    assert {kv.value for kv in listed} == {b"v1"}
    assert [len(page.kvs) for page in pages] == [3, 3, 3, 1]


async def test_count_counts_live_keys_under_the_prefix(backend: interface.Backend) -> None:
    """count(prefix) is the number of live keys under prefix at the current revision."""
    for key in ["/cn/a", "/cn/b", "/cn/c", "/cnx"]:
        await backend.create(key, b"")
    rev, _ = await backend.delete("/cn/b")
    assert await backend.count("/cn/") == (rev, 2)


async def test_watch_from_now_streams_puts_and_deletes_with_prev_kv(
    backend: interface.Backend,
) -> None:
    """A watch from the current revision sees later creates, updates and deletes, with prev_kv."""
    watch = backend.watch("/w/", after_revision=await backend.current_revision())
    got = asyncio.ensure_future(_collect(watch, 3))
    await asyncio.sleep(0)  # let the watch subscribe, so the writes arrive live
    c = await backend.create("/w/a", b"1")
    await backend.create("/x/outside", b"ignored")
    u = await backend.update("/w/a", b"2", expected_revision=c)
    d, _ = await backend.delete("/w/a", expected_revision=u)
    events = await got
    await watch.aclose()  # type: ignore[attr-defined]
    assert [(e.type, e.revision, e.is_create) for e in events] == [
        ("PUT", c, True),
        ("PUT", u, False),
        ("DELETE", d, False),
    ]
    assert events[0].kv == interface.KeyValue("/w/a", b"1", c, c)
    assert events[1].kv == interface.KeyValue("/w/a", b"2", c, u)
    assert events[1].prev_kv == interface.KeyValue("/w/a", b"1", c, c)
    assert (events[2].kv.key, events[2].kv.value) == ("/w/a", b"")
    assert events[2].prev_kv == interface.KeyValue("/w/a", b"2", c, u)


async def test_watch_from_the_past_replays_history_then_continues_live(
    backend: interface.Backend,
) -> None:
    """A watch after an old revision first gets the missed events, then live ones, each once."""
    r0 = await backend.create("/wp/a", b"0")
    missed = [await backend.create(f"/wp/{i}", b"x") for i in range(5)]
    watch = backend.watch("/wp/", after_revision=r0)
    first = await _collect(watch, 5)
    live = [await backend.update("/wp/a", f"{i}".encode(), expected_revision=0) for i in range(3)]
    rest = await _collect(watch, 3)
    await watch.aclose()  # type: ignore[attr-defined]
    assert [e.revision for e in first + rest] == missed + live
    assert [e.kv.value for e in rest] == [b"0", b"1", b"2"]
    assert [e.prev_kv.value for e in rest if e.prev_kv] == [b"0", b"0", b"1"]


async def test_watch_replays_deletes_with_prev_kv(backend: interface.Backend) -> None:
    """A replayed delete carries the deleted value in prev_kv."""
    c = await backend.create("/wd/a", b"gone")
    d, _ = await backend.delete("/wd/a")
    watch = backend.watch("/wd/", after_revision=c)
    (event,) = await _collect(watch, 1)
    await watch.aclose()  # type: ignore[attr-defined]
    assert (event.type, event.revision) == ("DELETE", d)
    assert event.prev_kv == interface.KeyValue("/wd/a", b"gone", c, c)


async def test_watch_under_concurrent_writers_sees_every_write_once_in_order(
    backend: interface.Backend,
) -> None:
    """With 16 concurrent writers, two watches each see every acknowledged write once, in revision order."""
    start = await backend.current_revision()
    watches = [backend.watch("/wc/", after_revision=start) for _ in range(2)]

    async def writer(n: int) -> list[int]:
        revs = []
        for i in range(10):
            rev = await backend.create(f"/wc/{n}/{i}", b"v")
            revs.append(await backend.update(f"/wc/{n}/{i}", b"w", expected_revision=rev))
            revs.append(rev)
        return revs

    written = sorted(r for revs in await asyncio.gather(*map(writer, range(16))) for r in revs)
    for watch in watches:
        events = await _collect(watch, len(written))
        await watch.aclose()  # type: ignore[attr-defined]
        assert [e.revision for e in events] == written


async def test_watches_of_nested_and_partial_prefixes_see_exactly_their_keys(
    backend: interface.Backend,
) -> None:
    """Each watch gets the writes under its own prefix, nested, partial or empty, in order."""
    start = await backend.current_revision()
    prefixes = ["", "/np/", "/np/a/", "/np/a", "/np/a/x/", "/nq/"]
    watches = {p: backend.watch(p, after_revision=start) for p in prefixes}
    pending = {p: asyncio.ensure_future(anext(w)) for p, w in watches.items()}
    await asyncio.sleep(0.05)  # let every watch subscribe, so the writes arrive live
    keys = ["/np/a/1", "/np/ab/2", "/np/b/3", "/nq/4", "/np/a/x/5", "/np/a", "/other/6"]
    created = await asyncio.gather(*(backend.create(k, b"") for k in keys))
    revisions = dict(zip(keys, created, strict=True))
    for prefix, watch in watches.items():
        expected = sorted(r for k, r in revisions.items() if k.startswith(prefix))
        seen = [e.revision for e in await asyncio.wait_for(pending[prefix], _TIMEOUT)]
        seen += [e.revision for e in await _collect(watch, len(expected) - len(seen))]
        await watch.aclose()  # type: ignore[attr-defined]
        assert seen == expected, prefix


async def test_watch_into_hands_every_write_over_once_in_order(backend: interface.Backend) -> None:
    """``watch_into`` from now and from the past: each write once, in order; stop ends it."""
    r0 = await backend.create("/wi/seed", b"")
    missed = [await backend.create(f"/wi/m{i}", b"") for i in range(3)]
    now, past = [], []
    ends: list[BaseException | None] = []
    stops = [
        backend.watch_into(  # type: ignore[attr-defined]
            "/wi/", after_revision=after, deliver=into.extend, end=ends.append
        )
        for after, into in ((missed[-1], now), (r0, past))
    ]

    async def writer(n: int) -> list[int]:
        return [await backend.create(f"/wi/{n}/{i}", b"v") for i in range(10)]

    await backend.create("/wj/outside", b"")
    written = sorted(r for revs in await asyncio.gather(*map(writer, range(8))) for r in revs)
    async with asyncio.timeout(_TIMEOUT):
        while len(now) < len(written) or len(past) < len(missed) + len(written):
            await asyncio.sleep(0.01)
    for stop in stops:
        stop()
    await backend.create("/wi/after-stop", b"")
    await asyncio.sleep(0.1)
    assert [e.revision for e in now] == written
    assert [e.revision for e in past] == missed + written
    assert ends == []


async def test_watch_into_ends_with_the_error_of_deliver_or_cleanly_at_close(
    backend: interface.Backend,
) -> None:
    """A ``deliver`` that raises ends its own watch with that error; close ends the rest with None."""
    start = await backend.current_revision()
    ends: dict[str, BaseException | None] = {}
    got: list[interface.Event] = []

    def failing(batch: list[interface.Event]) -> None:
        raise ValueError("consumer failed")

    for name, deliver in (("failing", failing), ("fine", got.extend)):
        backend.watch_into(  # type: ignore[attr-defined]
            "/we/",
            after_revision=start,
            deliver=deliver,
            end=lambda exc, name=name: ends.setdefault(name, exc),
        )
    rev = await backend.create("/we/a", b"")
    async with asyncio.timeout(_TIMEOUT):
        while not got or "failing" not in ends:
            await asyncio.sleep(0.01)
    assert isinstance(ends["failing"], ValueError) and "fine" not in ends
    await backend.close()
    async with asyncio.timeout(_TIMEOUT):
        while "fine" not in ends:
            await asyncio.sleep(0.01)
    assert ends["fine"] is None and [e.revision for e in got] == [rev]


async def test_reads_at_a_future_revision_fail(backend: interface.Backend) -> None:
    """get/range at a revision newer than the store raise FutureRevisionError."""
    rev = await backend.create("/f/a", b"1")
    with pytest.raises(interface.FutureRevisionError):
        await backend.get("/f/a", revision=rev + 100)
    with pytest.raises(interface.FutureRevisionError):
        await backend.range("/f/", revision=rev + 100)


async def test_compaction_forgets_old_revisions_but_keeps_live_values(
    backend: interface.Backend,
) -> None:
    """After compact(R), reads and watches before R fail with CompactedError; R and later still work."""
    a = await backend.create("/k/a", b"1")
    b = await backend.create("/k/b", b"1")
    a2 = await backend.update("/k/a", b"2", expected_revision=a)
    gone, _ = await backend.delete("/k/b")
    target = await backend.create("/k/c", b"1")
    after = await backend.update("/k/c", b"2", expected_revision=target)
    await backend.compact(target)
    assert await backend.compacted_revision() == target
    for old in (a, b, gone):
        with pytest.raises(interface.CompactedError) as caught:
            await backend.get("/k/a", revision=old)
        assert caught.value.compact_revision == target
        with pytest.raises(interface.CompactedError):
            await backend.range("/k/", revision=old)
    watch = backend.watch("/k/", after_revision=a)
    with pytest.raises(interface.CompactedError):
        await anext(watch)
    at_target = await backend.range("/k/", revision=target)
    assert at_target.kvs == [
        interface.KeyValue("/k/a", b"2", a, a2),
        interface.KeyValue("/k/c", b"1", target, target),
    ]
    assert (await backend.get("/k/c"))[1] == interface.KeyValue("/k/c", b"2", target, after)
    watch = backend.watch("/k/", after_revision=target)
    assert [e.revision for e in await _collect(watch, 1)] == [after]
    await watch.aclose()  # type: ignore[attr-defined]


async def test_compaction_of_a_future_revision_fails(backend: interface.Backend) -> None:
    """compact(R) with R beyond the current revision raises FutureRevisionError."""
    rev = await backend.create("/cf/a", b"1")
    with pytest.raises(interface.FutureRevisionError):
        await backend.compact(rev + 100)


async def test_compactor_keeps_an_interval_and_a_minimum_of_history(
    backend: interface.Backend,
) -> None:
    """Compactor compacts to min(previous tick's revision, current - keep_revisions)."""
    auto = compactor.Compactor(backend, interval_seconds=60, keep_revisions=5)
    for i in range(10):
        await backend.create(f"/ac/{i}", b"")
    noted = await backend.current_revision()
    assert await auto.tick() is None  # the first tick only notes the revision
    for i in range(3):
        await backend.update(f"/ac/{i}", b"x", expected_revision=0)
    current = await backend.current_revision()
    assert current - 5 < noted  # so the minimum retention is what binds
    assert await auto.tick() == current - 5
    assert await backend.compacted_revision() == current - 5
    assert await auto.tick() is None  # nothing written since: target not newer than compacted
    for i in range(10):
        await backend.update(f"/ac/{i}", b"y", expected_revision=0)
    assert await auto.tick() == current
    assert await backend.compacted_revision() == current
