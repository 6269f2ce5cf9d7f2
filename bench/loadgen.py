"""A lean HTTP/1.1 load generator: N keep-alive TLS connections, requests back to back.

Owns client-side load for kajitori's benchmarks. It is built to cost the
client far less CPU per request than the server under test: TLS runs on
non-blocking ``ssl.SSLSocket``s driven by asyncio reader callbacks (no
per-request tasks or futures, no Python-level record layer), requests are
encoded once and reused when the factory hands back the same tuple, and
responses are parsed only as far as framing needs (status code,
Content-Length or chunked). It does not validate headers,
decode bodies or follow redirects.

Each connection sends its next request as soon as the previous response has
ended (no pipelining), for a duration or a total request count, and records
status codes and per-request latency. ``reconnect=True`` opens a new
connection (a full TLS handshake) for every request instead, to measure
handshake cost.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import socket
import ssl
import time
from collections.abc import Callable, Sequence

Request = tuple[str, str, Sequence[tuple[str, str]], bytes]  # method, path, headers, body
RequestFactory = Callable[[int], Request]


@dataclasses.dataclass
class Result:
    """What a run measured."""

    requests: int
    seconds: float
    statuses: collections.Counter[int]
    latencies: list[float]
    errors: int
    cpu_seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.requests_per_second, 1),
            "p50_ms": round(self.percentile(0.50) * 1000, 3),
            "p99_ms": round(self.percentile(0.99) * 1000, 3),
            "statuses": dict(self.statuses),
            "errors": self.errors,
            "client_cpu_us_per_request": round(self.cpu_seconds / max(self.requests, 1) * 1e6, 1),
        }


def constant(method: str = "GET", path: str = "/", body: bytes = b"") -> RequestFactory:
    """A factory that always makes the same request (encoded once)."""
    request: Request = (method, path, (), body)
    return lambda _: request


class ResponseParser:
    """Sans-IO: finds where each response ends and keeps only its status code."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._status = 0
        self._remaining = -1  # body bytes still due; -1 while reading the head
        self._chunked = False
        self.completed: list[int] = []

    def feed(self, data: bytes) -> None:
        if self._remaining < 0 and not self._buffer and self._whole_response(data):
            return
        self._buffer += data
        while self._step():
            pass

    def _whole_response(self, data: bytes) -> bool:
        """Fast path: ``data`` is exactly one Content-Length response (the common case)."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = data[:end].lower()
        if b"transfer-encoding: chunked" in head or end + 4 + _content_length(head) != len(data):
            return False
        self.completed.append(int(head[9:12]))
        return True

    def _step(self) -> bool:
        """Consume what the buffer allows; True when another step may make progress."""
        buffer = self._buffer
        if self._remaining < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buffer[:end]).lower()
            del buffer[: end + 4]
            self._status = int(head[9:12])
            self._chunked = b"transfer-encoding: chunked" in head
            self._remaining = 0 if self._chunked else _content_length(head)
            if self._chunked:
                return True
        if self._chunked:
            return self._step_chunk()
        if len(buffer) < self._remaining:
            return False
        del buffer[: self._remaining]
        self._finish()
        return bool(buffer)

    def _step_chunk(self) -> bool:
        buffer = self._buffer
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            return False
        size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
        needed = line_end + 2 + size + 2
        if len(buffer) < needed:
            return False
        del buffer[:needed]
        if size == 0:
            self._finish()
        return bool(buffer)

    def _finish(self) -> None:
        self._remaining = -1
        self._chunked = False
        self.completed.append(self._status)


def _content_length(head: bytes) -> int:
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    end = head.find(b"\r\n", at)
    return int(head[at + 15 : end if end >= 0 else len(head)])


def encode_request(request: Request, *, host: str, close: bool = False) -> bytes:
    method, path, headers, body = request
    lines = [f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}\r\n")
    if close:
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


async def run(
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    connections: int,
    duration: float | None = None,
    total_requests: int | None = None,
    make_request: RequestFactory | None = None,
    server_hostname: str | None = "localhost",
    reconnect: bool = False,
    completions: list[tuple[int, float]] | None = None,
) -> Result:
    """Drive ``connections`` clients until ``duration`` seconds pass or ``total_requests`` are done.

    If ``completions`` is given, each finished request appends (its sequence
    number, the ``time.perf_counter()`` its response ended at) to it.
    """
    if duration is None and total_requests is None:
        raise ValueError("give a duration, a request count, or both")
    factory = make_request or constant()
    state = _RunState(total_requests, time.perf_counter() + duration if duration else None)
    state.completions = completions
    client = _Client(host, port, ssl_context, server_hostname, reconnect=reconnect)
    cpu_before = time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(client.drive(state, factory) for _ in range(connections)))
    seconds = time.perf_counter() - began
    return Result(
        requests=len(state.latencies),
        seconds=seconds,
        statuses=state.statuses,
        latencies=state.latencies,
        errors=state.errors,
        cpu_seconds=time.process_time() - cpu_before,
    )


@dataclasses.dataclass
class _RunState:
    budget: int | None
    deadline: float | None
    issued: int = 0
    errors: int = 0
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    latencies: list[float] = dataclasses.field(default_factory=list)
    completions: list[tuple[int, float]] | None = None

    def over(self) -> bool:
        if self.budget is not None and self.issued >= self.budget:
            return True
        if self.issued == 0:
            # Every run measures at least one request, however slow the
            # connection's set-up was on a busy machine.
            return False
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def take(self) -> int | None:
        """The next request's sequence number, or None when the run is over."""
        if self.over():
            return None
        self.issued += 1
        return self.issued - 1


class _Client:
    """Opens connections and drives each with callbacks on the raw non-blocking socket.

    asyncio's own TLS transport runs the record layer in Python (memory BIOs
    and buffer copies), which would make the client nearly as expensive as
    the server it measures. Here an ``ssl.SSLSocket`` in non-blocking mode is
    read from an ``add_reader`` callback, so encryption, decryption and the
    socket calls stay in C and a request costs a send, a recv and a
    ``bytes.find``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        *,
        reconnect: bool,
    ) -> None:
        self._address = (host, port)
        self._ssl = ssl_context
        self._server_hostname = server_hostname
        self._reconnect = reconnect
        self._host_header = f"{host}:{port}"

    async def drive(self, state: _RunState, factory: RequestFactory) -> None:
        while not state.over():
            try:
                sock = await self._connect()
            except OSError:
                state.errors += 1
                continue
            try:
                await _Connection(sock, state, factory, self).run(single=self._reconnect)
            finally:
                sock.close()

    def encode(self, request: Request) -> bytes:
        return encode_request(request, host=self._host_header)

    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(raw, self._address)
        except OSError:
            raw.close()
            raise
        if self._ssl is None:
            return raw
        sock = self._ssl.wrap_socket(
            raw, server_hostname=self._server_hostname, do_handshake_on_connect=False
        )
        try:
            await _handshake(sock)
        except OSError:
            sock.close()
            raise
        return sock


async def _handshake(sock: ssl.SSLSocket) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            await _wait(loop.add_reader, loop.remove_reader, sock)
        except ssl.SSLWantWriteError:
            await _wait(loop.add_writer, loop.remove_writer, sock)


async def _wait(
    add: Callable[..., None], remove: Callable[[int], bool], sock: socket.socket
) -> None:
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    add(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        remove(sock.fileno())


class _Connection:
    """One connection's request loop, run from reader/writer callbacks."""

    def __init__(
        self, sock: socket.socket, state: _RunState, factory: RequestFactory, client: _Client
    ) -> None:
        self._sock = sock
        self._pending: Callable[[], int] = (
            sock.pending if isinstance(sock, ssl.SSLSocket) else lambda: 0
        )
        self._state = state
        self._factory = factory
        self._client = client
        self._parser = ResponseParser()
        self._last: Request | None = None
        self._encoded = b""
        self._outgoing = b""
        self._started = 0.0
        self._sequence = 0
        self._single = False
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()

    async def run(self, *, single: bool) -> None:
        self._single = single
        fd = self._sock.fileno()
        self._loop.add_reader(fd, self._on_readable)
        try:
            if self._send_next():
                await self._done
        finally:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)

    def _send_next(self) -> bool:
        sequence = self._state.take()
        if sequence is None:
            return False
        request = self._factory(sequence)
        self._sequence = sequence
        if request is not self._last:
            self._last, self._encoded = request, self._client.encode(request)
        self._started = time.perf_counter()
        self._outgoing = self._encoded
        self._flush()
        return True

    def _flush(self) -> None:
        try:
            while self._outgoing:
                sent = self._sock.send(self._outgoing)
                self._outgoing = self._outgoing[sent:]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
        except OSError:
            self._fail()

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._sock.fileno())
        self._flush()

    def _on_readable(self) -> None:
        sock, parser = self._sock, self._parser
        try:
            # Stop as soon as a response is complete and OpenSSL holds nothing
            # more: the extra recv that would only raise SSLWantReadError costs
            # as much as parsing the response.
            while not parser.completed or self._pending():
                data = sock.recv(262144)
                if not data:
                    return self._fail()
                parser.feed(data)
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except OSError:
            return self._fail()
        if parser.completed:
            self._record()

    def _record(self) -> None:
        state = self._state
        now = time.perf_counter()
        state.latencies.append(now - self._started)
        if state.completions is not None:
            state.completions.append((self._sequence, now))
        for status in self._parser.completed:
            state.statuses[status] += 1
        self._parser.completed.clear()
        if self._single or not self._send_next():
            self._finish()

    def _fail(self) -> None:
        self._state.errors += 1
        self._finish()

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
