"""Storage stress command: many writers and watchers on one prefix, then a check.

Owns ``python -m kajitori.storage.stress``::

    python -m kajitori.storage.stress --backend sqlite|etcd --writers 64 \\
        --watchers 100 --seconds 10 [--data-dir DIR]

For ``--seconds`` it runs ``--writers`` tasks that create keys and update
their own keys (compare-and-swap on the revision they last wrote, so every
write should succeed) and ``--watchers`` watches of the whole prefix, all
started at the revision before the first write. Afterwards it waits for every
watcher to reach the last acknowledged revision and checks that each saw
every acknowledged write exactly once, in revision order, and nothing else.
It prints a summary table and exits 1 if anything went wrong (a write error,
a duplicate, an out-of-order or missing or unexpected event, a watcher that
never caught up), 0 otherwise.

For ``etcd`` it starts a private etcd (``kajitori.testing.etcd_server``) in
the data directory. Without ``--data-dir`` a temporary directory is used and
removed afterwards.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import dataclasses
import itertools
import pathlib
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence

from kajitori.storage import interface

_PREFIX = "/stress/"
_CATCH_UP_TIMEOUT = 30.0


@dataclasses.dataclass
class _Writes:
    revisions: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))
    errors: int = 0
    first_error: str = ""


@dataclasses.dataclass
class Summary:
    """What one run did and found; ``failed`` says whether the check failed."""

    backend: str
    writers: int
    watchers: int
    seconds: float
    writes: int = 0
    write_errors: int = 0
    events_delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    missing: int = 0
    unexpected: int = 0
    lagging_watchers: int = 0
    first_error: str = ""

    @property
    def failed(self) -> bool:
        problems = (self.write_errors, self.duplicates, self.out_of_order, self.missing)
        return any(problems) or bool(self.unexpected or self.lagging_watchers) or not self.writes

    def table(self) -> str:
        rows = [
            ("backend", self.backend),
            ("writers", self.writers),
            ("watchers", self.watchers),
            ("seconds", f"{self.seconds:.1f}"),
            ("writes", self.writes),
            ("writes/s", f"{self.writes / self.seconds:.0f}"),
            ("write errors", self.write_errors),
            ("events delivered", self.events_delivered),
            ("duplicates", self.duplicates),
            ("out-of-order", self.out_of_order),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("lagging watchers", self.lagging_watchers),
            ("result", "FAIL" if self.failed else "OK"),
        ]
        if self.first_error:
            rows.append(("first error", self.first_error))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def _writer(
    backend: interface.Backend, number: int, deadline: float, writes: _Writes
) -> None:
    rng = random.Random(number)
    mine: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            if mine and rng.random() < 0.5:
                key = rng.choice(list(mine))
                revision = await backend.update(key, b"updated", expected_revision=mine[key])
            else:
                key = f"{_PREFIX}w{number}/{len(mine)}"
                revision = await backend.create(key, b"created")
        except interface.StorageError as exc:
            writes.errors += 1
            writes.first_error = writes.first_error or repr(exc)
            continue
        mine[key] = revision
        writes.revisions.append(revision)


async def _watcher(events: AsyncIterator[list[interface.Event]], seen: array.array[int]) -> None:
    async for batch in events:
        seen.extend(event.revision for event in batch)


async def _wait_caught_up(seen: list[array.array[int]], last: int) -> None:
    """Wait until every watcher has seen ``last``, as long as delivery keeps moving.

    A backlog on a loaded machine is not a lost event: give up only when no
    watcher has received anything for ``_CATCH_UP_TIMEOUT`` seconds.
    """
    idle_since = asyncio.get_running_loop().time()
    delivered = sum(len(s) for s in seen)
    while any(not s or s[-1] < last for s in seen):
        await asyncio.sleep(0.05)
        now_delivered = sum(len(s) for s in seen)
        now = asyncio.get_running_loop().time()
        if now_delivered != delivered:
            delivered, idle_since = now_delivered, now
        elif now - idle_since > _CATCH_UP_TIMEOUT:
            return


def _check(summary: Summary, expected: array.array[int], seen: list[array.array[int]]) -> None:
    wanted = set(expected)
    last = max(wanted, default=0)
    for revisions in seen:
        summary.events_delivered += len(revisions)
        distinct = set(revisions)
        summary.duplicates += len(revisions) - len(distinct)
        summary.out_of_order += sum(1 for a, b in itertools.pairwise(revisions) if b <= a)
        summary.missing += len(wanted - distinct)
        summary.unexpected += len(distinct - wanted)
        summary.lagging_watchers += int(not revisions or max(revisions) < last)


async def run(backend: interface.Backend, summary: Summary) -> Summary:
    """Drive ``backend`` (already started) as described above and fill ``summary``."""
    start = await backend.current_revision()
    streams = [backend.watch(_PREFIX, after_revision=start) for _ in range(summary.watchers)]
    seen = [array.array("q") for _ in streams]
    watchers = [asyncio.create_task(_watcher(s, r)) for s, r in zip(streams, seen, strict=True)]
    writes = _Writes()
    began = time.monotonic()
    deadline = began + summary.seconds
    await asyncio.gather(*(_writer(backend, n, deadline, writes) for n in range(summary.writers)))
    summary.seconds = time.monotonic() - began
    await _wait_caught_up(seen, max(writes.revisions, default=0))
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    summary.writes = len(writes.revisions)
    summary.write_errors = writes.errors
    summary.first_error = writes.first_error
    _check(summary, writes.revisions, seen)
    return summary


async def _run_sqlite(data_dir: pathlib.Path, summary: Summary) -> Summary:
    from kajitori.storage import sqlite

    backend = sqlite.SqliteBackend(data_dir / "stress.db")
    await backend.start()
    try:
        return await run(backend, summary)
    finally:
        await backend.close()


async def _run_etcd(data_dir: pathlib.Path, summary: Summary) -> Summary:
    from kajitori.storage import etcd
    from kajitori.testing import etcd_server

    async with etcd_server.EtcdServer(data_dir / "etcd") as server:
        backend = etcd.EtcdBackend(server.endpoint)
        await backend.start()
        try:
            return await run(backend, summary)
        finally:
            await backend.close()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kajitori.storage.stress", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--backend", choices=["sqlite", "etcd"], default="sqlite")
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--data-dir", type=pathlib.Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _parse(argv)
    summary = Summary(args.backend, args.writers, args.watchers, args.seconds)
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or pathlib.Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="kajitori-stress-"))
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        runner = _run_sqlite if args.backend == "sqlite" else _run_etcd
        asyncio.run(runner(data_dir, summary))
    print(summary.table())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
