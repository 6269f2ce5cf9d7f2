"""An httpx transport that calls an ASGI app in the same process, streaming both ways.

Owns the in-process path components take inside ``kajitori up``: no socket,
no TLS, but the same request semantics as the network. Two things differ
from ``httpx.ASGITransport``, and both are why this module exists:

* response bodies stream: the app's chunks reach the reader as they are
  sent, so a watch (which never finishes on its own) yields events at once
  instead of being buffered until the app returns. A reader that falls
  behind by ``max_buffered_chunks`` chunks pauses the app, as TCP flow
  control pauses a network watcher;
* the caller's client certificate is put in ``scope["extensions"]["tls"]``
  exactly where the HTTPS server puts a verified peer certificate, so the
  request still passes authentication, authorization and admission as that
  user. A request may carry its own certificate (``CLIENT_CERT_EXTENSION``),
  so one transport can speak for many identities.

Closing the response (or a reader leaving a watch early) delivers
``http.disconnect`` to the app, which is how the server notices a watcher
has gone.

``InProcessTransport.call`` is the same exchange for a request whose
answer is read whole, and ``InProcessTransport.stream`` for one whose body
is read as it comes (a watch), both without httpx's request and response
objects: ``rest.Client`` sends every plain request (decision 0038) and
every watch (decision 0050) that way in process. ``handle_async_request``
serves any other httpx use of the transport.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

# A request extension naming the PEM certificate to present for that request
# alone: one transport serving many identities (the simulated kubelets of
# many nodes, each acting as system:node:<name>) without a client apiece.
CLIENT_CERT_EXTENSION = "kajitori.client_cert_pem"

# The host in-process requests name (``Client.in_process``'s base URL).
HOST = "kajitori.invalid"

# How long closing a response waits for the app to notice the disconnect
# before cancelling it.
_CLOSE_GRACE = 5.0


class InProcessTransport(httpx.AsyncBaseTransport):
    """Serve httpx requests by calling ``app`` directly, as the holder of ``client_cert_pem``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        client_cert_pem: bytes | str,
        max_buffered_chunks: int = 64,
    ) -> None:
        self.app = app
        pem = (
            client_cert_pem.decode("ascii")
            if isinstance(client_cert_pem, bytes)
            else client_cert_pem
        )
        # The identity this transport presents unless a request names another.
        self.client_cert_pem = pem
        self.tls = {
            "server_cert": None,
            "client_cert_chain": [pem],
            "client_cert_name": None,
            "client_cert_error": None,
        }
        self.max_buffered_chunks = max_buffered_chunks

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        exchange = _Exchange(self.app, self._scope(request), body, self.max_buffered_chunks)
        await exchange.start()
        return httpx.Response(
            exchange.status,
            headers=exchange.headers,
            stream=_ResponseStream(exchange),
            request=request,
        )

    async def call(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        extensions: Mapping[str, Any] | None = None,
    ) -> tuple[int, bytes, bytes]:
        """One whole request without httpx: ``target`` is the quoted path and query.

        Answers the status, the body and the Retry-After header's value (b"" if none).

        The client's fast path for everything but streams (``rest.Client``
        uses it for every plain request): httpx builds, merges and parses
        each request's URL and wraps both ends in objects, which in a busy
        ``kajitori up`` cost more than many of the handlers served. The app
        runs in a task of its own, as for ``handle_async_request``, so a
        caller that is cancelled does not cancel the request half-way.
        """
        scope = self._direct_scope(method, target, headers, extensions)
        exchange = _WholeExchange(body)
        task = asyncio.ensure_future(self._run_whole(scope, exchange))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The request goes on without its caller; its outcome is nobody's to raise.
            task.add_done_callback(_discard_outcome)
            raise
        return exchange.status, b"".join(exchange.chunks), exchange.retry_after

    async def stream(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        extensions: Mapping[str, Any] | None = None,
    ) -> Stream:
        """A request without a body whose answer is read as the app sends it (a watch).

        Returns once the app has started its response (``status``,
        ``headers``); the body is the returned ``Stream``'s chunks, each one
        the app's ``send`` as it was sent, with the same bounded buffer and
        the same ``http.disconnect`` on ``aclose`` as ``handle_async_request``.
        An app that fails before answering raises ``httpx.ReadError``.
        """
        scope = self._direct_scope(method, target, headers, extensions)
        exchange = _Exchange(self.app, scope, b"", self.max_buffered_chunks)
        await exchange.start()
        return Stream(exchange)

    def _direct_scope(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        extensions: Mapping[str, Any] | None,
    ) -> Scope:
        """The scope of ``call`` and ``stream``: ``target`` is the quoted path and query."""
        raw_path, _, query = target.partition("?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": urllib.parse.unquote(raw_path),
            "raw_path": raw_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 0),
            "server": (HOST, 443),
            "extensions": {"tls": self._tls_for_pem((extensions or {}).get(CLIENT_CERT_EXTENSION))},
        }

    async def _run_whole(self, scope: Scope, exchange: _WholeExchange) -> None:
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:  # as the HTTP server, which would drop the connection
            log.exception("in-process request %s %s failed", scope["method"], scope["path"])
            raise httpx.ReadError(f"in-process app failed: {exc!r}") from exc
        finally:
            exchange.done.set()
        if not exchange.started:
            raise httpx.ReadError("in-process app sent no response")

    def _scope(self, request: httpx.Request) -> Scope:
        raw_path, _, query = request.url.raw_path.partition(b"?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "https",
            "path": request.url.path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 0),
            "server": (request.url.host, request.url.port or 443),
            "extensions": {"tls": self._tls_for(request)},
        }

    def _tls_for(self, request: httpx.Request) -> dict[str, Any]:
        """This transport's identity, or the one a request carries (``CLIENT_CERT_EXTENSION``)."""
        return self._tls_for_pem(request.extensions.get(CLIENT_CERT_EXTENSION))

    def _tls_for_pem(self, pem: str | None) -> dict[str, Any]:
        if pem is None:
            return dict(self.tls)
        return {**self.tls, "client_cert_chain": [pem]}


def _discard_outcome(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as never retrieved


class _WholeExchange:
    """The app's side of ``InProcessTransport.call``: the body in, the answer collected."""

    def __init__(self, body: bytes) -> None:
        self.body: bytes | None = body
        self.status = 500
        self.retry_after = b""
        self.started = False
        self.chunks: list[bytes] = []
        self.done = asyncio.Event()

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        # As httpx's ASGITransport: the client "leaves" once the answer is complete.
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.started = True
            if self.status == 429 or self.status >= 500:
                for name, value in message.get("headers", ()):
                    if name.lower() == b"retry-after":
                        self.retry_after = value
        elif kind == "http.response.body":
            if message.get("body"):
                self.chunks.append(message["body"])
            if not message.get("more_body", False):
                self.done.set()


class _Exchange:
    """One request/response between httpx and the app, with a bounded chunk buffer."""

    def __init__(self, app: ASGIApp, scope: Scope, body: bytes, limit: int) -> None:
        self.app = app
        self.scope = scope
        self.body: bytes | None = body
        self.limit = limit
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.finished = False
        self.closed = False
        self.error: BaseException | None = None
        self._started = asyncio.Event()
        self._disconnected = asyncio.Event()
        # The reader waiting for a chunk, the app waiting for room: bare futures, not
        # Events, as each is awaited once per chunk of a watch (~1 µs less per event).
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the app until it starts its response; re-raise if it fails before that."""
        self._task = asyncio.ensure_future(self._run())
        await self._started.wait()
        if self.error is not None and not self.headers and not self.chunks:
            raise httpx.ReadError(f"in-process app failed: {self.error!r}") from self.error

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except Exception as exc:  # the HTTP server would drop the connection
            log.exception(
                "in-process request %s %s failed", self.scope["method"], self.scope["path"]
            )
            self.error = exc
        finally:
            self.finished = True
            self._started.set()
            _wake(self._reader)

    async def _receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers") or [])
            self._started.set()
            return
        if message["type"] != "http.response.body" or self.closed:
            return
        while len(self.chunks) >= self.limit and not self.closed:
            self._writer = asyncio.get_running_loop().create_future()
            await self._writer
        if message.get("body"):
            self.chunks.append(message["body"])
        if not message.get("more_body", False):
            self.finished = True
        _wake(self._reader)

    async def next_chunk(self) -> bytes | None:
        """The next chunk the app sent, waiting for it; None once the body is complete."""
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                _wake(self._writer)
                return chunk
            if self.finished:
                if self.error is not None:
                    raise httpx.ReadError(f"in-process app failed: {self.error!r}")
                return None
            self._reader = asyncio.get_running_loop().create_future()
            await self._reader

    async def chunks_until_done(self) -> AsyncIterator[bytes]:
        while (chunk := await self.next_chunk()) is not None:
            yield chunk

    async def close(self) -> None:
        self.closed = True
        self._disconnected.set()
        _wake(self._writer)
        task = self._task
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=_CLOSE_GRACE)
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


def _wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve ``waiter`` if someone still waits on it (a resolved one is left as it is)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.exchange.chunks_until_done():
            yield chunk

    async def aclose(self) -> None:
        await self.exchange.close()


class Stream:
    """A streamed answer of ``InProcessTransport.stream``: ``status``, ``headers``, then chunks.

    Iterating yields the body's chunks as the app sends them, as does
    awaiting ``next_chunk()`` (None at the end: one coroutine fewer per chunk,
    which a watch reads per event); ``aclose`` (which the reader must call)
    tells the app the client has gone and waits, up to a grace period, for
    it to finish.
    """

    __slots__ = ("_exchange", "headers", "next_chunk", "status")

    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange
        self.status = exchange.status
        self.headers = exchange.headers
        self.next_chunk = exchange.next_chunk

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._exchange.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self) -> bytes:
        """The rest of the body (an error answer)."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        await self._exchange.close()
