"""HttpServer's protocol over a transport that is not an ``asyncio.Transport`` subclass.

uvloop's transports have asyncio.Transport's methods without deriving from
it; the server must serve over them as over asyncio's own (decision 0076).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kajitori.server import http


class DuckTransport:
    """The transport methods the server calls, recording what it writes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("10.0.0.7", 5555), "sockname": ("10.0.0.1", 6443)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_serves_requests_over_a_duck_typed_transport() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"got " + body})

    server = http.HttpServer(app, host="127.0.0.1", port=0, ssl_context=None)
    protocol = http._HttpProtocol(server)
    transport = DuckTransport()
    assert not isinstance(transport, asyncio.Transport)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\nhi")
    protocol.data_received(b"GET /y HTTP/1.1\r\nhost: h\r\n\r\n")  # pipelined behind it
    for _ in range(50):
        if transport.written.count(b"HTTP/1.1 201") == 2:
            break
        await asyncio.sleep(0)
    first, second = bytes(transport.written).split(b"HTTP/1.1 201 Created\r\n")[1:]
    assert first.endswith(b"\r\n\r\ngot hi") and b"content-length: 6\r\n" in first
    assert second.endswith(b"\r\n\r\ngot ")
    assert [s["path"] for s in seen] == ["/x", "/y"]
    assert seen[0]["client"] == ("10.0.0.7", 5555) and seen[0]["scheme"] == "http"
    assert transport.reading and not transport.closed
    protocol.connection_lost(None)
