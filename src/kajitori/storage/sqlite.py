"""The embedded storage backend: an etcd-shaped revisioned log in one SQLite file.

Owns the on-disk schema, the single writer with group commit, the read path,
watch fan-out and compaction for ``SqliteBackend``. The design and the
alternatives are recorded in docs/decisions/0002-sqlite-storage.md; in short:

* **Schema.** One log-structured table in the spirit of kine: every write
  appends a row whose ``id`` *is* the global revision and which carries the
  key, the key's ``create_revision``, the ``prev_revision`` it replaced, a
  ``deleted`` flag, the value and the previous value (so watch replay can
  give ``prev_kv``). ``AUTOINCREMENT`` keeps the revision counter in
  ``sqlite_sequence``, so it survives compaction deleting the newest row. The
  one index ``(key, id)`` serves "newest row of a key at revision R" as a
  single seek and a prefix range as an ordered index scan.
* **Writes.** Only one thread writes, with its own connection. Callers queue
  operations; the writer takes everything queued (up to ``_MAX_BATCH``),
  applies it in one transaction and commits once: a group commit, so one
  fsync covers many writers. Existence and compare-and-swap checks run inside
  that transaction, so they cannot race. A write is acknowledged only after
  its commit, and with the default ``synchronous=FULL`` the WAL is fsynced at
  every commit: an acknowledged write survives kill -9 and power loss.
* **Reads.** A small pool of reader threads, each with its own connection,
  runs every read in one read transaction (a WAL snapshot), so the current
  revision and the rows come from the same instant. sqlite3 releases the GIL
  while SQLite works, so the event loop keeps running.
* **Watch.** Since only this process writes, the writer hands each committed
  batch's events to the event loop, which offers them to every subscriber's
  bounded queue: no polling. Subscribers are indexed by prefix, so a batch is
  split once per watched prefix, not filtered once per watch. ``watch_into``
  (the watch cache's way in, as on etcd) hands the batch to its consumer in
  that same callback, before the writers are acknowledged, so the watchers
  are woken no later than the writers. A watch from the past first reads history from
  the table, then drains its queue, dropping revisions it already delivered;
  because it subscribes *before* reading history, nothing falls in between.
  A subscriber whose queue overflows is never waited for: its queue is
  dropped and it goes back to reading history from the table (as etcd's
  "unsynced" watchers do). It loses nothing; if compaction overtakes it
  meanwhile its watch ends with ``interface.CompactedError`` (410 Gone).
* **Compaction** deletes superseded rows and tombstones up to the revision in
  small transactions interleaved with writes, then reclaims the free pages
  (``auto_vacuum=INCREMENTAL``) and truncates the WAL.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import IO, Any, Literal

from kajitori.storage import interface, sinks

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    prev_value BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS log_key_id ON log (key, id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_REVISIONS = (
    "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'log'),"
    " (SELECT value FROM meta WHERE name = 'compacted')"
)
_NEWEST = (
    "SELECT id, deleted, create_revision, value FROM log"
    " WHERE key = ? AND id <= ? ORDER BY id DESC LIMIT 1"
)
# The current revision and the key's newest row in one statement: on its own
# (autocommit) a statement reads one snapshot, so no BEGIN/COMMIT is needed.
# No row when the key has no history (the caller falls back to ``_get``).
_NEWEST_NOW = (
    "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'log'),"
    " id, deleted, create_revision, value FROM log WHERE key = ? ORDER BY id DESC LIMIT 1"
)
# The newest row of each key at :rev, live keys only, in key order. Scanning
# (key, id) in order lets LIMIT stop early; NOT EXISTS is one index seek.
_LIVE_AT = (
    "FROM log AS l WHERE l.key {lower} :lo AND l.key < :hi AND l.id <= :rev"
    " AND l.deleted = 0 AND NOT EXISTS (SELECT 1 FROM log AS n"
    " WHERE n.key = l.key AND n.id > l.id AND n.id <= :rev)"
)
_INSERT = "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?)"
# Keys with a read generation of their own; beyond it they share the floor.
_READ_GENERATIONS_MAX = 65536
_HISTORY = (
    "SELECT id, key, deleted, create_revision, prev_revision, value, prev_value"
    " FROM log WHERE id > :after AND key >= :lo AND key < :hi ORDER BY id LIMIT :limit"
)
_SET_COMPACTED = "INSERT OR REPLACE INTO meta VALUES ('compacted', ?)"
_COMPACT_CHUNK_END = (
    "SELECT MAX(id) FROM (SELECT id FROM log WHERE id > ? AND id <= ? ORDER BY id LIMIT ?)"
)
# Rows up to the target that a newer row (also up to the target) supersedes,
# and tombstones: what remains is the newest live row of each key.
_COMPACT_DELETE = (
    "DELETE FROM log WHERE id > :lo AND id <= :hi AND (deleted = 1 OR EXISTS"
    " (SELECT 1 FROM log AS n WHERE n.key = log.key AND n.id > log.id AND n.id <= :target))"
)

# Any TEXT sorts before any BLOB in SQLite, so an empty blob is "no upper bound".
_NO_UPPER_BOUND = b""
_MAX_BATCH = 1000
_HISTORY_PAGE = 1000
_COMPACT_CHUNK = 2000

Synchronous = Literal["FULL", "NORMAL"]


@dataclasses.dataclass(slots=True)
class _Write:
    """One queued write; the writer thread fills ``result`` or ``error``."""

    op: Literal["create", "update", "delete"]
    key: str
    value: bytes
    expected_revision: int
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


@dataclasses.dataclass(slots=True)
class _Job:
    """Work for the writer thread outside a write batch (compaction steps).

    ``step`` runs on the writer connection and returns True when finished;
    an unfinished job goes to the back of the queue so writes interleave.
    """

    step: Callable[[sqlite3.Connection], bool]
    future: asyncio.Future[None]


class _Subscriber:
    """One watch's bounded queue of live events, fed on the event loop."""

    def __init__(self, prefix: str, capacity: int) -> None:
        self.prefix = prefix
        self.capacity = capacity
        self.events: collections.deque[interface.Event] = collections.deque()
        self.overflowed = False
        self.closed = False
        self.wakeup = asyncio.Event()

    def offer(self, matching: list[interface.Event]) -> None:
        """Queue the events of a batch under this prefix (the caller filtered them)."""
        if self.overflowed:
            return
        if len(self.events) + len(matching) > self.capacity:
            # Never wait for a slow consumer: drop its queue, it re-reads the log.
            self.overflowed = True
            self.events.clear()
        else:
            self.events.extend(matching)
        self.wakeup.set()

    def end(self) -> None:
        self.closed = True
        self.wakeup.set()

    def resync(self) -> None:
        """Start receiving live events again after an overflow."""
        self.overflowed = False
        self.events.clear()

    def take(self) -> list[interface.Event]:
        batch = list(self.events)
        self.events.clear()
        self.wakeup.clear()
        return batch


class _Subscribers:
    """Every live watch of the backend, indexed by prefix.

    A committed batch is split once per watched prefix, not once per watch:
    a prefix ending in "/" (every prefix the registry watches) is found by
    looking up each "/"-ended head of an event's key, up to the deepest such
    prefix watched; other prefixes (rare) are tested one by one.
    """

    def __init__(self) -> None:
        self._by_prefix: dict[str, list[_Subscriber | sinks.Sink]] = {}
        self._loose: list[str] = []  # watched prefixes that do not end in "/"
        self._depth = 0  # the most "/"s in a watched prefix ending in "/"

    def __iter__(self) -> Iterator[_Subscriber | sinks.Sink]:
        return (sub for subs in list(self._by_prefix.values()) for sub in subs)

    def add(self, sub: _Subscriber | sinks.Sink) -> None:
        # New lists, here and in discard, so that a batch being handed out is not disturbed.
        subs = self._by_prefix.get(sub.prefix)
        self._by_prefix[sub.prefix] = [*(subs or ()), sub]
        if subs is None:
            self._reindex()

    def discard(self, sub: _Subscriber | sinks.Sink) -> None:
        subs = self._by_prefix.get(sub.prefix)
        if subs is None or sub not in subs:
            return
        self._by_prefix[sub.prefix] = [other for other in subs if other is not sub]
        if not self._by_prefix[sub.prefix]:
            del self._by_prefix[sub.prefix]
            self._reindex()

    def _reindex(self) -> None:
        prefixes = [p for p in self._by_prefix if p]
        self._loose = [p for p in prefixes if not p.endswith("/")]
        self._depth = max((p.count("/") for p in prefixes if p.endswith("/")), default=0)

    def publish(self, events: list[interface.Event]) -> None:
        """Offer each watch the events of ``events`` under its prefix, in order."""
        by_prefix = self._by_prefix
        if not by_prefix:
            return
        groups: dict[str, list[interface.Event]] = {}
        if "" in by_prefix:
            groups[""] = events
        depth, loose = self._depth, self._loose
        for event in events:
            key = event.kv.key
            end = 0
            for _ in range(depth):
                end = key.find("/", end) + 1
                if not end:
                    break
                head = key[:end]
                if head in by_prefix:
                    groups.setdefault(head, []).append(event)
            for prefix in loose:
                if key.startswith(prefix):
                    groups.setdefault(prefix, []).append(event)
        for prefix, matching in groups.items():
            for sub in by_prefix.get(prefix, ()):
                sub.offer(matching)


class SqliteBackend:
    """``interface.Backend`` on one SQLite database file (plus its -wal/-shm).

    ``synchronous`` picks SQLite's durability: ``"FULL"`` (default) fsyncs
    the WAL at each group commit; ``"NORMAL"`` only writes it, which survives
    a process crash but not power loss. ``readers`` is the size of the read
    thread pool; ``watch_queue_size`` bounds each watcher's live queue.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        readers: int = 2,
        watch_queue_size: int = 10_000,
    ) -> None:
        self._path = os.fspath(path)
        self._synchronous = synchronous
        self._reader_count = readers
        self._watch_queue_size = watch_queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[_Write | _Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._subscribers = _Subscribers()
        self._lock_file: IO[str] | None = None
        self._inline: sqlite3.Connection | None = None
        # Both advance on the event loop, after the commit they describe.
        self._published_revision = 0
        # Read generations (``read_generation``): bumped per key when a write
        # is submitted, before it can commit; ``_generation_floor`` stands for
        # every key whose entry was dropped to keep the map bounded.
        self._generation = 0
        self._generation_floor = 0
        self._key_generation: dict[str, int] = {}
        self._writes_in_flight: dict[str, int] = {}
        self._compacted_revision = 0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lock_file = _lock_database(self._path)
        conn = await asyncio.to_thread(self._open_writer)
        current, compacted = _revisions(conn)
        self._published_revision = current
        self._compacted_revision = compacted
        self._inline = self._connect(busy_timeout=0.0)
        self._inline.execute("PRAGMA query_only = ON")
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._reader_count,
            thread_name_prefix="kajitori-sqlite-read",
            initializer=self._open_reader,
        )
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn, current), name="kajitori-sqlite-write", daemon=True
        )
        self._writer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscribers):
            sub.end()
        if self._writer is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._writer.join)
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, wait=True)
        for conn in self._reader_conns:
            conn.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None
        # Let callbacks the writer scheduled before stopping resolve their futures.
        await asyncio.sleep(0)

    def _connect(self, *, busy_timeout: float = 30.0) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        # auto_vacuum only takes effect before the first table is created.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # Truncate the WAL file back to this size after a checkpoint.
        conn.execute("PRAGMA journal_size_limit = 16777216")
        conn.executescript(_SCHEMA)
        return conn

    def _open_reader(self) -> None:
        conn = self._connect()
        conn.execute("PRAGMA query_only = ON")
        self._reader_local.conn = conn
        self._reader_conns.append(conn)

    # -- reads -----------------------------------------------------------------

    async def current_revision(self) -> int:
        return self._published_revision

    async def compacted_revision(self) -> int:
        return self._compacted_revision

    async def get(self, key: str, *, revision: int = 0) -> tuple[int, interface.KeyValue | None]:
        # A point read by key takes tens of microseconds, less than the hop to a
        # reader thread and back (the API benchmark's profile): read it here.
        # WAL readers never wait for the writer; if SQLite is busy anyway, the
        # pool does the read instead of blocking the loop.
        if self._inline is not None:
            try:
                if revision == 0:
                    found = _get_now(self._inline, key)
                    if found is not None:
                        return found
                return self._inline_read(_get, (key, revision))
            except sqlite3.OperationalError:
                pass
        return await self._read(_get, key, revision)

    def _inline_read(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        assert self._inline is not None
        self._inline.execute("BEGIN")
        try:
            return fn(self._inline, *args)
        finally:
            self._inline.execute("COMMIT")

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> interface.RangeResult:
        return await self._read(_range, prefix, start_after, limit, revision)

    async def count(self, prefix: str) -> tuple[int, int]:
        return await self._read(_count, prefix)

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._readers is not None, "start() first"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._in_snapshot, fn, args)

    def _in_snapshot(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        conn: sqlite3.Connection = self._reader_local.conn
        conn.execute("BEGIN")
        try:
            return fn(conn, *args)
        finally:
            conn.execute("COMMIT")

    # -- writes ----------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        result: int = await self._submit("create", key, value, 0)
        return result

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        result: int = await self._submit("update", key, value, expected_revision)
        return result

    async def delete(
        self, key: str, *, expected_revision: int = 0
    ) -> tuple[int, interface.KeyValue]:
        result: tuple[int, interface.KeyValue] = await self._submit(
            "delete", key, b"", expected_revision
        )
        return result

    async def _submit(
        self, op: Literal["create", "update", "delete"], key: str, value: bytes, expected: int
    ) -> Any:
        if self._closed:
            raise interface.StorageError("backend is closed")
        future = asyncio.get_running_loop().create_future()
        self._begin_write(key)
        try:
            self._queue.put(_Write(op, key, bytes(value), expected, future))
            return await future
        finally:
            self._end_write(key)

    def read_generation(self, key: str) -> int | None:
        """A token equal between two calls only if no write to ``key`` was submitted
        in between; None while one is in flight (its commit may be visible already).

        A reader that remembers what it read with the token may answer it again
        while the token is unchanged: nothing else writes this database.
        """
        if key in self._writes_in_flight:
            return None
        return self._key_generation.get(key, self._generation_floor)

    def _begin_write(self, key: str) -> None:
        if len(self._key_generation) >= _READ_GENERATIONS_MAX:
            # Every key reports the floor from now on, newer than any token
            # handed out before: remembered reads miss once, none is wrong.
            self._generation_floor = self._generation
            self._key_generation.clear()
        self._generation += 1
        self._key_generation[key] = self._generation
        self._writes_in_flight[key] = self._writes_in_flight.get(key, 0) + 1

    def _end_write(self, key: str) -> None:
        left = self._writes_in_flight.pop(key) - 1
        if left:
            self._writes_in_flight[key] = left

    def _write_loop(self, conn: sqlite3.Connection, revision: int) -> None:
        """The writer thread: take what is queued, commit it as one batch."""
        stopping = False
        while not stopping:
            items: list[_Write | _Job] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stopping = True
                    break
                items.append(item)
                if len(items) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            writes = [i for i in items if isinstance(i, _Write)]
            if writes:
                revision = self._commit_batch(conn, writes, revision)
            for job in (i for i in items if isinstance(i, _Job)):
                self._run_job(conn, job, requeue=not stopping)
        conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, writes: list[_Write], revision: int) -> int:
        events: list[interface.Event] = []
        start = revision
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in writes:
                try:
                    event = _apply(conn, write, revision + 1)
                except (interface.StorageError, ValueError, TypeError) as exc:
                    write.error = exc
                    continue
                revision += 1
                events.append(event)
            conn.execute("COMMIT")
        except Exception as exc:  # the whole batch failed; none of it is committed
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = interface.StorageError(f"sqlite write failed: {exc}")
            for write in writes:
                write.error = failure
            events, revision = [], start
        self._call_soon(self._deliver, events, writes)
        return revision

    def _run_job(self, conn: sqlite3.Connection, job: _Job, *, requeue: bool) -> None:
        try:
            done = job.step(conn)
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._call_soon(_settle, job.future, None, exc)
            return
        if done or not requeue:
            self._call_soon(_settle, job.future, None, None)
        else:
            self._queue.put(job)

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, events: list[interface.Event], writes: list[_Write]) -> None:
        """On the loop: publish a committed batch, then acknowledge its writers."""
        if events:
            self._published_revision = events[-1].revision
            # Watch-cache sinks take the batch here, before the writers hear of
            # their commit: the events reach the watchers' connections no later
            # than the answers reach the writers.
            self._subscribers.publish(events)
        for write in writes:
            _settle(write.future, write.result, write.error)

    # -- watch -----------------------------------------------------------------

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[interface.Event]]:
        return self._watch(prefix, after_revision)

    def watch_into(
        self, prefix: str, *, after_revision: int, deliver: interface.Deliver, end: interface.End
    ) -> Callable[[], None]:
        """``interface.WatchInto``: a batch reaches ``deliver`` in the callback that
        publishes its commit; a watch from an older revision first replays history
        (through a task)."""
        if self._closed or after_revision >= self._published_revision:
            sink = sinks.Sink(prefix, after_revision, deliver, end, self._unsubscribe)
            if self._closed:
                sink.end()
            else:
                self._subscribers.add(sink)
            return sink.stop
        return sinks.drain(self._watch(prefix, after_revision), deliver, end)

    def _unsubscribe(self, sub: _Subscriber | sinks.Sink) -> None:
        self._subscribers.discard(sub)

    async def _watch(
        self, prefix: str, after_revision: int
    ) -> AsyncIterator[list[interface.Event]]:
        if self._closed:
            return
        sub = _Subscriber(prefix, self._watch_queue_size)
        # Subscribe before reading history: whatever is published from now on
        # is queued, and whatever was published before is in the table.
        self._subscribers.add(sub)
        last = after_revision
        behind = after_revision < self._published_revision
        try:
            while not sub.closed:
                if behind or sub.overflowed:
                    sub.resync()
                    behind = False
                    async for page in self._history(prefix, last):
                        last = page[-1].revision
                        yield page
                        if sub.closed:
                            return
                    continue
                batch = [e for e in sub.take() if e.revision > last]
                if batch:
                    last = batch[-1].revision
                    yield batch
                elif not sub.overflowed and not sub.closed:
                    await sub.wakeup.wait()
        finally:
            self._subscribers.discard(sub)

    async def _history(self, prefix: str, after: int) -> AsyncIterator[list[interface.Event]]:
        while True:
            page: list[interface.Event] = await self._read(_history, prefix, after)
            if page:
                after = page[-1].revision
                yield page
            if len(page) < _HISTORY_PAGE:
                return

    # -- compaction ------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget history up to ``revision``; a revision already compacted is a no-op."""
        current = self._published_revision
        if revision > current:
            raise interface.FutureRevisionError(revision, current)
        if revision <= self._compacted_revision:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put(_Job(_Compaction(self, revision).step, future))
        await future

    def _set_compacted(self, revision: int) -> None:
        self._compacted_revision = max(self._compacted_revision, revision)


class _Compaction:
    """Deletes superseded rows up to ``target`` a chunk at a time, then reclaims space."""

    def __init__(self, backend: SqliteBackend, target: int) -> None:
        self._backend = backend
        self._target = target
        self._lo = 0
        self._recorded = False

    def step(self, conn: sqlite3.Connection) -> bool:
        conn.execute("BEGIN IMMEDIATE")
        if not self._recorded:
            # Recorded first, so no reader sees a partly compacted revision as readable.
            conn.execute(_SET_COMPACTED, (self._target,))
        (hi,) = conn.execute(
            _COMPACT_CHUNK_END, (self._lo, self._target, _COMPACT_CHUNK)
        ).fetchone()
        if hi is not None:
            conn.execute(_COMPACT_DELETE, {"lo": self._lo, "hi": hi, "target": self._target})
        conn.execute("COMMIT")
        if not self._recorded:
            self._recorded = True
            self._backend._call_soon(self._backend._set_compacted, self._target)
        if hi is not None:
            self._lo = hi
            return False
        # execute() steps a statement only once, and each step of this pragma
        # frees one page; executescript() steps it to completion.
        conn.executescript("PRAGMA incremental_vacuum")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return True


class DatabaseInUseError(interface.StorageError, OSError):
    """Another process has this database open (two servers on one data dir)."""


def _lock_database(path: str) -> IO[str] | None:
    """Hold an exclusive lock beside the database for as long as the backend is open.

    Only one process may write an SQLite database through this backend (its
    watch fan-out lives in that process), as etcd locks its data directory;
    the kernel drops the lock when the process dies, even by kill -9.
    """
    if path == ":memory:":
        return None
    lock = open(f"{path}.lock", "a+")  # held open: the lock lives as long as the file
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise DatabaseInUseError(
            f"database {path} is in use by another process (pid {holder})"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the write still happened
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# -- writer-side statements (run inside the batch transaction) -------------------


def _apply(conn: sqlite3.Connection, write: _Write, revision: int) -> interface.Event:
    """Check and append one write at ``revision``; raises the caller's error."""
    row = conn.execute(_NEWEST, (write.key, revision)).fetchone()
    live = row is not None and not row[1]
    if write.op == "create":
        if live:
            raise interface.KeyExistsError(write.key)
        conn.execute(
            _INSERT, (revision, write.key, 0, revision, row[0] if row else 0, write.value, None)
        )
        kv = interface.KeyValue(write.key, write.value, revision, revision)
        write.result = revision
        return interface.Event("PUT", kv, None)
    if not live:
        raise interface.KeyNotFoundError(write.key)
    prev_id, _, create_revision, prev_value = row
    prev = interface.KeyValue(write.key, prev_value, create_revision, prev_id)
    if write.expected_revision and write.expected_revision != prev_id:
        raise interface.RevisionConflictError(write.key, prev)
    deleted = write.op == "delete"
    conn.execute(
        _INSERT,
        (revision, write.key, int(deleted), create_revision, prev_id, write.value, prev_value),
    )
    kv = interface.KeyValue(write.key, write.value, create_revision, revision)
    write.result = (revision, prev) if deleted else revision
    return interface.Event("DELETE" if deleted else "PUT", kv, prev)


# -- reader-side statements (run inside a read snapshot) -------------------------


def _revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    current, compacted = conn.execute(_REVISIONS).fetchone()
    return current or 0, compacted or 0


def _resolve(conn: sqlite3.Connection, revision: int) -> int:
    """The revision to read at, or the error etcd gives for it."""
    current, compacted = _revisions(conn)
    if revision == 0:
        return current
    if revision > current:
        raise interface.FutureRevisionError(revision, current)
    if revision < compacted:
        raise interface.CompactedError(revision, compacted)
    return revision


def _prefix_end(prefix: str) -> str | bytes:
    """The smallest string greater than every string starting with ``prefix``."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return _NO_UPPER_BOUND
    nxt = ord(stem[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored; skip past them
        nxt = 0xE000
    return stem[:-1] + chr(nxt)


def _get(
    conn: sqlite3.Connection, key: str, revision: int
) -> tuple[int, interface.KeyValue | None]:
    at = _resolve(conn, revision)
    row = conn.execute(_NEWEST, (key, at)).fetchone()
    if row is None or row[1]:
        return at, None
    return at, interface.KeyValue(key, row[3], row[2], row[0])


def _get_now(conn: sqlite3.Connection, key: str) -> tuple[int, interface.KeyValue | None] | None:
    """``_get`` at the current revision in one statement; None if the key has no history."""
    row = conn.execute(_NEWEST_NOW, (key,)).fetchone()
    if row is None:
        return None
    current, mod_revision, deleted, create_revision, value = row
    if deleted:
        return current, None
    return current, interface.KeyValue(key, value, create_revision, mod_revision)


def _range(
    conn: sqlite3.Connection, prefix: str, start_after: str, limit: int, revision: int
) -> interface.RangeResult:
    at = _resolve(conn, revision)
    after = bool(start_after) and start_after >= prefix
    params = {"lo": start_after if after else prefix, "hi": _prefix_end(prefix), "rev": at}
    sql = "SELECT l.key, l.value, l.create_revision, l.id " + _LIVE_AT.format(
        lower=">" if after else ">="
    )
    sql += " ORDER BY l.key"
    if limit > 0:
        sql += f" LIMIT {limit + 1}"
    kvs = [interface.KeyValue(*row) for row in conn.execute(sql, params)]
    more = limit > 0 and len(kvs) > limit
    del kvs[limit if more else len(kvs) :]
    total = _count_at(conn, prefix, at)
    return interface.RangeResult(kvs=kvs, revision=at, more=more, count=total)


def _count_at(conn: sqlite3.Connection, prefix: str, at: int) -> int:
    sql = "SELECT COUNT(*) " + _LIVE_AT.format(lower=">=")
    (total,) = conn.execute(sql, {"lo": prefix, "hi": _prefix_end(prefix), "rev": at}).fetchone()
    return int(total)


def _count(conn: sqlite3.Connection, prefix: str) -> tuple[int, int]:
    at = _resolve(conn, 0)
    return at, _count_at(conn, prefix, at)


def _history(conn: sqlite3.Connection, prefix: str, after: int) -> list[interface.Event]:
    _, compacted = _revisions(conn)
    if after < compacted:
        raise interface.CompactedError(after, compacted)
    params = {"after": after, "lo": prefix, "hi": _prefix_end(prefix), "limit": _HISTORY_PAGE}
    return [_event(*row) for row in conn.execute(_HISTORY, params)]


def _event(
    rev: int,
    key: str,
    deleted: int,
    create_rev: int,
    prev_rev: int,
    value: bytes,
    prev: bytes | None,
) -> interface.Event:
    kv = interface.KeyValue(key, value, create_rev, rev)
    if prev is None:
        return interface.Event("PUT", kv, None)
    prev_kv = interface.KeyValue(key, prev, create_rev, prev_rev)
    return interface.Event("DELETE" if deleted else "PUT", kv, prev_kv)
