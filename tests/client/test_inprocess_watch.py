"""In-process watches without httpx: ``rest.Client.watch`` over ``InProcessTransport.stream``.

The same semantics as a watch through httpx or HTTPS: the request's scope and
identity, a bounded buffer that pauses the app, ``http.disconnect`` when the
reader leaves, and ``ApiError`` with the server's Status for a refused watch
and for an ``ERROR`` event.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from kajitori.auth import pki
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _line(kind: str, name: str, rv: int) -> bytes:
    obj = {"kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": str(rv)}}
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


class StubWatch:
    """An app answering a watch with ``chunks``, then waiting for the client to leave."""

    def __init__(self, chunks: list[bytes], status: int = 200) -> None:
        self.chunks = chunks
        self.status = status
        self.sent = 0
        self.scopes: list[Any] = []
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await receive()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        if self.status >= 300:
            await send({"type": "http.response.body", "body": self.chunks[0]})
            return
        for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.sent += 1
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()


class Recorder:
    """Wraps the real app: records each watch request's ASGI messages and its end."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received: list[str] = []
        self.ended = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if b"watch=true" not in scope["query_string"]:
            await self.app(scope, receive, send)
            return

        async def recording_receive() -> Any:
            message = await receive()
            self.received.append(message["type"])
            return message

        try:
            await self.app(scope, recording_receive, send)
        finally:
            self.ended.set()


def _client(app: Any) -> rest.Client:
    return rest.Client.in_process(app, client_cert_pem=CERT)


async def test_a_watch_sends_its_scope_without_httpx_and_decodes_joined_and_split_lines() -> None:
    """Query, Accept, User-Agent and the certificate reach the app; a chunk of several
    lines (a batch) and a line cut across chunks both decode to events, in order."""
    first, second, third = _line("ADDED", "a", 1), _line("MODIFIED", "b", 2), _line("ADDED", "c", 3)
    app = StubWatch([first + second, third[:7], third[7:]])
    client = _client(app)

    async def no_httpx(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the watch went through httpx")

    client.http.send = no_httpx  # type: ignore[method-assign]
    events = client.watch(rest.CONFIGMAPS, namespace="ns", resource_version="7")
    try:
        seen = [await events.__anext__() for _ in range(3)]
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await client.aclose()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "a"),
        ("MODIFIED", "b"),
        ("ADDED", "c"),
    ]
    scope = app.scopes[0]
    headers = dict(scope["headers"])
    assert scope["path"] == "/api/v1/namespaces/ns/configmaps"
    assert scope["query_string"] == b"watch=true&resourceVersion=7"
    assert headers[b"accept"] == b"application/json"
    assert headers[b"user-agent"].startswith(b"python-httpx")
    assert scope["extensions"]["tls"]["client_cert_chain"] == [CERT]
    assert app.disconnected.is_set()


async def test_leaving_a_watch_early_ends_the_servers_watch(
    apiserver: APIServerProcess,
) -> None:
    """The reader's early exit reaches the real watch handler as http.disconnect, and it ends."""
    assert apiserver.http is not None and apiserver.pki is not None
    recorder = Recorder(apiserver.http.app)
    client = rest.Client.in_process(recorder, client_cert_pem=apiserver.pki.admin.cert_pem)
    try:
        listed = await client.list(rest.CONFIGMAPS, namespace="default")
        rv = listed["metadata"]["resourceVersion"]
        events = client.watch(rest.CONFIGMAPS, namespace="default", resource_version=rv)
        first = asyncio.ensure_future(events.__anext__())
        for name in ("one", "two"):
            await client.create(
                rest.CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}}
            )
        event = await asyncio.wait_for(first, 5)
        assert event["object"]["metadata"]["name"] == "one"
        assert not recorder.ended.is_set()
        await events.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(recorder.ended.wait(), 5)
    finally:
        await client.aclose()
    assert recorder.received[-1] == "http.disconnect"


async def test_a_slow_reader_pauses_the_app_at_the_buffer_bound() -> None:
    """The app blocks once ``max_buffered_chunks`` chunks are unread; reading resumes it,
    and every event still arrives in order."""
    app = StubWatch([_line("ADDED", f"c{i}", i) for i in range(50)])
    client = _client(app)
    assert client._direct is not None
    client._direct.max_buffered_chunks = 4
    events = client.watch(rest.CONFIGMAPS)
    try:
        seen = [await events.__anext__()]
        for _ in range(20):  # give the app every chance to run ahead
            await asyncio.sleep(0)
        assert app.sent == 1 + 4  # the chunk read, and a full buffer
        seen += [await events.__anext__() for _ in range(49)]
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await client.aclose()
    assert [e["object"]["metadata"]["name"] for e in seen] == [f"c{i}" for i in range(50)]
    assert app.sent == 50


@pytest.mark.parametrize("code,reason", [(403, "Forbidden"), (410, "Expired")])
async def test_a_refused_watch_raises_the_servers_status(code: int, reason: str) -> None:
    """A non-2xx answer is an ApiError carrying the Status the app sent, not an event."""
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": f"refused with {code}",
        "reason": reason,
        "code": code,
    }
    client = _client(StubWatch([orjson.dumps(status)], status=code))
    try:
        with pytest.raises(rest.ApiError) as caught:
            await client.watch(rest.CONFIGMAPS).__anext__()
    finally:
        await client.aclose()
    assert (caught.value.code, caught.value.reason) == (code, reason)
    assert caught.value.message == f"refused with {code}"


async def test_an_error_event_raises_after_the_events_before_it() -> None:
    """An ERROR event (410 Expired mid-stream) is raised as ApiError once earlier events are read."""
    status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410}
    error = orjson.dumps({"type": "ERROR", "object": status}) + b"\n"
    app = StubWatch([_line("ADDED", "a", 1) + error])
    client = _client(app)
    events = client.watch(rest.CONFIGMAPS)
    try:
        assert (await events.__anext__())["object"]["metadata"]["name"] == "a"
        with pytest.raises(rest.ApiError) as caught:
            await events.__anext__()
    finally:
        await client.aclose()
    assert caught.value.gone
    await asyncio.wait_for(app.disconnected.wait(), 5)


async def test_a_watch_is_authorized_as_the_identity_of_its_client(
    apiserver: APIServerProcess,
) -> None:
    """``as_identity`` holds for watches: the same transport watches as admin, and is refused
    as a user without permissions, with upstream's 403 naming that user."""
    assert apiserver.http is not None and apiserver.pki is not None
    nobody = pki.issue_client_cert(apiserver.pki.ca, user="nobody", groups=())
    client = rest.Client.in_process(apiserver.http.app, client_cert_pem=nobody.cert_pem)
    as_admin = client.as_identity(apiserver.pki.admin.cert_pem)
    try:
        with pytest.raises(rest.ApiError) as caught:
            await client.watch(rest.SECRETS, namespace="default").__anext__()
        events = as_admin.watch(rest.NAMESPACES, timeout_seconds=5)
        first = await asyncio.wait_for(events.__anext__(), 5)
        await events.aclose()  # type: ignore[attr-defined]
    finally:
        await client.aclose()
    assert caught.value.code == 403
    assert 'User "nobody" cannot watch resource "secrets"' in caught.value.message
    assert first["type"] == "ADDED"


async def test_an_app_failing_before_it_answers_is_a_read_error() -> None:
    """As a dropped connection: ``httpx.ReadError``, which the informers catch and retry."""

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    client = _client(failing)
    try:
        with pytest.raises(httpx.ReadError):
            await client.watch(rest.CONFIGMAPS).__anext__()
    finally:
        await client.aclose()
