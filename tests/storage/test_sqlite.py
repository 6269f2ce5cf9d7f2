"""What ``SqliteBackend`` promises beyond the shared conformance suite.

Durability across kill -9, bounded files after compaction, state surviving a
restart, group commit under many writers, watch fan-out that never waits for
a slow watcher, and the stress command.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

from kajitori.storage import interface, sqlite

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from kajitori.storage import sqlite

    async def writer(backend, n):
        i = 0
        while True:
            key = f"/kill/{n}/{i}"
            await backend.create(key, b"x" * 200)
            sys.stdout.write(key + "\\n")
            sys.stdout.flush()
            i += 1

    async def main():
        backend = sqlite.SqliteBackend(sys.argv[1])
        await backend.start()
        await asyncio.gather(*(writer(backend, n) for n in range(32)))

    asyncio.run(main())
    """
)


async def _open(path: pathlib.Path, **options: object) -> sqlite.SqliteBackend:
    backend = sqlite.SqliteBackend(path, **options)  # type: ignore[arg-type]
    await backend.start()
    return backend


def _size(path: pathlib.Path) -> int:
    return sum(os.path.getsize(f) for f in (path, path.with_name(path.name + "-wal")) if f.exists())


async def test_every_acknowledged_create_survives_kill_9(tmp_path: pathlib.Path) -> None:
    """Keys a killed process reported as created are all in the database when it is reopened."""
    db = tmp_path / "kill.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(db), stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    async with asyncio.timeout(60):
        while len(acknowledged) < 3000:
            line = await child.stdout.readline()
            assert line, "the child exited early"
            acknowledged.append(line.decode().strip())
    child.send_signal(signal.SIGKILL)
    # Lines already written before the kill were acknowledged too.
    rest = await child.stdout.read()
    await child.wait()
    assert child.returncode == -signal.SIGKILL
    acknowledged += [line for line in rest.decode().split("\n")[:-1]]
    backend = await _open(db)
    try:
        result = await backend.range("/kill/")
    finally:
        await backend.close()
    stored = {kv.key for kv in result.kvs}
    assert set(acknowledged) <= stored
    assert result.revision >= len(acknowledged)


async def test_compaction_shrinks_the_files_back_to_the_live_data(tmp_path: pathlib.Path) -> None:
    """After many overwrites, compacting to the newest revision brings db + wal back under a bound."""
    db = tmp_path / "size.db"
    backend = await _open(db)
    value = os.urandom(1024)
    try:
        await asyncio.gather(*(backend.create(f"/s/{k}", value) for k in range(300)))
        for _ in range(19):
            await asyncio.gather(
                *(backend.update(f"/s/{k}", value, expected_revision=0) for k in range(300))
            )
        grown = _size(db)
        await backend.compact(await backend.current_revision())
        shrunk = _size(db)
        assert len((await backend.range("/s/")).kvs) == 300
    finally:
        await backend.close()
    # 6,000 rows of ~2 KiB (value + previous value) before; 300 live rows after.
    assert grown > 10_000_000
    assert shrunk < 2_000_000


async def test_state_survives_a_restart_even_after_compacting_the_newest_row(
    tmp_path: pathlib.Path,
) -> None:
    """Reopening keeps the revision counter and compacted revision, though compaction removed the last tombstone."""
    db = tmp_path / "restart.db"
    backend = await _open(db)
    kept = await backend.create("/r/kept", b"1")
    await backend.create("/r/gone", b"1")
    deleted, _ = await backend.delete("/r/gone")
    await backend.compact(deleted)
    await backend.close()
    backend = await _open(db)
    try:
        assert await backend.current_revision() == deleted
        assert await backend.compacted_revision() == deleted
        assert await backend.create("/r/new", b"1") == deleted + 1
        assert [kv.mod_revision for kv in (await backend.range("/r/")).kvs] == [kept, deleted + 1]
    finally:
        await backend.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_64_concurrent_writers_get_distinct_contiguous_revisions(
    tmp_path: pathlib.Path, synchronous: str
) -> None:
    """64 writers creating and compare-and-swapping concurrently all succeed with gap-free revisions."""
    backend = await _open(tmp_path / "w.db", synchronous=synchronous)
    start = await backend.current_revision()

    async def writer(n: int) -> list[int]:
        revisions = []
        for i in range(20):
            created = await backend.create(f"/c/{n}/{i}", b"a")
            updated = await backend.update(f"/c/{n}/{i}", b"b", expected_revision=created)
            revisions += [created, updated]
        return revisions

    try:
        results = await asyncio.gather(*(writer(n) for n in range(64)))
        assert (await backend.count("/c/"))[1] == 64 * 20
    finally:
        await backend.close()
    revisions = sorted(r for rs in results for r in rs)
    assert revisions == list(range(start + 1, start + 1 + 64 * 40))


async def test_contended_compare_and_swap_lets_exactly_one_writer_win(
    tmp_path: pathlib.Path,
) -> None:
    """Of 64 concurrent updates guarded by the same revision, exactly one succeeds."""
    backend = await _open(tmp_path / "cas.db")
    try:
        rev = await backend.create("/cas", b"0")
        outcomes = await asyncio.gather(
            *(backend.update("/cas", f"{n}".encode(), expected_revision=rev) for n in range(64)),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, int)]
        losers = [o for o in outcomes if isinstance(o, interface.RevisionConflictError)]
        assert (len(winners), len(losers)) == (1, 63)
        assert {loser.current.mod_revision for loser in losers} == {winners[0]}
    finally:
        await backend.close()


async def test_a_slow_watcher_blocks_no_one_and_still_gets_every_event_once(
    tmp_path: pathlib.Path,
) -> None:
    """A watcher whose queue overflows falls back to the log and later receives every event, in order."""
    backend = await _open(tmp_path / "slow.db", watch_queue_size=10)
    try:
        start = await backend.current_revision()
        slow = backend.watch("/sw/", after_revision=start)
        fast = backend.watch("/sw/", after_revision=start)
        fast_events: list[interface.Event] = []

        async def follow() -> None:
            async for batch in fast:
                fast_events.extend(batch)
                if len(fast_events) >= 500:
                    return

        follower = asyncio.ensure_future(follow())
        pending = asyncio.ensure_future(anext(slow))
        await asyncio.sleep(0)  # subscribed; after its first batch it stops reading
        written = await asyncio.gather(*(backend.create(f"/sw/{i}", b"v") for i in range(500)))
        first = await pending
        await asyncio.wait_for(follower, 10)
        rest: list[interface.Event] = []
        while len(first) + len(rest) < 500:
            rest.extend(await asyncio.wait_for(anext(slow), 10))
        await slow.aclose()  # type: ignore[attr-defined]
    finally:
        await backend.close()
    assert [e.revision for e in first + rest] == sorted(written)
    assert [e.revision for e in fast_events] == sorted(written)


async def test_a_watcher_overtaken_by_compaction_ends_with_compacted_error(
    tmp_path: pathlib.Path,
) -> None:
    """A slow watcher whose missed history was compacted meanwhile gets CompactedError, not a gap."""
    backend = await _open(tmp_path / "gone.db", watch_queue_size=5)
    try:
        start = await backend.create("/cw/0", b"v")
        watch = backend.watch("/cw/", after_revision=start)
        pending = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0)  # subscribed and waiting
        for i in range(1, 50):
            await backend.create(f"/cw/{i}", b"v")
        await backend.compact(await backend.current_revision())
        with pytest.raises(interface.CompactedError):
            # The first batch may already have been queued before the overflow.
            await pending
            await anext(watch)
    finally:
        await backend.close()


async def test_close_ends_pending_watches(tmp_path: pathlib.Path) -> None:
    """A watch waiting for events stops when the backend closes."""
    backend = await _open(tmp_path / "close.db")
    watch = backend.watch("/", after_revision=0)
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)
    await backend.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)


def test_the_stress_command_passes_on_sqlite(tmp_path: pathlib.Path) -> None:
    """`python -m kajitori.storage.stress` runs writers and watchers and reports no errors."""
    command = [sys.executable, "-m", "kajitori.storage.stress", "--backend", "sqlite"]
    command += ["--writers", "8", "--watchers", "4", "--seconds", "2", "--data-dir", str(tmp_path)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines() if "  " in line)
    assert lines["result"].strip() == "OK"
    assert int(lines["writes"]) > 0
    assert (tmp_path / "stress.db").exists()


async def test_a_second_backend_on_the_same_file_is_refused(tmp_path: pathlib.Path) -> None:
    """Two servers on one data dir would split the watch fan-out: the second one is refused."""
    first = sqlite.SqliteBackend(tmp_path / "db.sqlite")
    await first.start()
    try:
        second = sqlite.SqliteBackend(tmp_path / "db.sqlite")
        with pytest.raises(sqlite.DatabaseInUseError, match="in use by another process"):
            await second.start()
    finally:
        await first.close()
    third = sqlite.SqliteBackend(tmp_path / "db.sqlite")
    await third.start()
    await third.close()
