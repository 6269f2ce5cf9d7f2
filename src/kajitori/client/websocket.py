"""A small asyncio WebSocket client, and the channel protocols of Kubernetes' streams.

Used by the API server to reach a kubelet's ``/exec``, ``/attach`` and
``/portForward`` (it pipes frames between kubectl and the kubelet), and by
tests. ``wsproto`` does the framing and the handshake; this module owns the
socket. The channel protocols (``v4``/``v5.channel.k8s.io``, upstream's
k8s.io/apimachinery/pkg/util/remotecommand and httpstream/wsstream) prefix
every binary message with one byte naming its stream:

====  ======  ====================================================
byte  stream  content
====  ======  ====================================================
0     stdin   client → container
1     stdout  container → client
2     stderr  container → client
3     error   one ``metav1.Status`` JSON when the command ended
4     resize  ``{"Width": w, "Height": h}`` client → container (tty)
255   close   v5 only: ``[255, n]`` — the client closed stream n
====  ======  ====================================================
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from collections.abc import Sequence
from typing import Any

import orjson
from wsproto import ConnectionType
from wsproto import events as ws_events
from wsproto.connection import Connection

Object = dict[str, Any]

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
# Most preferred first, as upstream's kubelet (v1 and v2 are still accepted:
# the official Python client offers "channel.k8s.io" alone unless told).
CHANNEL_PROTOCOLS = (V5, V4, V3, V2, V1)
PORT_FORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")


def exit_status(code: int, argv: Sequence[str] = ()) -> Object:
    """The error-channel Status for a command's end: Success, or NonZeroExitCode with its code.

    As upstream's kubelet writes it: the CRI's CodeExitError text inside
    "command terminated with non-zero exit code: ...", the code as the
    ``ExitCode`` cause kubectl turns into its own exit status.
    """
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: "
        f"command '{' '.join(argv)}' exited with {code}: ",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> Object:
    """The error-channel Status for a stream that failed before or while running."""
    return {"metadata": {}, "status": "Failure", "message": message}


def choose_protocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first of ``supported`` (our preference) that the client offered."""
    for protocol in supported:
        if protocol in offered:
            return protocol
    return None


class HandshakeError(Exception):
    """The server answered the upgrade with plain HTTP (a Status, usually)."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(f"websocket upgrade refused with HTTP {status_code}")
        self.status_code = status_code
        self.body = body


class WebSocket:
    """One client connection: ``await connect(...)``, then ``receive()``/``send()``/``close()``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        # The handshake is ours (``connect``); wsproto does frames only.
        self._conn = Connection(ConnectionType.CLIENT)
        self._inbox: list[bytes | str | None] = []
        self._fragments: list[Any] = []
        self.subprotocol: str | None = None
        self.closed = False

    async def receive(self) -> bytes | str | None:
        """The next whole message; ``None`` once the connection has closed."""
        while not self._inbox:
            if self.closed:
                return None
            data = await self._reader.read(65536)
            if not data:
                self.closed = True
                return None
            self._conn.receive_data(data)
            self._drain_events()
        return self._inbox.pop(0)

    async def send(self, data: bytes | str) -> None:
        if self.closed:
            raise ConnectionError("the websocket is closed")
        message: Any = (
            ws_events.TextMessage(data=data)
            if isinstance(data, str)
            else ws_events.BytesMessage(data=data)
        )
        self._writer.write(self._conn.send(message))
        await self._writer.drain()

    async def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._writer.write(self._conn.send(ws_events.CloseConnection(code=code)))
                await self._writer.drain()
            except (OSError, RuntimeError, Exception):  # already gone, or wsproto state
                pass
        self._writer.close()

    def _drain_events(self) -> None:
        for event in self._conn.events():
            if isinstance(event, ws_events.Message):
                self._fragments.append(event.data)
                if event.message_finished:
                    parts, self._fragments = self._fragments, []
                    joined: bytes | str = (
                        "".join(parts) if isinstance(parts[0], str) else b"".join(parts)
                    )
                    self._inbox.append(joined)
            elif isinstance(event, ws_events.Ping):
                self._writer.write(self._conn.send(event.response()))
            elif isinstance(event, ws_events.CloseConnection):
                try:
                    self._writer.write(self._conn.send(event.response()))
                except Exception:
                    pass
                self.closed = True


async def connect(
    host: str,
    port: int,
    target: str,
    *,
    ssl_context: ssl.SSLContext | None,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    server_hostname: str | None = None,
    timeout: float = 10.0,
) -> WebSocket:
    """Open ``wss://host:port{target}`` offering ``subprotocols``; HandshakeError if refused."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            host,
            port,
            ssl=ssl_context,
            server_hostname=(server_hostname or host) if ssl_context else None,
        ),
        timeout,
    )
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    lines += [f"{name}: {value}" for name, value in headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    code = int(status_line.split(" ", 2)[1])
    answer = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            answer[name.strip().lower()] = value.strip()
    if code != 101:
        length = int(answer.get("content-length") or 0)
        body = await reader.readexactly(length) if length else await reader.read(65536)
        writer.close()
        raise HandshakeError(code, body)
    socket = WebSocket(reader, writer)
    socket.subprotocol = answer.get("sec-websocket-protocol") or None
    return socket


def resize_message(width: int, height: int) -> bytes:
    return bytes([RESIZE]) + orjson.dumps({"Width": width, "Height": height})
