"""The in-process transport: ASGI semantics, streamed bodies, identity, disconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from kajitori.client import rest, transport
from kajitori.cmd.apiserver import APIServerProcess

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class EchoApp:
    """Answers with what the app saw; ``/stream`` sends chunks until the client goes away."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/stream":
            await self._stream(receive, send)
            return
        message = await receive()
        body = orjson.dumps(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "chain": scope["extensions"]["tls"]["client_cert_chain"],
                "body": message["body"].decode(),
                "accept": dict(scope["headers"]).get(b"accept", b"").decode(),
            }
        )
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def _stream(self, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await self.release.wait()
        await send({"type": "http.response.body", "body": b"second\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()


def _client(app: EchoApp) -> httpx.AsyncClient:
    asgi = transport.InProcessTransport(app, client_cert_pem=CERT.encode())
    return httpx.AsyncClient(transport=asgi, base_url="https://in-process")


async def test_the_request_reaches_the_app_with_the_client_certificate_as_tls_peer() -> None:
    """Method, decoded path, query, body, headers and the caller's PEM chain are in the scope."""
    async with _client(EchoApp()) as http:
        response = await http.post("/api/v1/a%20b", params={"x": "1"}, content=b"{}")
    assert response.status_code == 201
    assert response.json() == {
        "method": "POST",
        "path": "/api/v1/a b",
        "query": "x=1",
        "chain": [CERT],
        "body": "{}",
        "accept": "*/*",
    }


async def test_streamed_chunks_arrive_before_the_app_finishes() -> None:
    """A response body is not buffered: the first chunk is readable while the app waits."""
    app = EchoApp()
    async with _client(app) as http, http.stream("GET", "/stream") as response:
        lines = response.aiter_lines()
        assert await asyncio.wait_for(lines.__anext__(), 1) == "first"
        app.release.set()
        assert await asyncio.wait_for(lines.__anext__(), 1) == "second"
    await asyncio.wait_for(app.disconnected.wait(), 1)


async def test_closing_a_stream_delivers_http_disconnect_to_the_app() -> None:
    """Leaving a stream early, with chunks still unread, tells the app the client has gone."""
    app = EchoApp()
    async with _client(app) as http:
        async with http.stream("GET", "/stream") as response:
            await response.aiter_lines().__anext__()
            app.release.set()
        assert app.disconnected.is_set()


async def test_a_watch_through_the_api_server_yields_events_as_they_happen(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """The real server's watch streams in process; a create is seen while the watch is open."""
    listed = await admin.list(rest.CONFIGMAPS, namespace="default")
    rv = listed["metadata"]["resourceVersion"]
    events = admin.watch(rest.CONFIGMAPS, namespace="default", resource_version=rv)
    first = asyncio.ensure_future(events.__anext__())
    await admin.create(rest.CONFIGMAPS, {"metadata": {"name": "seen", "namespace": "default"}})
    event = await asyncio.wait_for(first, 2)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "seen")
    await events.aclose()  # type: ignore[attr-defined]


async def test_requests_are_authorized_as_the_certificates_user(
    apiserver: APIServerProcess,
) -> None:
    """Authorization still runs: a user without permissions gets upstream's 403 naming it."""
    from kajitori.auth import pki

    assert apiserver.http is not None and apiserver.pki is not None
    nobody = pki.issue_client_cert(apiserver.pki.ca, user="nobody", groups=())
    client = rest.Client.in_process(apiserver.http.app, client_cert_pem=nobody.cert_pem)
    try:
        with pytest.raises(rest.ApiError) as caught:
            await client.list(rest.SECRETS, namespace="default")
    finally:
        await client.aclose()
    assert caught.value.code == 403
    assert 'User "nobody" cannot list resource "secrets"' in caught.value.message


async def test_plain_requests_of_an_in_process_client_reach_the_app_without_httpx() -> None:
    """``rest.Client`` calls the app directly: the same scope, identity and headers as httpx's."""
    app = EchoApp()
    client = rest.Client.in_process(app, client_cert_pem=CERT)  # type: ignore[arg-type]
    other = client.as_identity("other-pem")
    try:
        seen = await client.request(
            "POST",
            "/api/v1/namespaces/a%2Fb/pods",
            body={"k": 1},
            params={"labelSelector": "a in (x y)"},
        )
        as_other = await other.request("GET", "/api/v1/pods")
    finally:
        await client.aclose()
    assert seen["path"] == "/api/v1/namespaces/a/b/pods"
    assert seen["query"] == "labelSelector=a%20in%20%28x%20y%29"
    assert (seen["method"], seen["body"], seen["accept"]) == ("POST", '{"k":1}', "application/json")
    assert seen["chain"] == [CERT]
    assert as_other["chain"] == ["other-pem"]


async def test_an_error_answered_in_process_is_an_api_error(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """A 404 from the real server arrives as ``ApiError`` carrying its Status."""
    with pytest.raises(rest.ApiError) as caught:
        await admin.get(rest.CONFIGMAPS, "absent", namespace="default")
    assert caught.value.not_found
    assert caught.value.reason == "NotFound"


async def test_a_write_whose_answer_is_not_decoded_still_happens_and_still_fails(
    admin: rest.Client,
) -> None:
    """``decode=False`` (a kubelet's status write): ``{}`` comes back, the write is done,
    and an error answer is still an ``ApiError``."""
    body = {"metadata": {"name": "quiet", "namespace": "default"}, "data": {}}
    created = await admin.create(rest.CONFIGMAPS, body)
    changed = {**created, "data": {"a": "1"}}
    assert await admin.update(rest.CONFIGMAPS, changed, decode=False) == {}
    stored = await admin.get(rest.CONFIGMAPS, "quiet", namespace="default")
    assert stored["data"] == {"a": "1"}
    with pytest.raises(rest.ApiError) as caught:
        await admin.update(rest.CONFIGMAPS, changed, decode=False)  # stale resourceVersion
    assert caught.value.conflict


WATCH_CHUNKS = (b'{"a":1}\n{"b"', b":2}\n", b'{"c":', b"3}\n\n", b'{"d":4}')


async def _chunked_watch_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for chunk in WATCH_CHUNKS:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _chunked_watch_response(request: httpx.Request) -> httpx.Response:
    async def body() -> Any:
        for chunk in WATCH_CHUNKS:
            yield chunk

    return httpx.Response(200, content=body())


@pytest.mark.parametrize("via", ["in-process", "httpx"])
async def test_watch_lines_split_or_joined_across_chunks_decode_as_events(via: str) -> None:
    """Events are cut at newlines whatever the chunking (over HTTPS chunks fall anywhere),
    and a last line without its newline is still an event, on every transport."""
    if via == "in-process":
        client = rest.Client.in_process(_chunked_watch_app, client_cert_pem=CERT)
    else:
        mock = httpx.MockTransport(_chunked_watch_response)
        client = rest.Client(httpx.AsyncClient(transport=mock, base_url="https://mock"))
    try:
        events = [event async for event in client.watch(rest.CONFIGMAPS)]
    finally:
        await client.aclose()
    assert events == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]
