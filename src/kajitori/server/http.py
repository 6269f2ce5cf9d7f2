"""The HTTPS server kajitori's API server runs on: HTTP/1.1 and WebSocket for any ASGI 3 app.

Owns the wire: TLS (with optional client certificates), HTTP/1.1 framing via
``httptools`` (the llhttp C parser), keep-alive and pipelining, request-body
limits, streamed responses, WebSocket upgrades via ``wsproto``, flow control
and graceful shutdown. It knows nothing of Kubernetes beyond the one Status
body it writes itself (413, 400, 500 when the app cannot).

Why our own server rather than uvicorn: the API server authenticates clients by
their verified x509 certificate, and uvicorn does not hand the peer certificate
to the app. This server puts it in ``scope["extensions"]["tls"]`` (shape from
the ASGI TLS extension) when the client presented one; see
docs/decisions/0001-http-stack.md for the benchmark and the alternatives.

Shape, per connection (one ``_HttpProtocol``):

* The parser runs inside ``data_received``; each request's headers create a
  ``_HttpCycle`` (or a ``_WebSocketSession`` for ``Upgrade: websocket``).
  One cycle runs the app at a time; requests pipelined behind it wait in a
  queue with reading paused, so a client cannot make us buffer without bound.
* Request bodies reach the app through ``receive()``. Reading pauses when more
  than ``_READ_HIGH_WATER`` bytes wait unread, and a body past
  ``max_body_bytes`` ends in a 413 (upstream's exact Status) and a closed
  connection after the rest of the body is drained, so the client reads the
  answer rather than a reset.
* Responses without Content-Length use chunked encoding, one chunk per
  ``http.response.body`` written straight to the transport (watch events are
  never held back); ``send()`` waits while the transport has paused writing,
  so a slow watcher costs one socket buffer, not unbounded memory.
* When the peer goes away, a pending ``receive()`` returns ``http.disconnect``
  (watch handlers wait on it to stop) and later ``send()`` calls raise
  ``ClientDisconnected``, an ``OSError`` as the ASGI spec asks.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import http
import logging
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, cast

import httptools
import orjson
from wsproto import connection as ws_connection
from wsproto import events as ws_events
from wsproto import utilities as ws_utilities

from kajitori.machinery import errors

# The same shapes as kajitori.server.asgi (MutableMapping, ASGI's own typing), so
# any app typed against either module is accepted here.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StrPath = str | os.PathLike[str]

DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024  # upstream's MaxRequestBodyBytes
# Go's http.DefaultMaxHeaderBytes; kube-apiserver keeps the default.
MAX_HEADER_BYTES = 1 << 20
# kube-apiserver's IdleTimeout for keep-alive connections.
DEFAULT_KEEP_ALIVE_TIMEOUT = 90.0
_READ_HIGH_WATER = 64 * 1024
# After a 413 we keep reading (and discarding) up to this much more body so
# that a client still writing its request gets to read the answer.
_DRAIN_LIMIT = 4 * 1024 * 1024
# Streamed chunks queued in one loop turn are written together up to this size.
_WRITE_COALESCE_LIMIT = 64 * 1024

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_STATUS_LINES = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in http.HTTPStatus
}
_NO_BODY_STATUSES = frozenset({204, 304})

log = logging.getLogger(__name__)


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the peer has gone; the app should stop producing."""


class HttpServer:
    """Serves one ASGI 3 app over HTTP/1.1 (and WebSocket), normally on TLS.

    ``start()`` binds and begins accepting; ``serve_forever()`` additionally
    waits until ``shutdown()`` has finished. ``port`` is the bound port, useful
    when 0 was asked for.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
        sock: socket.socket | None = None,
    ) -> None:
        self.app = app
        self.host = host
        # A listening socket made elsewhere (e.g. inside another network
        # namespace, which the socket keeps); else one is bound to host:port.
        self._sock = sock
        self.ssl_context = ssl_context
        self.max_body_bytes = max_body_bytes
        self.keep_alive_timeout = keep_alive_timeout
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._connections: set[_HttpProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_heads: list[_HttpCycle] = []
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(
                lambda: _HttpProtocol(self), sock=self._sock, ssl=self.ssl_context
            )
            return
        self._server = await loop.create_server(
            lambda: _HttpProtocol(self),
            self.host,
            self._requested_port,
            ssl=self.ssl_context,
            reuse_address=True,
            backlog=1024,
        )

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        await self._stopped.wait()

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._server.sockets) if self._server else ()

    @property
    def bound_address(self) -> tuple[str, int]:
        host, port = self.sockets[0].getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.bound_address[1]

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish for up to ``grace`` seconds, then close.

        Idle keep-alive connections close at once; busy ones close after their
        current response. Whatever is still running at the deadline sees
        ``http.disconnect`` (so watches end), and its task is cancelled if it
        has not returned a moment later.
        """
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(c.busy for c in self._connections) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self._connections):
            conn.force_close()
        await self._cancel_tasks(timeout=min(1.0, max(grace, 0.1)))
        if self._server is not None:
            await self._server.wait_closed()
        self._stopped.set()

    async def _cancel_tasks(self, *, timeout: float) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def flush_head_soon(self, cycle: _HttpCycle) -> None:
        """Write ``cycle``'s response head on the next loop turn if no body has taken it by then.

        One loop callback serves every response started in a turn (at
        concurrency 64 that is dozens), rather than one callback each.
        """
        if not self._pending_heads:
            asyncio.get_running_loop().call_soon(self._flush_heads)
        self._pending_heads.append(cycle)

    def _flush_heads(self) -> None:
        pending, self._pending_heads = self._pending_heads, []
        for cycle in pending:
            cycle.flush_head()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _HttpProtocol(asyncio.Protocol):
    """One client connection: parses requests and runs their cycles one at a time."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self.loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.base_scope: Scope = {}
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._parsing: _HttpCycle | _WebSocketSession | None = None
        self._active: _HttpCycle | _WebSocketSession | None = None
        self._pipeline: collections.deque[_HttpCycle | _WebSocketSession] = collections.deque()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False
        # The keep-alive timer: one per connection, armed when the connection
        # goes idle and left running while requests come and go; when it fires
        # early (the connection was busy, or went idle again later) it re-arms
        # itself for what remains. A timer set and cancelled per request cost
        # a heap push and a cancelled handle for every request.
        self._idle: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None  # None while a request is in progress
        self._closing = False  # no further requests on this connection
        self._websocket: _WebSocketSession | None = None
        self._discard_input = False
        # Streamed chunks written during this loop turn, sent as one write.
        self._queued: list[bytes] | None = None
        self._queued_bytes = 0
        self.lost = False

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any stream transport: uvloop's have asyncio.Transport's methods without
        # deriving from it, so the type is narrowed, not checked.
        self.transport = cast(asyncio.Transport, transport)
        self._server._connections.add(self)
        self.base_scope = _connection_scope(self.transport)
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        if self._websocket is not None:
            self._websocket.feed(data)
            return
        if self._discard_input:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._after_upgrade(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            if self._header_bytes > MAX_HEADER_BYTES:
                # Go's net/http answers 431 here, before any handler runs.
                error = errors.StatusError(431, "BadRequest", "request headers too large")
            else:
                error = errors.bad_request(f"malformed HTTP request: {exc}")
            self._reject(error.code, error.to_status())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._server._connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        for unit in {self._parsing, self._active, *self._pipeline}:
            if unit is not None:
                unit.on_disconnect()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- httptools callbacks ----------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        # Counted inline (not through _count_header_bytes): this runs for every header.
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("request headers too large")

    def on_headers_complete(self) -> None:
        scope = self._request_scope()
        if self._parser.should_upgrade() and _header(self._headers, b"upgrade").lower() == (
            b"websocket"
        ):
            if not _header(self._headers, b"sec-websocket-key"):
                raise httptools.HttpParserError("websocket upgrade without Sec-WebSocket-Key")
            self._enqueue(_WebSocketSession(self, scope))
            return
        too_large = _declared_length(self._headers) > self._server.max_body_bytes
        keep_alive = self._parser.should_keep_alive() and not self._closing
        if self._parser.should_upgrade():
            # Another protocol (SPDY/3.1): served as plain HTTP, and since the
            # bytes after it belong to that protocol, it is the last request.
            keep_alive = False
            self._closing = True
        self._enqueue(
            _HttpCycle(
                self,
                scope,
                keep_alive=keep_alive,
                expect_continue=_header(self._headers, b"expect").lower() == b"100-continue",
                too_large=too_large,
            )
        )

    def on_body(self, body: bytes) -> None:
        if isinstance(self._parsing, _HttpCycle):
            self._parsing.feed_body(body)

    def on_message_complete(self) -> None:
        if isinstance(self._parsing, _HttpCycle):
            self._parsing.finish_body()

    # -- used by cycles ---------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._queued:
            self.flush()
        if self.transport is not None and not self.lost:
            self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Queue a streamed chunk: those queued in one loop turn go out in one write.

        A watch stream gets its events in batches (a storage commit holds
        many), each a chunk of its own; one write per batch means one TLS
        record and one ``send`` for the batch instead of one per event.
        """
        if self._queued is None:
            self._queued = [data]
            self._queued_bytes = len(data)
            self.loop.call_soon(self.flush)
        else:
            self._queued.append(data)
            self._queued_bytes += len(data)
        if self._queued_bytes >= _WRITE_COALESCE_LIMIT:
            # Hand it over now, so that the transport's flow control (drain) applies.
            self.flush()

    def flush(self) -> None:
        queued = self._queued
        if queued is None:
            return
        self._queued = None
        self._queued_bytes = 0
        if queued and self.transport is not None and not self.lost:
            self.transport.write(queued[0] if len(queued) == 1 else b"".join(queued))

    async def drain(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None and not self.lost:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self._pipeline and not self.lost:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()

    def spawn(self, coro: Awaitable[None]) -> None:
        self._server._spawn(coro)

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def on_response_complete(self, cycle: _HttpCycle) -> None:
        """Called once a cycle's response is fully written: close, or start the next request."""
        if not cycle.keep_alive or self._closing:
            self._closing = True
            if cycle.request_complete:
                self.close()
            else:
                cycle.close_when_request_complete = True
            return
        self._active = None
        if self._pipeline:
            self._start(self._pipeline.popleft())
        else:
            self._arm_idle_timer()
        # A large body may have paused reading; the next request must be read.
        self.resume_reading()

    # -- shutdown ---------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a request is still running or its response still being written."""
        if self.lost or self.transport is None:
            return False
        return (
            self._active is not None
            or bool(self._queued)
            or self.transport.get_write_buffer_size() > 0
        )

    def shutdown(self) -> None:
        """Finish the current request, if any, and close; take no new ones."""
        self._closing = True
        if self._active is None:
            self.close()
        elif isinstance(self._active, _HttpCycle):
            self._active.keep_alive = False

    def force_close(self) -> None:
        for unit in {self._parsing, self._active, *self._pipeline}:
            if unit is not None:
                unit.on_disconnect()
        if self.transport is not None:
            self.transport.abort()

    # -- internals --------------------------------------------------------

    def _request_scope(self) -> Scope:
        url = self._url
        if not url.startswith(b"/"):
            parsed = httptools.parse_url(url)
            url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
        raw_path, _, query = url.partition(b"?")
        path_bytes = urllib.parse.unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path
        scope = dict(self.base_scope)
        scope["http_version"] = self._parser.get_http_version()
        scope["method"] = self._parser.get_method().decode("ascii")
        scope["path"] = path_bytes.decode("utf-8", "replace")
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = self._headers
        scope["extensions"] = dict(scope["extensions"])
        return scope

    def _enqueue(self, unit: _HttpCycle | _WebSocketSession) -> None:
        self._parsing = unit
        if isinstance(unit, _WebSocketSession):
            self._websocket = unit
        if self._active is None:
            self._start(unit)
        else:
            self._pipeline.append(unit)
            self.pause_reading()

    def _start(self, unit: _HttpCycle | _WebSocketSession) -> None:
        self._active = unit
        unit.start()

    def _after_upgrade(self, rest: bytes) -> None:
        if self._websocket is not None:
            if rest:
                self._websocket.feed(rest)
        else:
            self._discard_input = True

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("request headers too large")

    def _reject(self, status: int, body: dict[str, Any]) -> None:
        """Answer a request we could not parse, then close: nothing after it can be trusted."""
        self._discard_input = True
        self._closing = True
        if self._active is None:
            self.write(_simple_response(status, body))
        self.close()

    def _arm_idle_timer(self) -> None:
        self._idle_since = now = self.loop.time()
        if self._idle is None:
            self._idle = self.loop.call_at(now + self._server.keep_alive_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self._idle = None
        if self._idle_since is None:
            return  # busy: armed again when its response is done
        deadline = self._idle_since + self._server.keep_alive_timeout
        if self.loop.time() >= deadline:
            self.close()
        else:
            self._idle = self.loop.call_at(deadline, self._idle_check)


class _HttpCycle:
    """One request and its response: the ``receive``/``send`` pair the app is given."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_event",
        "_expect_continue",
        "_framing",
        "_head",
        "_proto",
        "_received",
        "_task",
        "_too_large",
        "body_delivered",
        "close_when_request_complete",
        "disconnected",
        "keep_alive",
        "request_complete",
        "response_complete",
        "response_started",
        "scope",
    )

    def __init__(
        self,
        proto: _HttpProtocol,
        scope: Scope,
        *,
        keep_alive: bool,
        expect_continue: bool,
        too_large: bool,
    ) -> None:
        self._proto = proto
        self.scope = scope
        self.keep_alive = keep_alive
        self._expect_continue = expect_continue
        self._too_large = too_large
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._received = 0
        # Made only when receive() has to wait: most requests arrive whole with
        # their headers, and their receive() never does.
        self._event: asyncio.Event | None = None
        self._head: tuple[int, Sequence[tuple[bytes, bytes]]] | None = None
        self._framing = ""
        self._task: asyncio.Task[None] | None = None
        self.body_delivered = False
        self.request_complete = False
        self.close_when_request_complete = False
        self.disconnected = False
        self.response_started = False
        self.response_complete = False

    # -- fed by the protocol ----------------------------------------------

    def start(self) -> None:
        if self._too_large:
            self._answer_too_large()
            return
        # As HttpServer._spawn, but the task leaves the server's set itself (in
        # _run), which saves a done callback, one more loop callback per request.
        tasks = self._proto._server._tasks
        self._task = self._proto.loop.create_task(self._run())
        tasks.add(self._task)

    def feed_body(self, body: bytes) -> None:
        self._received += len(body)
        if self._too_large:
            if self._received > _DRAIN_LIMIT:
                self._proto.close()
            return
        if self._received > self._proto._server.max_body_bytes:
            self._too_large = True
            self._chunks.clear()
            self._buffered = 0
            if self._proto._active is self:
                self._answer_too_large()
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _READ_HIGH_WATER:
            self._proto.pause_reading()
        self._wake()

    def finish_body(self) -> None:
        self.request_complete = True
        self._wake()
        if self.close_when_request_complete:
            self._proto.close()

    def on_disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    # -- the ASGI callables -----------------------------------------------

    async def receive(self) -> Message:
        if self._expect_continue:
            self._expect_continue = False
            if not self.request_complete and not self.response_started:
                self._proto.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            if self.disconnected:
                return {"type": "http.disconnect"}
            if not self.body_delivered and (self._chunks or self.request_complete):
                return self._take_body()
            if self.response_complete:
                return {"type": "http.disconnect"}
            self._proto.resume_reading()
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()

    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("http.response.start sent twice")
            self.response_started = True
            self._head = (message["status"], message.get("headers", ()))
            # Headers go out with the first body chunk (one TLS record for a
            # whole small response) or, if the app pauses first, as soon as it
            # yields: a watch with no events yet still gets its 200 at once.
            self._proto._server.flush_head_soon(self)
        elif kind == "http.response.body":
            if not self.response_started or self.response_complete:
                raise RuntimeError("http.response.body outside a response")
            more_body = message.get("more_body", False)
            self._write_body(message.get("body", b""), more_body=more_body)
            if not more_body:
                self._complete()
            else:
                if message.get("flush"):  # nothing more this turn (a watch batch): write it now
                    self._proto.flush()
                await self._proto.drain()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an HTTP connection")

    # -- internals --------------------------------------------------------

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    def flush_head(self) -> None:
        if self._head is not None and not self.disconnected:
            self._write_body(b"", more_body=True)

    def _take_body(self) -> Message:
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        more_body = not self.request_complete
        self.body_delivered = not more_body
        return {"type": "http.request", "body": body, "more_body": more_body}

    async def _run(self) -> None:
        try:
            await self._proto._server.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except asyncio.CancelledError:
            self._proto.close()
            raise
        except Exception:
            log.exception("ASGI app failed on %s %s", self.scope["method"], self.scope["path"])
            self._fail()
        else:
            if not self.response_complete and not self.disconnected:
                log.error("ASGI app returned without completing the response")
                self._fail()
        finally:
            if self._task is not None:
                self._proto._server._tasks.discard(self._task)

    def _fail(self) -> None:
        if self.response_started:
            # Half a response cannot be taken back; closing tells the client it is cut short.
            self.keep_alive = False
            self._proto.close()
            return
        status = errors.internal_error("the server could not handle the request").to_status()
        self._respond_status(500, status)

    def _answer_too_large(self) -> None:
        limit = self._proto._server.max_body_bytes
        status = errors.request_entity_too_large(f"limit is {limit}").to_status()
        self.keep_alive = False
        if not self.response_started:
            self._respond_status(413, status)
        # The app, if running, is done with this request: its receive() ends and
        # its send() calls fail, since its answer can no longer be written.
        self.on_disconnect()

    def _respond_status(self, code: int, status: dict[str, Any]) -> None:
        self.keep_alive = False
        self.response_started = True
        self._head = (code, [(b"content-type", b"application/json")])
        self._write_body(orjson.dumps(status), more_body=False)
        self._complete()

    def _complete(self) -> None:
        self.response_complete = True
        self._wake()
        self._proto.on_response_complete(self)

    def _write_body(self, body: bytes, *, more_body: bool) -> None:
        if self._head is not None:
            head = self._encode_head(*self._head, body=body, more_body=more_body)
            self._head = None
        else:
            head = b""
        if self._framing == "chunked":
            chunk = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if more_body and not head:
                if chunk:
                    self._proto.write_soon(chunk)
            else:
                self._proto.write(head + chunk + (b"" if more_body else b"0\r\n\r\n"))
        elif self._framing == "none":
            if head:
                self._proto.write(head)
        else:
            self._proto.write(head + body if head else body)

    def _encode_head(
        self, status: int, headers: Sequence[tuple[bytes, bytes]], *, body: bytes, more_body: bool
    ) -> bytes:
        lines = [_status_line(status)]
        has_length = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length":
                has_length = True
            elif lowered == b"connection" and value.lower() == b"close":
                self.keep_alive = False
                continue  # written below, once
            elif lowered == b"transfer-encoding":
                continue  # framing is ours to choose
            lines.append(b"%b: %b\r\n" % (name, value))
        lines.append(_date_header())
        self._framing = self._choose_framing(status, has_length=has_length, more_body=more_body)
        if self._framing == "length" and not has_length:
            lines.append(b"content-length: %d\r\n" % len(body))
        elif self._framing == "chunked":
            lines.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive or self._proto._closing:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _choose_framing(self, status: int, *, has_length: bool, more_body: bool) -> str:
        if self.scope["method"] == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
            return "none"
        if has_length or not more_body:
            return "length"
        if self.scope["http_version"] == "1.0":
            self.keep_alive = False  # HTTP/1.0 has no chunking: the body ends at close
            return "close"
        return "chunked"


class _WebSocketSession:
    """An upgraded connection: the ASGI websocket scope over ``wsproto`` framing.

    The handshake is answered here (httptools has parsed it already), so
    ``wsproto`` is used below the handshake, for frames only. Frames that
    arrive before the app accepts wait in ``_pending``; received messages wait
    in ``_inbox``, and reading pauses while it holds ``_INBOX_HIGH_WATER``.
    """

    _INBOX_HIGH_WATER = 16

    def __init__(self, proto: _HttpProtocol, http_scope: Scope) -> None:
        self._proto = proto
        self.scope = _websocket_scope(http_scope)
        self._key = _header(http_scope["headers"], b"sec-websocket-key")
        self._conn = ws_connection.Connection(ws_connection.ConnectionType.SERVER)
        self._inbox: collections.deque[Message] = collections.deque()
        self._event = asyncio.Event()
        self._pending = bytearray()
        self._fragments: list[Any] = []
        self._connect_delivered = False
        self._state = "connecting"  # → accepted | responding → closed
        self._close_code = 1006
        self._denial_status = 403
        self._denial_headers: list[bytes] = []
        self._denial_body: list[bytes] = []

    def start(self) -> None:
        self._proto.spawn(self._run())

    def on_disconnect(self) -> None:
        self._state = "closed"
        self._event.set()

    def feed(self, data: bytes) -> None:
        if self._state == "connecting":
            self._pending += data
        elif self._state == "accepted":
            self._conn.receive_data(data)
            for event in self._conn.events():
                self._handle_event(event)

    async def receive(self) -> Message:
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        while not self._inbox:
            if self._state == "closed":
                return {"type": "websocket.disconnect", "code": self._close_code}
            self._event.clear()
            await self._event.wait()
        if len(self._inbox) <= self._INBOX_HIGH_WATER:
            self._proto.resume_reading()
        return self._inbox.popleft()

    async def send(self, message: Message) -> None:
        kind, state = message["type"], self._state
        if state == "closed":
            raise ClientDisconnected("the websocket is closed")
        if kind == "websocket.accept" and state == "connecting":
            self._accept(message)
        elif kind == "websocket.send" and state == "accepted":
            self._proto.write(self._conn.send(_ws_message(message)))
            await self._proto.drain()
        elif kind == "websocket.close" and state in ("connecting", "accepted"):
            self._close(message.get("code", 1000), message.get("reason") or "")
        elif kind == "websocket.http.response.start" and state == "connecting":
            self._start_denial(message)
        elif kind == "websocket.http.response.body" and state == "responding":
            self._continue_denial(message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in websocket state {state}")

    async def _run(self) -> None:
        try:
            await self._proto._server.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except asyncio.CancelledError:
            self._proto.close()
            raise
        except Exception:
            log.exception("ASGI websocket app failed on %s", self.scope["path"])
            if self._state == "connecting":
                self._proto.write(_simple_response(500, errors.internal_error("").to_status()))
                self._state = "closed"
        if self._state in ("connecting", "accepted"):
            self._close(1000, "")
        self._proto.close()

    def _accept(self, message: Message) -> None:
        lines = [
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n",
            b"sec-websocket-accept: %b\r\n" % ws_utilities.generate_accept_token(self._key),
        ]
        if subprotocol := message.get("subprotocol"):
            lines.append(b"sec-websocket-protocol: %b\r\n" % subprotocol.encode("ascii"))
        lines += [b"%b: %b\r\n" % (n, v) for n, v in message.get("headers", ())]
        self._proto.write(b"".join([*lines, b"\r\n"]))
        self._state = "accepted"
        pending, self._pending = bytes(self._pending), bytearray()
        if pending:
            self.feed(pending)

    def _close(self, code: int, reason: str) -> None:
        if self._state == "accepted":
            event = ws_events.CloseConnection(code=code, reason=reason or None)
            self._proto.write(self._conn.send(event))
        else:
            # Closing before accepting refuses the handshake with a 403 (ASGI spec).
            refused = errors.StatusError(403, "Forbidden", "websocket connection refused")
            self._proto.write(_simple_response(403, refused.to_status()))
        self._close_code = code
        self._state = "closed"
        self._event.set()
        self._proto.close()

    def _start_denial(self, message: Message) -> None:
        """The websocket denial-response extension: answer the upgrade with plain HTTP."""
        self._state = "responding"
        self._denial_status = message["status"]
        self._denial_headers = [
            b"%b: %b\r\n" % (n, v)
            for n, v in message.get("headers", ())
            if n.lower() not in (b"content-length", b"connection", b"transfer-encoding")
        ]

    def _continue_denial(self, message: Message) -> None:
        self._denial_body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self._denial_body)
        trailer = b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        self._proto.write(
            b"".join([_status_line(self._denial_status), *self._denial_headers, trailer, body])
        )
        self._state = "closed"
        self._proto.close()

    def _handle_event(self, event: ws_events.Event) -> None:
        if isinstance(event, ws_events.Message):
            self._fragments.append(event.data)
            if event.message_finished:
                self._deliver_message()
        elif isinstance(event, ws_events.Ping):
            self._proto.write(self._conn.send(event.response()))
        elif isinstance(event, ws_events.CloseConnection):
            if self._conn.state is ws_connection.ConnectionState.REMOTE_CLOSING:
                self._proto.write(self._conn.send(event.response()))
            self._close_code = event.code
            self._state = "closed"
            self._event.set()
            self._proto.close()

    def _deliver_message(self) -> None:
        parts, self._fragments = self._fragments, []
        if isinstance(parts[0], str):
            self._inbox.append({"type": "websocket.receive", "text": "".join(parts)})
        else:
            self._inbox.append({"type": "websocket.receive", "bytes": b"".join(parts)})
        self._event.set()
        if len(self._inbox) >= self._INBOX_HIGH_WATER:
            self._proto.pause_reading()


def _ws_message(message: Message) -> ws_events.Message[Any]:
    text = message.get("text")
    if text is not None:
        return ws_events.TextMessage(data=text)
    return ws_events.BytesMessage(data=message.get("bytes") or b"")


def make_server_ssl_context(
    cert_pem_path: StrPath, key_pem_path: StrPath, client_ca_path: StrPath
) -> ssl.SSLContext:
    """TLS 1.2+ server context that asks for, but does not require, a client certificate.

    Anonymous and bearer-token clients must still connect, so verification is
    CERT_OPTIONAL: a client that sends no certificate is let through, while one
    that sends a certificate the CA did not sign fails the handshake (OpenSSL
    verifies whatever is presented). ALPN offers only http/1.1, so Go clients,
    which would prefer h2, settle on HTTP/1.1.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_pem_path, key_pem_path)
    context.load_verify_locations(cafile=client_ca_path)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def _connection_scope(transport: asyncio.Transport) -> Scope:
    """The per-connection part of every request's scope, computed once per connection."""
    ssl_object = transport.get_extra_info("ssl_object")
    extensions: dict[str, Any] = {}
    if ssl_object is not None:
        peer = ssl_object.getpeercert(binary_form=True)
        if peer:
            extensions["tls"] = _tls_extension(ssl_object, peer)
    return {
        "type": "http",
        "asgi": _ASGI,
        "scheme": "https" if ssl_object is not None else "http",
        "root_path": "",
        "client": _address(transport.get_extra_info("peername")),
        "server": _address(transport.get_extra_info("sockname")),
        "extensions": extensions,
    }


def _tls_extension(ssl_object: ssl.SSLObject, peer_der: bytes) -> dict[str, Any]:
    """The ASGI TLS extension for a connection whose client presented a (verified) certificate.

    Python's ssl cannot return the verified chain before 3.13, so the chain
    holds the client's own certificate only; it is the one that names the user.
    """
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer_der)],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }


def _websocket_scope(http_scope: Scope) -> Scope:
    offered = [
        p.strip()
        for name, value in http_scope["headers"]
        if name == b"sec-websocket-protocol"
        for p in value.decode("latin-1").split(",")
        if p.strip()
    ]
    scope = dict(http_scope)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if http_scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = offered
    scope["extensions"] = {**http_scope["extensions"], "websocket.http.response": {}}
    del scope["method"]
    return scope


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key == name:
            return value
    return b""


def _declared_length(headers: Sequence[tuple[bytes, bytes]]) -> int:
    value = _header(headers, b"content-length")
    return int(value) if value.isdigit() else 0


def _simple_response(status: int, body: dict[str, Any]) -> bytes:
    payload = orjson.dumps(body)
    head = _status_line(status)
    return (
        b"%bcontent-type: application/json\r\ncontent-length: %d\r\n%bconnection: close\r\n\r\n%b"
        % (
            head,
            len(payload),
            _date_header(),
            payload,
        )
    )


def _status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status


_date_cache: list[Any] = [0, b""]


def _date_header() -> bytes:
    """The Date header, formatted at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = b"date: %b\r\n" % email.utils.formatdate(now, usegmt=True).encode("ascii")
    return _date_cache[1]
