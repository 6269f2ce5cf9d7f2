"""rest.Client sends a request again when told to wait, as client-go does (checkWait).

A 429 (API Priority and Fairness' rejection) or a 5xx with a ``Retry-After``
of whole seconds is retried after that long, up to ``rest.MAX_RETRIES``
times; anything else is answered at once. Over HTTPS (``client.http1``,
against a TLS server scripted per request) and in process (an ASGI app
called directly), the two transports components use.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.client.test_http1 import TLSServer

from kajitori.auth import pki
from kajitori.client import rest

TOO_MANY = b"Too many requests, please try again later.\n"
NAMESPACE = orjson.dumps({"kind": "Namespace", "metadata": {"name": "default"}})


def _answer(status: bytes, body: bytes, retry_after: bytes | None) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\n" % len(body)
    if retry_after is not None:
        head += b"retry-after: " + retry_after + b"\r\n"
    return head + b"connection: close\r\n\r\n" + body


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        pytest.param(429, b"1", 1, id="429"),
        pytest.param(503, b"2", 2, id="503"),
        pytest.param(500, b" 3 ", 3, id="500-spaces"),
        pytest.param(429, b"", None, id="429-without-header"),
        pytest.param(429, b"Wed, 21 Oct 2026 07:28:00 GMT", None, id="http-date"),
        pytest.param(404, b"1", None, id="404"),
        pytest.param(409, b"1", None, id="409"),
    ],
)
def test_only_429_and_5xx_with_seconds_ask_for_a_wait(
    status: int, retry_after: bytes, expected: int | None
) -> None:
    assert rest.retry_delay(status, retry_after) == expected


async def test_a_429_with_retry_after_is_sent_again_over_https(tmp_path: Path) -> None:
    answers = [
        _answer(b"429 Too Many Requests", TOO_MANY, b"0"),
        _answer(b"503 Service Unavailable", b"starting", b"0"),
        _answer(b"200 OK", NAMESPACE, None),
    ]

    async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answers.pop(0))
        await writer.drain()

    async with TLSServer(tmp_path, scripted) as server:
        client = rest.Client.from_kubeconfig(server.config())
        try:
            got = await client.get(rest.NAMESPACES, "default")
        finally:
            await client.aclose()
    assert got["metadata"]["name"] == "default"
    assert len(server.requests) == 3
    assert all(head.startswith(b"GET /api/v1/namespaces/default ") for head in server.requests)


async def test_retries_end_after_max_retries_with_the_last_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest, "MAX_RETRIES", 2)

    async def always(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer(b"429 Too Many Requests", TOO_MANY, b"0"))
        await writer.drain()

    async with TLSServer(tmp_path, always) as server:
        client = rest.Client.from_kubeconfig(server.config())
        try:
            with pytest.raises(rest.ApiError) as caught:
                await client.create(rest.CONFIGMAPS, {"metadata": {"name": "a"}})
        finally:
            await client.aclose()
    assert len(server.requests) == 3  # the first and two retries
    assert (caught.value.code, caught.value.reason) == (429, "TooManyRequests")
    assert caught.value.status["message"] == TOO_MANY.decode().strip()


async def test_a_429_without_retry_after_is_answered_at_once(tmp_path: Path) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer(b"429 Too Many Requests", TOO_MANY, None))
        await writer.drain()

    async with TLSServer(tmp_path, once) as server:
        client = rest.Client.from_kubeconfig(server.config())
        try:
            with pytest.raises(rest.ApiError) as caught:
                await client.get(rest.NAMESPACES, "default")
        finally:
            await client.aclose()
    assert caught.value.code == 429
    assert len(server.requests) == 1


async def test_in_process_requests_are_retried_with_the_same_body() -> None:
    """The in-process transport reads Retry-After from the app's answer; a retried POST
    carries its body again."""
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        bodies.append(message["body"])
        if len(bodies) < 3:
            headers = [(b"content-type", b"text/plain"), (b"retry-after", b"0")]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": TOO_MANY})
            return
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": message["body"]})

    ca = pki.generate_ca()
    user = pki.issue_client_cert(ca, user="someone", groups=["group"])
    client = rest.Client.in_process(app, client_cert_pem=user.cert_pem)
    try:
        made = await client.create(rest.CONFIGMAPS, {"metadata": {"name": "a"}})
    finally:
        await client.aclose()
    assert made["metadata"]["name"] == "a"
    assert len(bodies) == 3 and len(set(bodies)) == 1
