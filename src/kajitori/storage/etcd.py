"""The storage ``Backend`` on a real etcd v3 cluster, spoken to over gRPC.

Owns: turning each ``Backend`` call into one etcd request (or one
transaction), and etcd's answers and errors back into ``interface`` types.
The request shapes follow upstream's ``storage/etcd3/store.go``:

* create = ``If(create_revision(key) == 0) Then(put)``;
* update / delete = ``If(mod_revision(key) == expected) Then(put | delete)
  Else(get)``, so a conflict carries the current value and the caller can
  retry without another read (``expected == 0`` guards on existence only);
* get of the newest value = one ``Range``; gets issued while another batch
  of gets is being read (or in the same event loop turn) are sent together
  as one read-only ``Txn`` of ranges (one gRPC call instead of one each;
  etcd answers them at one revision, linearizably);
* range = one ``Range`` from ``start_after + "\\0"`` to the end of the prefix,
  at a revision, with a limit;
* watch = a gRPC ``Watch`` stream, ``start_revision = after_revision + 1``
  with ``prev_kv``, opened as a server stream: the one create request, then
  the client half-closes (etcd keeps a watch stream open until it is
  cancelled; it only stops reading requests). A thread reads it on a blocking
  channel whose server streams are read by the calling thread itself
  (``SingleThreadedUnaryStream``: no spin thread, one GIL hand-over per
  response instead of three) and hands what arrived to the event loop in one
  callback, scheduled only when none is pending (``_StreamReader``). Read on
  the loop, a stream got one response per loop turn, so under load (one
  response per write) it fell seconds behind etcd. The callback decodes the
  events once and hands them to each local watcher of the prefix at once
  (``_Feed``), with no task between the stream and the watchers. A watcher
  joins a running stream when it has delivered nothing after the watcher's
  revision yet (so nothing is missed); otherwise, or when a watcher falls
  ``_FEED_BACKLOG`` batches behind, it gets a stream of its own from where it
  is. ``watch_into`` is the same watch for a consumer that takes each batch
  in that callback (the watch cache), a loop turn sooner than a task could.

Several API servers (and several kajitori clusters, via ``prefix``) may share
one etcd, so nothing here caches data or assumes it is the only writer:
revisions come from etcd's response headers, and a revision may skip numbers
that other writers (or other prefixes) used. ``compact`` compacts the whole
etcd, not just this prefix, because etcd's history is global.

Client: the gRPC stubs generated from etcd's protos that ship in ``aetcd``
(``aetcd.rpc``), driven directly with ``grpc.aio``; aetcd's own ``Client``
lacks range revision/limit/count and a per-call watch. See
docs/decisions/0004-etcd-client.md.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
import grpc.experimental
from aetcd import rpc

from kajitori.storage import interface, sinks

# etcd answers large lists in one message; upstream lifts gRPC's 4 MiB cap too.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.enable_http_proxy", 0),
]
# Watch streams are read by the thread that iterates them (no channel spin thread).
_WATCH_CHANNEL_OPTIONS = [
    *_CHANNEL_OPTIONS,
    (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
]
_WATCH_METHOD = "/etcdserverpb.Watch/Watch"
# Batches a watcher sharing a stream may fall behind before it moves to a
# stream of its own (so one slow watcher neither holds up the others nor
# makes the shared stream buffer without bound).
_FEED_BACKLOG = 1024
_ENDED = object()  # a stream's end, as its watchers' inboxes carry it
_BEHIND = object()  # "fell behind: go on alone", as a watcher's inbox carries it
_MAX_TXN_OPS = 128
# Batches of gets read at once; the next batch waits for one of them to come back.
_GET_READS = 1
_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end).

    ``b"\\0"`` (etcd's "to the end of the keyspace") when no such key exists.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\0"
    return stripped[:-1] + bytes([stripped[-1] + 1])


class EtcdBackend:
    """An ``interface.Backend`` storing ``prefix + key`` in the etcd at ``endpoint``.

    ``endpoint`` is ``host:port`` of etcd's client URL (plain-text gRPC).
    ``prefix`` is prepended to every key written and stripped from every key
    returned, so clusters or tests sharing one etcd do not see each other.
    """

    def __init__(self, endpoint: str, *, prefix: str = "") -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self._prefix = prefix.encode()
        self._channel: grpc.aio.Channel | None = None
        self._kv: Any = None
        self._sync_channel: grpc.Channel | None = None
        self._open_watch: Any = None
        # Open watch streams; those shared by a prefix's watchers, by full prefix.
        self._watch_calls: set[_Feed] = set()
        self._hubs: dict[bytes, _Feed] = {}
        # Newest-value gets waiting for the next batch, by full key; whether that
        # batch is scheduled; how many batches are being read.
        self._gets: dict[bytes, list[asyncio.Future[tuple[int, Any]]]] = {}
        self._gets_scheduled = False
        self._get_reads = 0
        self._closed = False
        # Compaction only moves forward: the oldest readable revision seen so
        # far bounds the search in compacted_revision().
        self._oldest_readable = 1

    async def start(self) -> None:
        """Open the gRPC channel and check that etcd answers."""
        self._channel = grpc.aio.insecure_channel(self.endpoint, options=_CHANNEL_OPTIONS)
        self._kv = rpc.KVStub(self._channel)
        # Watch streams are read by threads on a blocking channel (see _StreamReader).
        self._sync_channel = grpc.insecure_channel(self.endpoint, options=_WATCH_CHANNEL_OPTIONS)
        self._open_watch = self._sync_channel.unary_stream(
            _WATCH_METHOD,
            request_serializer=rpc.WatchRequest.SerializeToString,
            response_deserializer=rpc.WatchResponse.FromString,
        )
        await self.current_revision()

    async def close(self) -> None:
        """End pending watches (they stop iterating) and close the channel."""
        self._closed = True
        for feed in list(self._watch_calls):
            feed.close()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if self._sync_channel is not None:
            self._sync_channel.close()
            self._sync_channel = None

    # -- reads ---------------------------------------------------------------

    async def current_revision(self) -> int:
        """etcd's newest revision, across all prefixes (a new etcd starts at 1)."""
        response = await self._range(rpc.RangeRequest(key=self._prefix or b"\0", count_only=True))
        revision: int = response.header.revision
        return revision

    async def compacted_revision(self) -> int:
        """The revision etcd was last compacted at (0 if never).

        etcd does not report it directly, so this searches for the oldest
        readable revision: reads below the compaction revision fail. Usually
        one request, at most log2(revisions since the last known compaction).
        """
        if await self._readable(self._oldest_readable):
            return self._oldest_readable if self._oldest_readable > 1 else 0
        low, high = self._oldest_readable + 1, await self.current_revision()
        while low < high:
            middle = (low + high) // 2
            if await self._readable(middle):
                high = middle
            else:
                low = middle + 1
        self._oldest_readable = low
        return low

    async def get(self, key: str, *, revision: int = 0) -> tuple[int, interface.KeyValue | None]:
        """Read ``key`` at ``revision`` (0: newest) with a linearizable read."""
        if revision == 0:
            read_at, found = await self._batched_get(self._key(key))
            return read_at, self._kv_from(found) if found is not None else None
        response = await self._range(
            rpc.RangeRequest(key=self._key(key), revision=revision), revision=revision
        )
        read_at = revision or response.header.revision
        return read_at, self._kv_from(response.kvs[0]) if response.kvs else None

    def _batched_get(self, full: bytes) -> asyncio.Future[tuple[int, Any]]:
        """(revision, etcd kv or None) of ``full``, read with the other gets of its batch.

        A batch is sent at the end of the loop turn, unless one is being read:
        then the gets wait for it to come back and go together (group commit
        for reads). Under load a batch holds every get that arrived during one
        round trip, so each get costs a fraction of a gRPC call; alone, a get is
        sent at once. Each is still sent after it was issued, so it sees every
        write acknowledged before (a linearizable read).
        """
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._gets.setdefault(full, []).append(future)
        self._schedule_gets()
        return future

    def _schedule_gets(self) -> None:
        if self._gets and not self._gets_scheduled and self._get_reads < _GET_READS:
            self._gets_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_gets)

    def _send_gets(self) -> None:
        self._gets_scheduled = False
        gets, self._gets = self._gets, {}
        keys = list(gets)
        # etcd refuses a Txn of more than --max-txn-ops (default 128) operations.
        for i in range(0, len(keys), _MAX_TXN_OPS):
            chunk = {key: gets[key] for key in keys[i : i + _MAX_TXN_OPS]}
            self._get_reads += 1
            task = asyncio.ensure_future(self._read_gets(chunk))
            task.add_done_callback(self._gets_read)

    def _gets_read(self, task: asyncio.Task[None]) -> None:
        _retrieve(task)
        self._get_reads -= 1
        self._schedule_gets()

    async def _read_gets(self, gets: dict[bytes, list[asyncio.Future[tuple[int, Any]]]]) -> None:
        keys = list(gets)
        try:
            if len(keys) == 1:
                response = await self._range(rpc.RangeRequest(key=keys[0]))
                found = [response.kvs[0] if response.kvs else None]
            else:
                ops = [rpc.RequestOp(request_range=rpc.RangeRequest(key=k)) for k in keys]
                response = await self._txn(rpc.TxnRequest(success=ops))
                found = [
                    r.response_range.kvs[0] if r.response_range.kvs else None
                    for r in response.responses
                ]
        except BaseException as exc:
            for waiters in gets.values():
                for future in waiters:
                    if future.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            raise
        revision = response.header.revision
        for key, kv in zip(keys, found, strict=True):
            for future in gets[key]:
                if not future.done():
                    future.set_result((revision, kv))

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> interface.RangeResult:
        """One page of keys under ``prefix``; ``count`` covers the whole prefix."""
        first, end = self._key(prefix), _prefix_end(self._key(prefix))
        start = max(first, self._key(start_after) + b"\0") if start_after else first
        response = await self._range(
            rpc.RangeRequest(key=start or b"\0", range_end=end, limit=limit, revision=revision),
            revision=revision,
        )
        read_at = revision or response.header.revision
        count = response.count
        if start_after:
            # etcd counts only the range asked for; the total needs the whole
            # prefix, read at the same revision so the numbers agree.
            whole = rpc.RangeRequest(key=first or b"\0", range_end=end, count_only=True)
            whole.revision = read_at
            count = (await self._range(whole, revision=read_at)).count
        return interface.RangeResult(
            kvs=[self._kv_from(kv) for kv in response.kvs],
            revision=read_at,
            more=response.more,
            count=count,
        )

    async def count(self, prefix: str) -> tuple[int, int]:
        """(newest revision, live keys under ``prefix``) from one count-only range."""
        first = self._key(prefix)
        response = await self._range(
            rpc.RangeRequest(key=first or b"\0", range_end=_prefix_end(first), count_only=True)
        )
        return response.header.revision, response.count

    # -- writes --------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        """Put ``key`` only if it has no live incarnation; returns the new revision."""
        full = self._key(key)
        response = await self._txn(
            rpc.TxnRequest(
                compare=[_compare(full, rpc.Compare.CREATE, rpc.Compare.EQUAL, 0)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=full, value=value))],
            )
        )
        if not response.succeeded:
            raise interface.KeyExistsError(key)
        revision: int = response.header.revision
        return revision

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        """Put ``key`` if its mod_revision is ``expected_revision`` (0: if it exists)."""
        full = self._key(key)
        response = await self._guarded(
            key, expected_revision, rpc.RequestOp(request_put=rpc.PutRequest(key=full, value=value))
        )
        revision: int = response.header.revision
        return revision

    async def delete(
        self, key: str, *, expected_revision: int = 0
    ) -> tuple[int, interface.KeyValue]:
        """Delete ``key``, guarded like ``update``; returns (revision, value deleted)."""
        full = self._key(key)
        op = rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=full, prev_kv=True))
        response = await self._guarded(key, expected_revision, op)
        deleted = response.responses[0].response_delete_range.prev_kvs[0]
        return response.header.revision, self._kv_from(deleted)

    async def compact(self, revision: int) -> None:
        """Compact etcd's whole history before ``revision`` (idempotent).

        ``physical`` waits until etcd has also freed the space, so a read
        issued after this returns sees the compaction.
        """
        try:
            await self._kv.Compact(rpc.CompactionRequest(revision=revision, physical=True))
        except grpc.aio.AioRpcError as error:
            if _COMPACTED in (error.details() or ""):
                return  # already compacted at or past this revision
            await self._raise_translated(error, revision)
        self._oldest_readable = max(self._oldest_readable, revision)

    # -- watch ---------------------------------------------------------------

    async def watch(
        self, prefix: str, *, after_revision: int
    ) -> AsyncIterator[list[interface.Event]]:
        """Stream etcd's watch responses under ``prefix`` as event batches.

        Shares the prefix's stream with other local watchers when it can (see
        the module docstring), else opens one of its own.
        """
        feed = self._feed_for(prefix, after_revision)
        last = after_revision
        while True:
            inbox = feed.join(last)
            try:
                while True:
                    item = await inbox.get()
                    if item is _ENDED:
                        return
                    if item is _BEHIND:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    last = item[-1].revision
                    yield item
            finally:
                feed.leave(inbox)
            # Fell behind the shared stream: go on alone from the last batch given.
            feed = _Feed(self, prefix, last)

    def watch_into(
        self, prefix: str, *, after_revision: int, deliver: interface.Deliver, end: interface.End
    ) -> Callable[[], None]:
        """``interface.WatchInto``: a batch reaches ``deliver`` in the callback that
        took it from the stream; the same stream sharing as ``watch``."""
        feed = self._feed_for(prefix, after_revision)
        sink = _Sink(prefix, after_revision, deliver, end, feed.leave)
        feed.attach(sink, after_revision)
        return sink.stop

    def _feed_for(self, prefix: str, after_revision: int) -> _Feed:
        """The prefix's shared stream, or a stream of its own for a watcher it cannot serve."""
        first = self._key(prefix)
        feed = self._hubs.get(first)
        if feed is None or feed.failed:
            feed = self._hubs[first] = _Feed(self, prefix, after_revision)
        elif after_revision < feed.delivered:
            # It has already passed this revision: replay from etcd alone.
            feed = _Feed(self, prefix, after_revision)
        return feed

    def _forget_hub(self, feed: _Feed) -> None:
        key = self._key(feed.prefix)
        if self._hubs.get(key) is feed:
            del self._hubs[key]

    # -- helpers -------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    def _kv_from(self, kv: Any) -> interface.KeyValue:
        return interface.KeyValue(
            key=kv.key[len(self._prefix) :].decode(),
            value=kv.value,
            create_revision=kv.create_revision,
            mod_revision=kv.mod_revision,
        )

    def _event_from(self, event: Any) -> interface.Event:
        prev = self._kv_from(event.prev_kv) if event.HasField("prev_kv") else None
        kv = self._kv_from(event.kv)
        if event.type == rpc.Event.DELETE:
            # etcd reports a delete with create_revision 0; keep the deleted
            # incarnation's, as the other backends do.
            kv = interface.KeyValue(
                key=kv.key,
                value=b"",
                create_revision=prev.create_revision if prev else 0,
                mod_revision=kv.mod_revision,
            )
            return interface.Event(type="DELETE", kv=kv, prev_kv=prev)
        return interface.Event(type="PUT", kv=kv, prev_kv=prev)

    async def _guarded(self, key: str, expected_revision: int, op: Any) -> Any:
        """Run ``op`` if ``key``'s mod_revision matches (or, for 0, the key exists)."""
        full = self._key(key)
        if expected_revision:
            guard = _compare(full, rpc.Compare.MOD, rpc.Compare.EQUAL, expected_revision)
        else:
            guard = _compare(full, rpc.Compare.CREATE, rpc.Compare.GREATER, 0)
        response = await self._txn(
            rpc.TxnRequest(
                compare=[guard],
                success=[op],
                failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=full))],
            )
        )
        if response.succeeded:
            return response
        current = response.responses[0].response_range.kvs
        if not current:
            raise interface.KeyNotFoundError(key)
        raise interface.RevisionConflictError(key, self._kv_from(current[0]))

    async def _range(self, request: Any, *, revision: int = 0) -> Any:
        try:
            return await self._kv.Range(request)
        except grpc.aio.AioRpcError as error:
            await self._raise_translated(error, revision)

    async def _txn(self, request: Any) -> Any:
        try:
            return await self._kv.Txn(request)
        except grpc.aio.AioRpcError as error:
            await self._raise_translated(error, 0)

    async def _readable(self, revision: int) -> bool:
        request = rpc.RangeRequest(key=b"\0", count_only=True, revision=revision)
        try:
            await self._kv.Range(request)
        except grpc.aio.AioRpcError as error:
            if _COMPACTED in (error.details() or ""):
                return False
            await self._raise_translated(error, revision)
        return True

    async def _raise_translated(self, error: grpc.aio.AioRpcError, revision: int) -> NoReturn:
        """Raise the ``interface`` error for an etcd gRPC error about ``revision``."""
        details = error.details() or ""
        if _COMPACTED in details:
            raise interface.CompactedError(revision, await self.compacted_revision()) from error
        if _FUTURE in details:
            raise interface.FutureRevisionError(revision, await self.current_revision()) from error
        raise interface.StorageError(
            f"etcd {self.endpoint}: {error.code().name}: {details}"
        ) from error


def _compare(key: bytes, target: int, result: int, revision: int) -> Any:
    compare = rpc.Compare(key=key, target=target, result=result)
    if target == rpc.Compare.CREATE:
        compare.create_revision = revision
    else:
        compare.mod_revision = revision
    return compare


def _retrieve(task: asyncio.Task[None]) -> None:
    """Errors of a batched read reach its callers; the task's own copy is dropped."""
    if not task.cancelled():
        task.exception()


class _Sink(sinks.Sink):
    """A ``watch_into`` consumer as a feed's watcher: it never falls behind (nothing queues),
    so it never leaves for a stream of its own."""

    __slots__ = ()

    def __len__(self) -> int:
        return 0

    def put(self, item: Any) -> None:
        if isinstance(item, list):
            self.offer(item)
        elif item is _ENDED:
            self.end()
        elif isinstance(item, BaseException):
            self.end(item)


class _Inbox:
    """One local watcher's queue of batches (or its end), filled by its feed's callback."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class _Feed:
    """One etcd watch stream of a prefix and the local watchers it feeds.

    ``delivered`` is the revision up to which batches have been handed out:
    a watcher from revision R may join while ``R >= delivered``, since every
    event after R is then still to come. Each watcher gets the part of each
    batch after its own revision. The stream stops when the last watcher
    leaves; an error ends every watcher with it. A feed shared by the
    prefix's watchers is the backend's hub for it; one opened for a single
    watcher (from an older revision, or after it fell behind) is not.
    """

    def __init__(self, backend: EtcdBackend, prefix: str, after_revision: int) -> None:
        self.backend = backend
        self.prefix = prefix
        self.after = after_revision
        self.delivered = after_revision
        self.failed = False
        self._watchers: dict[_Inbox | _Sink, int] = {}
        first = backend._key(prefix)
        create = rpc.WatchCreateRequest(
            key=first or b"\0",
            range_end=_prefix_end(first),
            start_revision=after_revision + 1,
            prev_kv=True,
        )
        assert backend._open_watch is not None, "start() first"
        self._reader = _StreamReader(
            backend._open_watch, rpc.WatchRequest(create_request=create), self._receive
        )
        backend._watch_calls.add(self)

    def join(self, after_revision: int) -> _Inbox:
        inbox = _Inbox()
        self._watchers[inbox] = after_revision
        return inbox

    def attach(self, sink: _Sink, after_revision: int) -> None:
        self._watchers[sink] = after_revision

    def leave(self, watcher: _Inbox | _Sink) -> None:
        self._watchers.pop(watcher, None)
        if not self._watchers:
            self._stop()

    def _receive(self, responses: list[Any], end: object) -> None:
        """The loop's side of the stream: responses in order, then perhaps its end."""
        if self.failed:
            return
        events: list[interface.Event] = []
        failure: BaseException | None = None
        for response in responses:
            if response.compact_revision:
                failure = interface.CompactedError(self.after, response.compact_revision)
                break
            if response.canceled:
                failure = interface.StorageError(
                    f"etcd canceled the watch: {response.cancel_reason}"
                )
                break
            if response.events:
                events.extend(map(self.backend._event_from, response.events))
        if events:
            self._deliver(events)
        if failure is None and end is not _NOT_ENDED:
            failure = self._ending(end)
        if failure is not None:
            self._finish(failure)

    def _deliver(self, batch: list[interface.Event]) -> None:
        self.delivered = batch[-1].revision
        first = batch[0].revision
        for inbox, after in list(self._watchers.items()):
            if len(inbox) >= _FEED_BACKLOG:
                self._watchers.pop(inbox)
                inbox.put(_BEHIND)
                continue
            mine = batch if first > after else [e for e in batch if e.revision > after]
            if mine:
                inbox.put(mine)

    def _ending(self, end: Any) -> BaseException | None:
        """What the stream's end means for its watchers: None for a clean end."""
        backend = self.backend
        if isinstance(end, grpc.RpcError):
            if backend._closed and end.code() == grpc.StatusCode.CANCELLED:
                return None
            return interface.StorageError(
                f"etcd {backend.endpoint}: {end.code().name}: {end.details()}"
            )
        if backend._closed:
            return None
        return interface.StorageError("etcd ended the watch stream")

    def _finish(self, failure: BaseException | None) -> None:
        """End every watcher (cleanly for None, else with ``failure``) and the stream."""
        end: object = _ENDED if failure is None else failure
        watchers = list(self._watchers)
        self._watchers.clear()
        self._stop()
        for inbox in watchers:
            inbox.put(end)

    def close(self) -> None:
        """The backend is closing: end every watcher cleanly."""
        self._finish(None)

    def _stop(self) -> None:
        if not self.failed:
            self.failed = True  # no longer joinable
            self.backend._forget_hub(self)
        self.backend._watch_calls.discard(self)
        self._reader.cancel()


_NOT_ENDED = object()  # a hand-over whose stream goes on


class _StreamReader:
    """One etcd watch stream read by a thread; the loop takes what arrived, in order.

    The thread blocks on the stream and appends each response to a deque; a
    callback on the loop (scheduled only when none is pending, so a burst
    costs one wake-up) passes every response received so far to
    ``receive(responses, end)``. ``end`` is ``_NOT_ENDED`` while the stream
    goes on, then the stream's ``grpc.RpcError`` or None (etcd ended it).
    ``cancel()`` ends the stream and the thread.
    """

    def __init__(self, open_stream: Any, create: Any, receive: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._receive = receive
        self._received: collections.deque[Any] = collections.deque()
        self._scheduled = False
        self._cancelled = False
        self._call = open_stream(create)
        threading.Thread(target=self._read, name="kajitori-etcd-watch", daemon=True).start()

    def _read(self) -> None:
        end: BaseException | None = None
        try:
            for response in self._call:
                self._received.append(response)
                self._wake()
        except grpc.RpcError as error:
            end = error
        self._received.append(_StreamEnd(end))
        self._wake()

    def _wake(self) -> None:
        # Only this thread sets the flag and only the loop clears it (before
        # it drains the deque), so every response is taken by some callback.
        if self._scheduled:
            return
        self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._take)
        except RuntimeError:  # the loop has closed: nobody is waiting
            self._call.cancel()

    def _take(self) -> None:
        self._scheduled = False
        received = self._received
        responses: list[Any] = []
        end: Any = _NOT_ENDED
        while received:
            item = received.popleft()
            if isinstance(item, _StreamEnd):
                end = item.error
                break
            responses.append(item)
        if (responses or end is not _NOT_ENDED) and not self._cancelled:
            self._receive(responses, end)

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()


class _StreamEnd:
    """A reader thread's last hand-over: the stream's error, or None."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
