"""SPDY/3.1 framing, server side, for ``kubectl port-forward`` tunneled over WebSocket.

kubectl 1.31+ port-forwards over a WebSocket whose subprotocol is
``SPDY/3.1+portforward.k8s.io``: the WebSocket's binary messages carry a
SPDY/3.1 byte stream (client-go's tunneling dialer), in which kubectl opens
one ``error`` and one ``data`` stream per local connection, each with the
headers ``streamtype``, ``port`` and ``requestid``. This module is the part of
SPDY that needs: frames (draft 3: control frames with a 16-bit type, data
frames with a 31-bit stream id), header blocks compressed with zlib over the
protocol's fixed dictionary, replies, FIN, RST_STREAM, PING and GOAWAY.
Windows are granted back as data arrives (WINDOW_UPDATE); like spdystream we
do not hold our own sends to the peer's window.

``Session.feed`` takes bytes in any split; new streams go to ``on_stream``.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5
_MAX_FRAME = (1 << 24) - 1

# The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1):
# these words, each prefixed by its length in four bytes, then this text.
_DICTIONARY_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
    "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
)  # fmt: skip
_DICTIONARY_TEXT = (
    "10010120120220520630030230330430530630740240540640740840941041141241341441541641"
    "7502504505203 Non-Authoritative Information204 No Content301 Moved Permanently40"
    "0 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept O"
    "ct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,imag"
    "e/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/"
    "javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1"
    ",utf-,*,enq=0."
)
DICTIONARY = (
    b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICTIONARY_WORDS)
    + _DICTIONARY_TEXT.encode()
)

Headers = dict[str, str]
Send = Callable[[bytes], Awaitable[None]]


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


def encode_headers(headers: Headers) -> bytes:
    """An uncompressed SPDY/3 header block (names lowercased, as the protocol wants)."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(raw_name)), raw_name]
        out += [struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(out)


def decode_headers(block: bytes) -> Headers:
    (count,) = struct.unpack_from(">I", block)
    offset, headers = 4, {}
    for _ in range(count):
        (size,) = struct.unpack_from(">I", block, offset)
        name = block[offset + 4 : offset + 4 + size].decode("latin-1")
        offset += 4 + size
        (size,) = struct.unpack_from(">I", block, offset)
        headers[name] = block[offset + 4 : offset + 4 + size].decode("latin-1")
        offset += 4 + size
    return headers


def control_frame(kind: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, flags: int = 0) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class Stream:
    """One SPDY stream opened by the peer: its headers, what it sent, and our half."""

    def __init__(self, session: Session, stream_id: int, headers: Headers) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: the peer's FIN
        self.closed = False  # our half

    async def read(self) -> bytes | None:
        """The next data from the peer; None once it closed its half (or reset the stream)."""
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), 32 * 1024):
            await self.session.send(data_frame(self.id, data[start : start + 32 * 1024]))

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.session.send(data_frame(self.id, b"", FLAG_FIN))


class Session:
    """The server side of one SPDY/3.1 connection over ``send`` and ``feed``."""

    def __init__(self, send: Send, on_stream: Callable[[Stream], None]) -> None:
        self._send = send
        self.on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zdict=DICTIONARY)
        self._lock = asyncio.Lock()
        self.gone = False

    async def send(self, frame: bytes) -> None:
        async with self._lock:  # frames are never interleaved
            await self._send(frame)

    async def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 8:
            (length,) = struct.unpack_from(">I", self._buffer, 4)
            length &= _MAX_FRAME
            if len(self._buffer) < 8 + length:
                return
            frame = bytes(self._buffer[: 8 + length])
            del self._buffer[: 8 + length]
            await self._frame(frame)

    def close_all(self) -> None:
        """The connection ended: every stream's peer half is over."""
        self.gone = True
        for stream in self.streams.values():
            stream.incoming.put_nowait(None)

    async def _frame(self, frame: bytes) -> None:
        first, second = struct.unpack_from(">HH", frame)
        flags, payload = frame[4], frame[8:]
        if not first & 0x8000:
            stream_id = struct.unpack_from(">I", frame)[0] & 0x7FFFFFFF
            await self._data(stream_id, flags, payload)
            return
        if first & 0x7FFF != VERSION:
            raise ProtocolError(f"unsupported SPDY version {first & 0x7FFF}")
        if second == SYN_STREAM:
            await self._syn_stream(flags, payload)
        elif second == RST_STREAM:
            stream = self.streams.pop(struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF, None)
            if stream is not None:
                stream.closed = True
                stream.incoming.put_nowait(None)
        elif second == PING:
            await self.send(control_frame(PING, payload[:4]))
        elif second == GOAWAY:
            self.close_all()
        elif second == HEADERS:
            self._inflate.decompress(payload[4:])  # keep the shared zlib state in step
        # SETTINGS, WINDOW_UPDATE and SYN_REPLY (never sent by a client) need nothing.

    async def _syn_stream(self, flags: int, payload: bytes) -> None:
        stream_id = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
        try:
            headers = decode_headers(self._inflate.decompress(payload[10:]))
        except (zlib.error, struct.error) as exc:
            raise ProtocolError(f"bad header block: {exc}") from None
        stream = Stream(self, stream_id, headers)
        self.streams[stream_id] = stream
        block = self._deflate.compress(encode_headers({}))
        block += self._deflate.flush(zlib.Z_SYNC_FLUSH)
        await self.send(control_frame(SYN_REPLY, struct.pack(">I", stream_id) + block))
        if flags & FLAG_FIN:
            stream.incoming.put_nowait(None)
        self.on_stream(stream)

    async def _data(self, stream_id: int, flags: int, payload: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if payload:
            stream.incoming.put_nowait(payload)
            # Grant the window back at once: the consumer copies to a socket.
            update = struct.pack(">II", stream_id, len(payload))
            await self.send(control_frame(WINDOW_UPDATE, update))
        if flags & FLAG_FIN:
            stream.incoming.put_nowait(None)
