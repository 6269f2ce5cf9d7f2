"""HttpServer over real TLS on 127.0.0.1: framing, identity, limits, streaming, websockets, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws_events

from kajitori.auth import pki
from kajitori.client import kubeconfig
from kajitori.server import http

Scope = dict[str, Any]
Message = dict[str, Any]
StartServer = Callable[..., Awaitable[http.HttpServer]]

LIMIT = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster_pki(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    return pki.ensure_cluster_pki(tmp_path_factory.mktemp("pki"), hostname="testhost")


@pytest.fixture
async def start_server(cluster_pki: pki.ClusterPKI) -> AsyncIterator[StartServer]:
    servers: list[http.HttpServer] = []

    async def start(app: http.ASGIApp, **options: Any) -> http.HttpServer:
        context = http.make_server_ssl_context(
            cluster_pki.apiserver_cert_path,
            cluster_pki.apiserver_key_path,
            cluster_pki.ca_cert_path,
        )
        server = http.HttpServer(app, host="127.0.0.1", port=0, ssl_context=context, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.shutdown(grace=1.0)


def client_context(
    cluster_pki: pki.ClusterPKI, tmp_path: Path, cert: pki.CertAndKey | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=cluster_pki.ca.cert_pem.decode())
    if cert is not None:
        (tmp_path / "c.crt").write_bytes(cert.cert_pem)
        (tmp_path / "c.key").write_bytes(cert.key_pem)
        context.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    return context


async def read_body(receive: http.Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def respond_json(send: http.Send, payload: Any, *, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


async def echo_app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
    body = await read_body(receive)
    tls = scope["extensions"].get("tls")
    await respond_json(
        send,
        {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "scheme": scope["scheme"],
            "http_version": scope["http_version"],
            "client_port": scope["client"][1],
            "body": body.decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "identity": pki.identity_from_cert(tls["client_cert_chain"][0]) if tls else None,
        },
    )


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        pytest.param("/api/v1/pods", "/api/v1/pods", "/api/v1/pods", "", id="plain"),
        pytest.param(
            "/a%20b/c%2Fd?x=1&y=%20", "/a b/c/d", "/a%20b/c%2Fd", "x=1&y=%20", id="encoded"
        ),
    ],
)
async def test_get_request_scope_carries_decoded_path_raw_path_and_query(
    start_server: StartServer,
    cluster_pki: pki.ClusterPKI,
    tmp_path: Path,
    target: str,
    path: str,
    raw_path: str,
    query: str,
) -> None:
    """A GET reaches the app with ASGI's https scope, a percent-decoded path and the raw query."""
    server = await start_server(echo_app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        response = await client.get(f"https://127.0.0.1:{server.port}{target}")
    seen = response.json()
    assert response.status_code == 200
    assert (seen["method"], seen["scheme"], seen["http_version"]) == ("GET", "https", "1.1")
    assert (seen["path"], seen["raw_path"], seen["query"]) == (path, raw_path, query)
    assert seen["headers"]["host"] == f"127.0.0.1:{server.port}"


async def test_post_body_is_delivered_and_response_gets_content_length(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """A POST body reaches receive() whole; a single-chunk response is sent with Content-Length."""
    server = await start_server(echo_app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        response = await client.post(f"https://localhost:{server.port}/x", content=b"k" * 100_000)
    assert response.json()["body"] == "k" * 100_000
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers


async def test_keep_alive_serves_sequential_requests_on_one_connection(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """Requests from one pooled client reuse the same TCP connection."""
    server = await start_server(echo_app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        ports = {
            (await client.get(f"https://127.0.0.1:{server.port}/{i}")).json()["client_port"]
            for i in range(5)
        }
    assert len(ports) == 1


async def test_pipelined_requests_are_answered_in_order(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """Several requests written at once get their responses in request order."""
    server = await start_server(echo_app)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        server.port,
        ssl=client_context(cluster_pki, tmp_path),
        server_hostname="localhost",
    )
    requests = b"".join(
        b"POST /r%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % (i, i) for i in range(3)
    )
    writer.write(requests + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    paths = [json.loads(part.split(b"\r\n\r\n", 1)[1])["path"] for part in _split_responses(raw)]
    assert paths == ["/r0", "/r1", "/r2", "/last"]


def _split_responses(raw: bytes) -> list[bytes]:
    parts = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        parts.append(head + b"\r\n\r\n" + rest[:length])
        raw = rest[length:]
    return parts


async def test_streamed_chunks_arrive_before_the_next_is_produced(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """Without Content-Length the response is chunked and each chunk is flushed as it is sent."""
    produced = [asyncio.Event() for _ in range(3)]

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i, go in enumerate(produced):
            await asyncio.wait_for(go.wait(), timeout=5)
            await send({"type": "http.response.body", "body": b"event-%d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    server = await start_server(app)
    received = []
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        async with client.stream("GET", f"https://127.0.0.1:{server.port}/watch") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            produced[0].set()
            async for line in response.aiter_lines():
                received.append(line)
                if len(received) < len(produced):
                    produced[len(received)].set()
    assert received == ["event-0", "event-1", "event-2"]


async def test_chunks_sent_in_one_loop_turn_go_out_in_one_write(
    start_server: StartServer,
    cluster_pki: pki.ClusterPKI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A burst of streamed chunks (a watch batch) is one transport write, still in order."""
    flushed: list[int] = []
    original_flush = http._HttpProtocol.flush

    def counting_flush(self: http._HttpProtocol) -> None:
        if self._queued:
            flushed.append(len(self._queued))
        original_flush(self)

    monkeypatch.setattr(http._HttpProtocol, "flush", counting_flush)
    go = asyncio.Event()

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await go.wait()
        for i in range(5):  # no await yields to the loop in between
            await send({"type": "http.response.body", "body": b"event-%d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    server = await start_server(app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        async with client.stream("GET", f"https://127.0.0.1:{server.port}/watch") as response:
            go.set()
            received = [line async for line in response.aiter_lines()]
    assert received == [f"event-{i}" for i in range(5)]
    assert flushed == [5]


async def test_headers_are_flushed_before_the_first_streamed_chunk(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """A streaming response whose first event is late still sends its status line at once."""
    release = asyncio.Event()

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()
        await send({"type": "http.response.body", "body": b"done"})

    server = await start_server(app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        async with client.stream("GET", f"https://127.0.0.1:{server.port}/") as response:
            assert response.status_code == 200
            release.set()
            assert await response.aread() == b"done"


@pytest.mark.parametrize(
    "with_cert", [pytest.param(True, id="cert"), pytest.param(False, id="anonymous")]
)
async def test_client_certificate_identity_is_visible_only_when_presented(
    start_server: StartServer,
    cluster_pki: pki.ClusterPKI,
    tmp_path: Path,
    with_cert: bool,
) -> None:
    """A verified client cert appears in the tls extension (CN=user, O=groups); without one there is none."""
    server = await start_server(echo_app)
    cert = pki.issue_client_cert(cluster_pki.ca, user="alice", groups=["dev", "ops"])
    context = client_context(cluster_pki, tmp_path, cert if with_cert else None)
    async with httpx.AsyncClient(verify=context) as client:
        seen = (await client.get(f"https://127.0.0.1:{server.port}/")).json()
    assert seen["identity"] == (["alice", ["dev", "ops"]] if with_cert else None)


@pytest.mark.parametrize(
    "tls_version",
    [
        pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
        pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
    ],
)
async def test_client_certificate_from_another_ca_is_refused_before_the_app_runs(
    start_server: StartServer,
    cluster_pki: pki.ClusterPKI,
    tmp_path: Path,
    tls_version: ssl.TLSVersion,
) -> None:
    """CERT_OPTIONAL still verifies a presented certificate: one from a foreign CA never reaches the app."""
    calls: list[Scope] = []

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        calls.append(scope)
        await respond_json(send, {})

    server = await start_server(app)
    stranger = pki.issue_client_cert(
        pki.generate_ca("evil"), user="mallory", groups=["system:masters"]
    )
    context = client_context(cluster_pki, tmp_path, stranger)
    context.maximum_version = tls_version
    # Under TLS 1.3 the client finishes its handshake before the server has
    # checked the certificate, so the refusal shows up on the first read.
    async with httpx.AsyncClient(verify=context) as client:
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(f"https://127.0.0.1:{server.port}/")
    assert calls == []


@pytest.mark.parametrize(
    ("size", "status"),
    [
        pytest.param(LIMIT, 200, id="at-limit"),
        pytest.param(LIMIT + 1, 413, id="over-limit"),
    ],
)
async def test_request_body_limit_answers_413_with_upstream_status(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path, size: int, status: int
) -> None:
    """A body of exactly 3 MiB is accepted; one byte more gets upstream's RequestEntityTooLarge Status."""
    server = await start_server(echo_app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        response = await client.post(f"https://127.0.0.1:{server.port}/", content=b"x" * size)
    assert response.status_code == status
    if status == 413:
        assert response.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Request entity too large: limit is 3145728",
            "reason": "RequestEntityTooLarge",
            "code": 413,
        }


async def test_chunked_request_body_over_the_limit_gets_413(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """A chunked upload is cut off with 413 as soon as it passes the limit, while the app is reading it."""
    server = await start_server(echo_app, max_body_bytes=1000)

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 300

    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        response = await client.post(f"https://127.0.0.1:{server.port}/", content=upload())
    assert response.status_code == 413
    assert response.json()["message"] == "Request entity too large: limit is 1000"


async def test_client_going_away_is_delivered_as_http_disconnect(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """A watch-style handler waiting in receive() learns that the client closed the connection."""
    seen: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}\n", "more_body": True})
        seen.set_result(await receive())

    server = await start_server(app)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        server.port,
        ssl=client_context(cluster_pki, tmp_path),
        server_hostname="localhost",
    )
    writer.write(b"GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert await asyncio.wait_for(seen, timeout=5) == {"type": "http.disconnect"}


async def test_slow_reader_pauses_the_producer_instead_of_buffering(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """send() waits while the transport is paused, so a client that stops reading bounds server memory."""
    sent = [0]
    chunk = b"z" * 65536
    cap = 256 * 1024 * 1024

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while sent[0] < cap:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += len(chunk)

    server = await start_server(app)
    _, writer = await asyncio.open_connection(
        "127.0.0.1",
        server.port,
        ssl=client_context(cluster_pki, tmp_path),
        server_hostname="localhost",
    )
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(1.0)
    stalled_at = sent[0]
    await asyncio.sleep(0.3)
    writer.close()
    assert 0 < stalled_at == sent[0] < 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", 400, id="garbage"),
        pytest.param(
            b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", 431, id="huge-headers"
        ),
    ],
)
async def test_unparseable_requests_are_answered_and_closed_without_the_app(
    start_server: StartServer,
    cluster_pki: pki.ClusterPKI,
    tmp_path: Path,
    request_bytes: bytes,
    status: int,
) -> None:
    """Malformed requests get a 400 and oversized headers a 431, then the connection closes."""
    calls: list[Scope] = []

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        calls.append(scope)

    server = await start_server(app)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        server.port,
        ssl=client_context(cluster_pki, tmp_path),
        server_hostname="localhost",
    )
    writer.write(request_bytes)
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 %d " % status)
    assert calls == []


async def test_app_exception_before_response_becomes_500_status(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """An app that raises before answering yields a 500 metav1.Status rather than a dropped connection."""

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        raise ValueError("boom")

    server = await start_server(app)
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        response = await client.get(f"https://127.0.0.1:{server.port}/")
    assert (response.status_code, response.json()["reason"]) == (500, "InternalError")


async def ws_app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    preferred = [
        p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io") if p in scope["subprotocols"]
    ]
    await send({"type": "websocket.accept", "subprotocol": preferred[0] if preferred else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 1000})
            return
        await send(
            {"type": "websocket.send", **{k: message[k] for k in ("text", "bytes") if k in message}}
        )


class WebSocketClient:
    """A tiny wsproto client over an asyncio TLS stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = WSConnection(ConnectionType.CLIENT)

    async def next_event(self) -> ws_events.Event:
        while True:
            for event in self.conn.events():
                return event
            if self.reader.at_eof():
                raise EOFError("the server closed the connection")
            data = await asyncio.wait_for(self.reader.read(65536), timeout=5)
            self.conn.receive_data(data or None)

    def send(self, event: ws_events.Event) -> None:
        self.writer.write(self.conn.send(event))


async def test_websocket_echoes_text_and_binary_with_negotiated_subprotocol(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """An Upgrade: websocket request reaches the app as a websocket scope; its chosen subprotocol is sent back."""
    server = await start_server(ws_app)
    client = WebSocketClient(
        *await asyncio.open_connection(
            "127.0.0.1",
            server.port,
            ssl=client_context(cluster_pki, tmp_path),
            server_hostname="localhost",
        )
    )
    client.send(
        ws_events.Request(
            host="localhost",
            target="/api/v1/namespaces/default/pods/p/exec?command=sh",
            subprotocols=["v4.channel.k8s.io", "v5.channel.k8s.io"],
        )
    )
    accepted = await client.next_event()
    assert isinstance(accepted, ws_events.AcceptConnection)
    assert accepted.subprotocol == "v5.channel.k8s.io"
    client.send(ws_events.TextMessage(data="hello"))
    client.send(ws_events.BytesMessage(data=b"\x01stdin"))
    echoed = [await client.next_event(), await client.next_event()]
    assert [(type(e).__name__, e.data) for e in echoed] == [  # type: ignore[attr-defined]
        ("TextMessage", "hello"),
        ("BytesMessage", b"\x01stdin"),
    ]
    client.send(ws_events.TextMessage(data="bye"))
    closed = await client.next_event()
    assert isinstance(closed, ws_events.CloseConnection) and closed.code == 1000
    client.writer.close()


async def refuse_plainly(send: http.Send) -> None:
    await send({"type": "websocket.close", "code": 1008})


async def refuse_with_status(send: http.Send) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b'{"reason":"NotFound"}'})


@pytest.mark.parametrize(
    ("refuse", "status", "body"),
    [
        pytest.param(
            refuse_plainly, 403, b"websocket connection refused", id="close-before-accept"
        ),
        pytest.param(refuse_with_status, 404, b'{"reason":"NotFound"}', id="denial-response"),
    ],
)
async def test_websocket_refused_before_accept_gets_a_plain_http_answer(
    start_server: StartServer,
    cluster_pki: pki.ClusterPKI,
    tmp_path: Path,
    refuse: Callable[[http.Send], Awaitable[None]],
    status: int,
    body: bytes,
) -> None:
    """Closing before accept answers 403; the denial-response extension sends the app's own status and body."""

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await refuse(send)

    server = await start_server(app)
    client = WebSocketClient(
        *await asyncio.open_connection(
            "127.0.0.1",
            server.port,
            ssl=client_context(cluster_pki, tmp_path),
            server_hostname="localhost",
        )
    )
    client.send(ws_events.Request(host="localhost", target="/exec"))
    rejected = await client.next_event()
    assert isinstance(rejected, ws_events.RejectConnection)
    assert rejected.status_code == status
    data = b""
    while not (event := await client.next_event()).body_finished:  # type: ignore[attr-defined]
        data += event.data  # type: ignore[attr-defined]
    data += event.data  # type: ignore[attr-defined]
    assert body in data
    client.writer.close()


async def test_graceful_shutdown_finishes_in_flight_requests_and_refuses_new_ones(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """shutdown() stops accepting, lets a running request complete, and returns once it has."""
    started = asyncio.Event()

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await respond_json(send, {"ok": True})

    server = await start_server(app)
    url = f"https://127.0.0.1:{server.port}/"
    async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as client:
        in_flight = asyncio.create_task(client.get(url))
        await started.wait()
        stopping = asyncio.create_task(server.shutdown(grace=5.0))
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(verify=client_context(cluster_pki, tmp_path)) as late:
            with pytest.raises(httpx.ConnectError):
                await late.get(url)
        assert (await in_flight).json() == {"ok": True}
        await asyncio.wait_for(stopping, timeout=2)


async def test_shutdown_grace_ends_long_running_requests_with_disconnect(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """A watch still open at the grace deadline sees http.disconnect and shutdown returns promptly."""
    seen: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.set_result(await receive())

    server = await start_server(app)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        server.port,
        ssl=client_context(cluster_pki, tmp_path),
        server_hostname="localhost",
    )
    writer.write(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    loop = asyncio.get_running_loop()
    began = loop.time()
    await server.shutdown(grace=0.3)
    assert loop.time() - began < 2
    assert seen.result() == {"type": "http.disconnect"}
    writer.close()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
async def test_kubectl_reads_version_over_tls_with_the_admin_client_certificate(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """The real kubectl (Go TLS, h2 offered via ALPN) talks HTTP/1.1 to us and authenticates as admin."""
    identities: list[Any] = []
    version = {
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.0-kajitori",
        "platform": "linux/amd64",
    }

    async def app(scope: Scope, receive: http.Receive, send: http.Send) -> None:
        tls = scope["extensions"].get("tls")
        identities.append(pki.identity_from_cert(tls["client_cert_chain"][0]) if tls else None)
        await respond_json(send, version if scope["path"] == "/version" else {}, status=200)

    server = await start_server(app)
    config = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(
        config,
        server_url=f"https://127.0.0.1:{server.port}",
        ca_pem=cluster_pki.ca.cert_pem,
        client_cert_pem=cluster_pki.admin.cert_pem,
        client_key_pem=cluster_pki.admin.key_pem,
    )
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(config),
        "version",
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout)["serverVersion"]["gitVersion"] == "v1.37.0-kajitori"
    assert identities and identities[0] == ("kubernetes-admin", ["system:masters"])


async def test_keep_alive_connection_closes_after_idle_timeout_not_while_in_use(
    start_server: StartServer, cluster_pki: pki.ClusterPKI, tmp_path: Path
) -> None:
    """Requests spaced under the keep-alive timeout reuse one connection for longer than the
    timeout; once nothing arrives for the timeout, the server closes it."""
    server = await start_server(echo_app, keep_alive_timeout=0.3)
    context = client_context(cluster_pki, tmp_path)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=context, server_hostname="localhost"
    )
    request = b"GET /x HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n"
    for _ in range(5):  # 5 x 0.15 s: well past one timeout, never idle for one
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        await asyncio.sleep(0.15)
    # Now idle: the server closes the connection (EOF) within a few timeouts.
    assert await asyncio.wait_for(reader.read(), timeout=3.0) == b""
    writer.close()
