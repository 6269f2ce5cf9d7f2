"""rest.Client over HTTPS through ``client.http1``: keep-alive, retries, watches, credentials, errors.

The API server is the real one (the ``apiserver`` fixture, in this loop);
a TCP proxy in front of it lets a test cut connections as a server closing
them would, and a small TLS server sends watch bodies cut exactly where a
test wants them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import pytest

from kajitori.auth import pki
from kajitori.client import http1, kubeconfig, rest
from kajitori.cmd.apiserver import APIServerProcess

SELFSUBJECTREVIEWS = rest.Resource("authentication.k8s.io", "v1", "selfsubjectreviews", False)


class Proxy:
    """Forwards TCP connections to ``port``; ``drop`` cuts every client connection at once."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.open: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def drop(self) -> None:
        for writer in list(self.open):
            writer.transport.abort()

    async def stop(self) -> None:
        self.drop()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open.add(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self._tasks.difference_update(pipes)
            self.open.discard(writer)
            writer.transport.abort()
            up_writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def _config(apiserver: APIServerProcess, *, port: int = 0) -> kubeconfig.KubeConfig:
    config = kubeconfig.load_kubeconfig(apiserver.config.kubeconfig_path)
    if port:
        return kubeconfig.KubeConfig(
            context=config.context,
            server=f"https://127.0.0.1:{port}",
            ca_pem=config.ca_pem,
            client_cert_pem=config.client_cert_pem,
            client_key_pem=config.client_key_pem,
        )
    return config


def _pool(client: rest.Client) -> http1.Pool:
    assert isinstance(client.http, http1.PooledAsyncClient)
    return client.http.pool


@pytest.fixture
async def proxy(apiserver: APIServerProcess) -> AsyncIterator[Proxy]:
    assert apiserver.http is not None
    running = Proxy(apiserver.http.port)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def proxied(apiserver: APIServerProcess, proxy: Proxy) -> AsyncIterator[rest.Client]:
    """An admin client reaching the API server through ``proxy``."""
    client = rest.Client.from_kubeconfig(_config(apiserver, port=proxy.port))
    try:
        yield client
    finally:
        await client.aclose()


async def test_requests_reuse_keep_alive_connections(proxied: rest.Client, proxy: Proxy) -> None:
    """One connection serves requests one after another; concurrency opens at most MAX_IN_FLIGHT."""
    for _ in range(10):
        await proxied.get(rest.NAMESPACES, "default")
    assert (_pool(proxied).opened, proxy.accepted) == (1, 1)
    await asyncio.gather(*(proxied.get(rest.NAMESPACES, "default") for _ in range(30)))
    opened = _pool(proxied).opened
    assert 1 < opened <= rest.MAX_IN_FLIGHT
    assert _pool(proxied).idle == opened  # all kept for the next requests
    for _ in range(10):
        await proxied.list(rest.CONFIGMAPS, namespace="default")
    assert _pool(proxied).opened == proxy.accepted == opened


async def test_a_get_on_a_connection_the_server_closed_is_sent_again(
    proxied: rest.Client, proxy: Proxy
) -> None:
    """Go's rule: a reused connection that fails before any answer byte is retried for a GET."""
    await proxied.get(rest.NAMESPACES, "default")
    proxy.drop()  # the connection is cut while the client still holds it as idle
    namespace = await proxied.get(rest.NAMESPACES, "default")
    assert namespace["metadata"]["name"] == "default"
    assert (_pool(proxied).opened, _pool(proxied).retried) == (2, 1)


async def test_a_post_already_written_on_a_closed_connection_is_not_sent_again(
    proxied: rest.Client, proxy: Proxy, admin: rest.Client
) -> None:
    """A POST that was written may have been applied, so it fails instead of being replayed;
    once the client has seen the close, a POST simply goes on a fresh connection."""
    body = {"metadata": {"name": "once", "namespace": "default"}}
    await proxied.get(rest.NAMESPACES, "default")
    proxy.drop()
    with pytest.raises(httpx.RemoteProtocolError):
        await proxied.create(rest.CONFIGMAPS, body)
    assert _pool(proxied).retried == 0
    await proxied.get(rest.NAMESPACES, "default")  # a fresh connection
    proxy.drop()
    while _pool(proxied).idle:  # the client notices the close
        await asyncio.sleep(0.01)
    created = await proxied.create(
        rest.CONFIGMAPS, {"metadata": {"name": "twice"}, "data": {}}, namespace="default"
    )
    assert created["metadata"]["name"] == "twice"
    assert (await admin.get(rest.CONFIGMAPS, "twice", namespace="default"))["metadata"]["uid"]


async def test_leaving_a_watch_early_drops_its_connection(
    proxied: rest.Client, proxy: Proxy, admin: rest.Client
) -> None:
    """The rest of a watch is not read: its connection is closed, not given back to the pool."""
    await admin.create(rest.CONFIGMAPS, {"metadata": {"name": "w1", "namespace": "default"}})
    await proxied.get(rest.NAMESPACES, "default")
    events = proxied.watch(rest.CONFIGMAPS, namespace="default")
    async for event in events:
        assert event["object"]["metadata"]["name"] == "w1"
        break
    await events.aclose()  # type: ignore[attr-defined]
    assert _pool(proxied).idle == 0  # the watch took the idle connection and dropped it
    while proxy.open:
        await asyncio.sleep(0.01)
    await proxied.get(rest.NAMESPACES, "default")
    assert _pool(proxied).opened == proxy.accepted == 2


async def test_a_watch_that_the_server_ends_leaves_its_connection_for_reuse(
    proxied: rest.Client, proxy: Proxy, admin: rest.Client
) -> None:
    await admin.create(rest.CONFIGMAPS, {"metadata": {"name": "w2", "namespace": "default"}})
    names = [
        event["object"]["metadata"]["name"]
        async for event in proxied.watch(rest.CONFIGMAPS, namespace="default", timeout_seconds=1)
    ]
    assert names == ["w2"]
    assert _pool(proxied).idle == 1
    await proxied.get(rest.NAMESPACES, "default")
    assert _pool(proxied).opened == proxy.accepted == 1


async def test_errors_carry_the_same_status_as_through_httpx(apiserver: APIServerProcess) -> None:
    """404 and 409 raise ApiError with the server's Status, exactly as the httpx path did."""
    config = _config(apiserver)
    lean = rest.Client.from_kubeconfig(config)
    old = rest.Client(
        httpx.AsyncClient(base_url=config.server, verify=config.ssl_context(), timeout=30)
    )
    try:
        for client in (lean, old):
            with pytest.raises(rest.ApiError):
                await client.get(rest.CONFIGMAPS, "missing", namespace="default")
        await lean.create(rest.CONFIGMAPS, {"metadata": {"name": "dup", "namespace": "default"}})
        failures = [await _failures(lean), await _failures(old)]
        assert failures[0] == failures[1]
        assert [status["code"] for status in failures[0]] == [404, 409, 404]
        assert failures[0][0]["reason"] == "NotFound"
        assert failures[0][1]["reason"] == "AlreadyExists"
    finally:
        await lean.aclose()
        await old.aclose()


async def _failures(client: rest.Client) -> list[dict[str, object]]:
    """The Status of a 404, a 409 and a 404 for a path the server does not serve."""
    statuses = []
    for call in (
        client.get(rest.CONFIGMAPS, "missing", namespace="default"),
        client.create(rest.CONFIGMAPS, {"metadata": {"name": "dup", "namespace": "default"}}),
        client.request("GET", "/no/such/path"),
    ):
        with pytest.raises(rest.ApiError) as caught:
            await call
        statuses.append(caught.value.status)
    return statuses


async def test_a_bearer_token_authenticates(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """A kubeconfig with a token (a service account's, from TokenRequest) and no client cert."""
    await admin.create(
        rest.SERVICEACCOUNTS, {"metadata": {"name": "reader", "namespace": "default"}}
    )
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {"name": "reader"},
        "spec": {},
    }
    answer = await admin.create(
        rest.SERVICEACCOUNTS, request, namespace="default", subresource="token"
    )
    admin_config = _config(apiserver)
    config = kubeconfig.KubeConfig(
        context="token",
        server=admin_config.server,
        ca_pem=admin_config.ca_pem,
        token=answer["status"]["token"],
    )
    client = rest.Client.from_kubeconfig(config)
    try:
        review = await client.create(
            SELFSUBJECTREVIEWS,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        assert review["status"]["userInfo"]["username"] == "system:serviceaccount:default:reader"
        with pytest.raises(rest.ApiError) as caught:
            await client.list(rest.SECRETS, namespace="kube-system")
        assert caught.value.code == 403
    finally:
        await client.aclose()


# ----- a TLS server of our own, for what the real one never does -----------------


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TLSServer:
    """A TLS server on 127.0.0.1 with a certificate from its own CA for ``names``."""

    def __init__(self, tmp_path: Path, handler: Handler, *, ip: bool = True) -> None:
        self.ca = pki.generate_ca()
        serving = pki.issue_serving_cert(
            self.ca, dns_names=["other.example"], ip_addresses=["127.0.0.1"] if ip else []
        )
        cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.handler = handler
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> TLSServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.url = f"https://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def config(
        self, ca_pem: bytes | None = None, token: str | None = None
    ) -> kubeconfig.KubeConfig:
        return kubeconfig.KubeConfig(
            context="test", server=self.url, ca_pem=ca_pem or self.ca.cert_pem, token=token
        )


def _event(name: str) -> bytes:
    return orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": name}}}) + b"\n"


async def test_watch_events_split_across_records_and_joined_in_one(tmp_path: Path) -> None:
    """Events cut anywhere (inside a chunk-size line, inside an event) or sent several to a
    record all come out whole and in order."""
    one, two, three, four, five = (_event(f"cm-{i}") for i in range(5))
    joined = two + three + four

    async def watch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writes = [
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n",
            b"transfer-encoding: chunked\r\n\r\n",
            b"%x" % len(one),  # the chunk-size line itself cut in two records
            b"\r\n" + one[:7],
            one[7:20],
            one[20:] + b"\r\n",
            b"%x\r\n%s\r\n" % (len(joined), joined),  # three events in one record
            b"%x\r\n%s\r\n" % (len(five) - 9, five[:-9]),  # one event in two chunks
            b"9\r\n%s\r\n0\r\n\r\n" % five[-9:],
        ]
        for data in writes:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(0.02)  # a record of its own, and a read of its own

    async with TLSServer(tmp_path, watch) as server:
        client = rest.Client.from_kubeconfig(server.config(token="s3cret"))
        try:
            names = [e["object"]["metadata"]["name"] async for e in client.watch(rest.PODS)]
        finally:
            await client.aclose()
    assert names == ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]
    head = server.requests[0].lower()
    assert head.startswith(b"get /api/v1/pods?watch=true http/1.1\r\n")
    assert b"authorization: bearer s3cret\r\n" in head
    assert b"accept-encoding" not in head


async def test_an_answer_without_a_status_body_is_an_api_error_with_the_reason_phrase(
    tmp_path: Path,
) -> None:
    async def unavailable(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 8\r\n\r\nwarming ")
        await writer.drain()

    async with TLSServer(tmp_path, unavailable) as server:
        client = rest.Client.from_kubeconfig(server.config())
        try:
            with pytest.raises(rest.ApiError) as caught:
                await client.get(rest.NAMESPACES, "default")
        finally:
            await client.aclose()
    assert caught.value.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 503,
        "reason": "ServiceUnavailable",
        "message": "warming",
    }


async def test_a_server_without_a_certificate_from_the_ca_is_refused(tmp_path: Path) -> None:
    """Another CA's server, or the right CA's certificate for another name, fails to connect."""

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise AssertionError("no request may reach an unverified server")

    async with TLSServer(tmp_path, never) as server:
        client = rest.Client.from_kubeconfig(server.config(ca_pem=pki.generate_ca().cert_pem))
        try:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(rest.NAMESPACES, "default")
        finally:
            await client.aclose()
    async with TLSServer(tmp_path, never, ip=False) as server:
        client = rest.Client.from_kubeconfig(server.config())
        try:
            with pytest.raises(httpx.ConnectError, match="IP address mismatch"):
                await client.get(rest.NAMESPACES, "default")
        finally:
            await client.aclose()
    assert server.requests == []


async def test_requests_time_out_between_bytes_but_watches_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request waits DEFAULT_TIMEOUT for the next byte; a watch waits for its events forever."""
    monkeypatch.setattr(rest, "DEFAULT_TIMEOUT", 0.2)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if b"watch=true" in server.requests[-1]:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            await writer.drain()
        await reader.read()  # until the client goes away

    async with TLSServer(tmp_path, silent) as server:
        client = rest.Client.from_kubeconfig(server.config())
        try:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(rest.NAMESPACES, "default")
            waiting = asyncio.ensure_future(anext(aiter(client.watch(rest.PODS))))
            await asyncio.sleep(1.0)  # five request timeouts
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        finally:
            await client.aclose()
