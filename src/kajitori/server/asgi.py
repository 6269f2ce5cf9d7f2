"""The minimal ASGI vocabulary the API server needs: a request and responses.

We run our own HTTP server (``server.http``) and want no framework between it
and the handlers: a request is the ASGI scope plus a body reader, a response
is one ``send`` of status and headers and one or more of body.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from kajitori.machinery import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Request:
    """One HTTP request: headers, query and a lazily read body."""

    __slots__ = ("_body", "_headers", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self._headers: dict[str, str] | None = None
        self._body: bytes | None = None

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {}
            for key, value in self.scope["headers"]:
                name = key.decode("latin-1")
                text = value.decode("latin-1")
                if name in self._headers:
                    self._headers[name] = f"{self._headers[name]},{text}"
                else:
                    self._headers[name] = text
        return self._headers

    def header(self, name: str, default: str = "") -> str:
        """One header's value (repeats joined with commas, as ``headers`` joins them).

        Before ``headers`` is built, the raw headers are scanned instead: a
        read handler asks for Accept alone, and the dict would cost more.
        """
        if self._headers is not None:
            return self._headers.get(name, default)
        raw = name.encode("latin-1")
        value: str | None = None
        for key, text in self.scope["headers"]:
            if key == raw:
                decoded = text.decode("latin-1")
                value = decoded if value is None else f"{value},{decoded}"
        return default if value is None else value

    def header_values(self, name: str) -> list[str]:
        raw = name.encode("latin-1")
        return [v.decode("latin-1") for k, v in self.scope["headers"] if k == raw]

    async def body(self) -> bytes:
        if self._body is None:
            chunks = []
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    break
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body


def _header_list(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


@functools.lru_cache(maxsize=64)
def _content_type_header(content_type: str) -> tuple[bytes, bytes]:
    # Responses carry a handful of content types: each encoded once.
    return (b"content-type", content_type.encode("latin-1"))


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    *,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    raw = [_content_type_header(content_type), (b"content-length", b"%d" % len(body))]
    if headers:
        raw += _header_list(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, body: Any, *, headers: list[tuple[str, str]] | None = None
) -> None:
    await send_response(send, status, orjson.dumps(body), "application/json", headers=headers)


async def send_status_error(
    send: Send, exc: errors.StatusError, *, headers: list[tuple[str, str]] | None = None
) -> None:
    extra = list(headers or [])
    if exc.retry_after_seconds:
        extra.append(("retry-after", str(exc.retry_after_seconds)))
    await send_json(send, exc.code, exc.to_status(), headers=extra)


async def start_stream(
    send: Send, status: int, content_type: str, headers: list[tuple[str, str]] | None = None
) -> None:
    all_headers = [("content-type", content_type), ("cache-control", "no-cache, private")]
    if headers:
        all_headers.extend(headers)
    await send(
        {"type": "http.response.start", "status": status, "headers": _header_list(all_headers)}
    )


async def send_chunk(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})
