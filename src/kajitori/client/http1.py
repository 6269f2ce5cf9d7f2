"""A lean HTTP/1.1 client over asyncio, the HTTPS path of ``rest.Client`` (decision 0050).

A component in a process of its own (``kajitori controller-manager``,
``scheduler``, ``kubelet --nodes N``) reaches the API server over HTTPS, and
through httpx + httpcore + anyio that path was 60-70% of its CPU: URL and
header objects, pool bookkeeping and a Python TLS stream per request. The
API server is ours and speaks plain HTTP/1.1 with Content-Length or chunked
bodies, so this module does only what ``rest.Client`` needs:

* ``Pool`` keeps one server's idle keep-alive connections (most recently
  used first, each closed after ``keepalive_expiry`` idle);
* each ``_Connection`` is an ``asyncio.Protocol`` on asyncio's TLS transport
  that feeds ``httptools``' response parser (llhttp, the parser our server
  uses) from ``data_received``: no streams, no per-request objects beyond
  one ``_Exchange``;
* ``Pool.request`` gathers a whole answer; ``Pool.stream`` hands a watch's
  body over as it arrives (reading pauses while the consumer lags).

Semantics kept from httpx: a read timeout between bytes for plain requests
and none for streams, a connect timeout, the CA/hostname checks and client
certificate of the caller's ``ssl.SSLContext``, and httpx's exception types
(``httpx.ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...), which
the informers and the event recorder catch. A request that finds its reused
keep-alive connection closed by the server is sent again on a fresh one by
Go net/http's rule (``Pool.request``). Callers that need httpx itself
(``client.http``: ``/metrics``, tests) keep an ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import urllib.parse
from collections.abc import Sequence

import httptools
import httpx

Headers = Sequence[tuple[bytes, bytes]]

# Go's Request.isReplayable: a request with these methods (and no body) may be
# sent again after it was written; any request may if nothing was written.
REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A stream's unread body beyond this pauses reading the socket, so a slow
# consumer pushes back on the server through TCP instead of growing memory.
STREAM_HIGH_WATER = 1 << 20
CLOSE_GRACE = 1.0  # seconds ``aclose`` waits for TLS close_notify exchanges


class Response:
    """A whole answer: status code, reason phrase (as sent), body and Retry-After (if sent)."""

    __slots__ = ("body", "reason", "retry_after", "status")

    def __init__(self, status: int, reason: bytes, body: bytes, retry_after: bytes = b"") -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.retry_after = retry_after


class _Exchange:
    """One request's answer as it arrives on a connection."""

    __slots__ = (
        "chunks",
        "done",
        "error",
        "head",
        "reason",
        "received",
        "retry_after",
        "size",
        "status",
        "streaming",
        "waiter",
        "written",
    )

    def __init__(self, waiter: asyncio.Future[None], streaming: bool) -> None:
        self.waiter: asyncio.Future[None] | None = waiter
        self.streaming = streaming
        self.status = 0
        self.reason = b""
        self.retry_after = b""
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0  # unread body bytes (streams)
        self.head = False  # status line and headers parsed
        self.done = False  # whole message parsed
        self.received = False  # any response byte arrived
        self.written = False
        self.error: BaseException | None = None

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses its answer as bytes arrive."""

    def __init__(self, pool: Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.lost: asyncio.Future[None] = loop.create_future()
        self.reused = False
        self.keep_alive = True
        self.idle_since = 0.0
        self.timeout: float | None = None
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False

    # ----- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.done:
            # Bytes nobody asked for (HTTP/1.1 has no server push): the
            # connection's state is unknown, so it is not used again.
            self.abort()
            return
        exchange.received = True
        if self.timeout is not None:
            self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close; connection_lost reports an unfinished exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pool.forget(self)
        if not self.lost.done():
            self.lost.set_result(None)
        exchange = self.exchange
        if exchange is not None and not exchange.done:
            if not exchange.received:
                error: httpx.TransportError = httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                )
            else:
                error = httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            if exc is not None:
                error.__cause__ = exc
            self.fail(error)

    def pause_writing(self) -> None:  # requests are small: the transport buffers them
        pass

    def resume_writing(self) -> None:
        pass

    # ----- httptools callbacks ----------------------------------------------

    def on_status(self, reason: bytes) -> None:
        assert self.exchange is not None
        self.exchange.reason += reason  # llhttp may hand the phrase over in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        # The one response header the client acts on (the rest.Client's retries).
        if len(name) == 11 and name.lower() == b"retry-after":
            assert self.exchange is not None
            self.exchange.retry_after = value

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.status = self.parser.get_status_code()
        exchange.head = True
        if exchange.streaming:
            exchange.wake()

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.chunks.append(body)
        if exchange.streaming:
            exchange.size += len(body)
            if exchange.size > STREAM_HIGH_WATER and not self.paused and self.transport:
                self.paused = True
                self.transport.pause_reading()
            exchange.wake()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.done = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        exchange.wake()

    # ----- used by the pool -------------------------------------------------

    def send(self, exchange: _Exchange, data: bytes, timeout: float | None) -> bool:
        """Write one request; False (nothing written) if the connection is already closed."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        self.exchange = exchange
        self.timeout = timeout
        if timeout is not None:
            self.last_read = now = self.loop.time()
            self.timer = self.loop.call_at(now + timeout, self._check_timeout)
        exchange.written = True
        transport.write(data)
        return True

    def fail(self, error: BaseException) -> None:
        exchange = self.exchange
        if exchange is None or exchange.error is not None:
            return
        exchange.error = error
        exchange.wake()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _check_timeout(self) -> None:
        # One timer per request, re-armed from the last byte read: a read
        # timeout between bytes (as httpx's), not a deadline for the whole answer.
        self.timer = None
        exchange, timeout = self.exchange, self.timeout
        if exchange is None or exchange.done or timeout is None or self.closed:
            return
        deadline = self.last_read + timeout
        if self.loop.time() < deadline:
            self.timer = self.loop.call_at(deadline, self._check_timeout)
            return
        self.fail(httpx.ReadTimeout(f"no answer for {timeout:g}s"))
        self.abort()


class Stream:
    """A streamed answer (a watch): ``status``, then the body in chunks as they arrive.

    ``close`` must be called: it gives a finished connection back to the pool
    and drops one whose body was not read to the end.
    """

    def __init__(self, pool: Pool, connection: _Connection, exchange: _Exchange) -> None:
        self._pool = pool
        self._connection = connection
        self._exchange = exchange
        self.status = exchange.status
        self.reason = exchange.reason

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> bytes:
        exchange, connection = self._exchange, self._connection
        while True:
            chunks = exchange.chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                exchange.size = 0
                if connection.paused:
                    connection.resume()
                return data
            if exchange.error is not None:
                raise exchange.error
            if exchange.done:
                raise StopAsyncIteration
            waiter = exchange.waiter = connection.loop.create_future()
            await waiter

    async def read(self) -> bytes:
        """The rest of the body (an error answer)."""
        return b"".join([chunk async for chunk in self])

    def close(self) -> None:
        exchange, connection = self._exchange, self._connection
        if exchange.done and exchange.error is None and connection.keep_alive:
            self._pool.release(connection)
        else:
            connection.abort()  # the rest of the body is not wanted: drop the connection


class Pool:
    """Keep-alive HTTP/1.1 connections to one server (``https://host:port[/prefix]``)."""

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None,
        headers: Headers = (),
        *,
        timeout: float = 30.0,
        keepalive_expiry: float = 60.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/").encode("ascii")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port:
            host = f"{host}:{parts.port}"
        self._fixed = b"".join(
            [b"host: ", host.encode("idna"), b"\r\n"]
            + [b"%s: %s\r\n" % (name, value) for name, value in headers]
        )
        self.timeout = timeout
        self.keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.opened = 0  # connections made (for tests and benchmarks)
        self.retried = 0  # requests sent again after a reused connection failed

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def request(
        self, method: str, target: str, headers: Headers, body: bytes | None = None
    ) -> Response:
        """Send one request and gather its whole answer."""
        exchange, connection = await self._exchange(method, target, headers, body, False)
        if connection.keep_alive:
            self.release(connection)
        else:
            connection.close()
        chunks = exchange.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return Response(exchange.status, exchange.reason, data, exchange.retry_after)

    async def stream(self, method: str, target: str, headers: Headers) -> Stream:
        """Send one request (no body, no read timeout) and return once its headers arrived."""
        exchange, connection = await self._exchange(method, target, headers, None, True)
        return Stream(self, connection, exchange)

    async def aclose(self) -> None:
        """Close every connection, streams included."""
        connections, self._all, self._idle = list(self._all), set(), []
        for connection in connections:
            connection.close()
        pending = [connection.lost for connection in connections if not connection.lost.done()]
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_GRACE)
        for connection in connections:
            if not connection.lost.done():
                connection.abort()
        if connections:
            await asyncio.sleep(0)  # let the aborted transports report connection_lost

    # ----- connections ------------------------------------------------------

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose answer was read to the end for the next request."""
        connection.exchange = None
        if connection.closed:
            return
        now = connection.idle_since = connection.loop.time()
        idle = self._idle
        idle.append(connection)
        # The least recently used sit at the bottom: close those idle too long.
        while idle and now - idle[0].idle_since > self.keepalive_expiry:
            idle.pop(0).close()

    def forget(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def _take_idle(self, now: float) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since > self.keepalive_expiry:
                connection.close()
                continue
            connection.reused = True
            return connection
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, loop),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {self.host}:{self.port}") from exc
        except OSError as exc:  # refused, unreachable, and ssl.SSLError (a wrong CA...)
            raise httpx.ConnectError(str(exc)) from exc
        self.opened += 1
        self._all.add(connection)
        return connection

    async def _exchange(
        self, method: str, target: str, headers: Headers, body: bytes | None, streaming: bool
    ) -> tuple[_Exchange, _Connection]:
        """Send the request; return once its whole answer (or a stream's headers) arrived.

        A failure on a reused connection before any byte of the answer means
        the server closed it while idle (its keep-alive timeout, a restart):
        as Go's net/http, send again on another connection if nothing was
        written, or if the request is replayable (GET, HEAD, OPTIONS, TRACE
        without a body). A fresh connection's failure is the caller's.
        """
        data = self._head(method, target, headers, body)
        loop = asyncio.get_running_loop()
        replayable = method in REPLAYABLE and not body
        timeout = None if streaming else self.timeout
        while True:
            connection = self._take_idle(loop.time()) or await self._connect(loop)
            exchange = _Exchange(loop.create_future(), streaming)
            if not connection.send(exchange, data, timeout):
                if connection.reused:
                    continue  # nothing written: any request may go on another connection
                raise httpx.ConnectError("connection closed as soon as it was made")
            try:
                await exchange.waiter  # type: ignore[misc]
            except BaseException:
                connection.abort()
                raise
            if exchange.error is None:
                return exchange, connection
            if connection.reused and not exchange.received and replayable:
                self.retried += 1
                continue
            raise exchange.error

    def _head(self, method: str, target: str, headers: Headers, body: bytes | None) -> bytes:
        lines = [
            b"%s %s%s HTTP/1.1\r\n" % (method.encode("ascii"), self.prefix, target.encode("ascii")),
            self._fixed,
        ]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        if body is not None:
            lines.append(b"content-length: %d\r\n\r\n" % len(body))
            lines.append(body)
        else:
            lines.append(b"content-length: 0\r\n\r\n" if method in _BODY_METHODS else b"\r\n")
        return b"".join(lines)


class PooledAsyncClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` (for ``client.http``'s rare callers) carrying the ``Pool``
    that ``rest.Client``'s verbs use; closing it closes both.

    ``rest.Client(client.http)`` (the kubelet's field-selected client) thus
    finds the same pool.
    """

    def __init__(self, pool: Pool, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pool = pool

    async def aclose(self) -> None:
        await self.pool.aclose()
        await super().aclose()
