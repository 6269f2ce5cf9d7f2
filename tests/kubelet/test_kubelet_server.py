"""The kubelet API (kubelet/server.py): CRI logs, exec over WebSocket channels, authn/authz.

Pure parts (CRI parsing and the log options) are tested directly; the rest
over real HTTPS against an in-process node whose streams come from
``FakeStreamingRuntime`` (commands run as local processes).
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.kubelet.fake_streaming import StreamingCluster

from kajitori.auth import pki
from kajitori.client import rest
from kajitori.client import websocket as ws
from kajitori.kubelet import server as kubelet_server
from kajitori.kubelet import spdy, streaming

T0 = 1_700_000_000.0


# ----- CRI log files ------------------------------------------------------------------------


def _log(tmp_path: Path, entries: list[tuple[str, bytes, float, bool]]) -> Path:
    path = tmp_path / "0.log"
    path.write_bytes(b"".join(streaming.cri_line(s, c, t, partial=p) for s, c, t, p in entries))
    return path


async def _read(path: Path, **options: object) -> bytes:
    opts = streaming.LogOptions(**options)  # type: ignore[arg-type]
    return b"".join([c async for c in streaming.read_log(path, opts, running=lambda: False)])


async def test_read_log_options(tmp_path: Path) -> None:
    path = _log(
        tmp_path,
        [
            ("stdout", b"one", T0, False),
            ("stderr", b"two", T0 + 1, False),
            ("stdout", b"thr", T0 + 2, True),
            ("stdout", b"ee", T0 + 2, False),
        ],
    )
    assert await _read(path) == b"one\ntwo\nthree\n"
    # tailLines counts CRI entries, partial ones included, as upstream.
    assert await _read(path, tail_lines=2) == b"three\n"
    assert await _read(path, tail_lines=0) == b""
    assert await _read(path, since=T0 + 1) == b"two\nthree\n"
    assert await _read(path, limit_bytes=6) == b"one\ntw"
    stamped = await _read(path, tail_lines=3, timestamps=True)
    assert stamped.splitlines()[0] == streaming.format_rfc3339_nano(T0 + 1).encode() + b" two"
    assert streaming.parse_rfc3339("2023-11-14T22:13:20.123456789Z") == pytest.approx(T0 + 0.123456)


async def test_follow_streams_new_lines_until_the_container_stops(tmp_path: Path) -> None:
    path = _log(tmp_path, [("stdout", b"first", T0, False)])
    running = True
    chunks: list[bytes] = []

    async def follow() -> None:
        opts = streaming.LogOptions(follow=True)
        async for chunk in streaming.read_log(path, opts, running=lambda: running):
            chunks.append(chunk)

    task = asyncio.ensure_future(follow())
    await _until(lambda: chunks == [b"first\n"])
    with open(path, "ab") as handle:
        handle.write(streaming.cri_line("stdout", b"second", T0 + 1))
    await _until(lambda: chunks == [b"first\n", b"second\n"])
    running = False
    await asyncio.wait_for(task, 2)


def test_request_options() -> None:
    opts = kubelet_server.log_options(
        {"sinceSeconds": ["10"], "tailLines": ["3"], "follow": ["true"]}, now=T0
    )
    assert (opts.since, opts.tail_lines, opts.follow, opts.previous) == (T0 - 10, 3, True, False)
    exec_opts = kubelet_server.exec_options(
        {
            "command": ["sh", "-c", "x"],
            "input": ["1"],
            "output": ["1"],
            "error": ["1"],
            "tty": ["1"],
        }
    )
    # A terminal merges stderr into stdout.
    assert exec_opts.command == ("sh", "-c", "x") and exec_opts.stdin and not exec_opts.stderr
    with pytest.raises(kubelet_server._HttpError, match="at least one command"):
        kubelet_server.exec_options({"output": ["1"]})
    assert kubelet_server.request_subresource("/containerLogs/a/b/c") == "proxy"
    assert kubelet_server.request_subresource("/stats/summary") == "stats"


# ----- over HTTPS -----------------------------------------------------------------------------


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[StreamingCluster]:
    async with StreamingCluster(tmp_path) as cluster:
        yield cluster


def _tls(
    cluster: StreamingCluster, *, user: str = "", groups: tuple[str, ...] = ()
) -> ssl.SSLContext:
    ca = cluster.process.pki.ca
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    if user:
        pair = pki.issue_client_cert(ca, user=user, groups=groups)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "c").write_bytes(pair.cert_pem)
            (Path(tmp) / "k").write_bytes(pair.key_pem)
            context.load_cert_chain(Path(tmp) / "c", Path(tmp) / "k")
    return context


def _url(cluster: StreamingCluster, path: str) -> str:
    api = cluster.node_api
    return f"https://{api.address}:{api.port}{path}"


async def test_authentication_and_authorization(node: StreamingCluster) -> None:
    # The Node advertises where its kubelet listens.
    found = await node.admin.get(rest.NODES, "kajitori-worker")
    assert found["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == node.node_api.port
    assert {"type": "InternalIP", "address": "127.18.0.2"} in found["status"]["addresses"]
    async with httpx.AsyncClient(verify=_tls(node)) as anonymous:
        answer = await anonymous.get(_url(node, "/healthz"))
        assert (answer.status_code, answer.text) == (401, "Unauthorized")
    async with httpx.AsyncClient(verify=_tls(node, user="jane")) as jane:
        answer = await jane.get(_url(node, "/pods"))
        assert answer.status_code == 403
        assert answer.text == "Forbidden (user=jane, verb=get, resource=nodes, subresource=proxy)"
    admin = _tls(node, user="kube-apiserver-kubelet-client", groups=("system:masters",))
    async with httpx.AsyncClient(verify=admin) as client:
        assert (await client.get(_url(node, "/healthz"))).text == "ok"
        await node.run_pod("listed")
        pods = (await client.get(_url(node, "/pods"))).json()
        assert [p["metadata"]["name"] for p in pods["items"]] == ["listed"]


async def test_container_logs(node: StreamingCluster) -> None:
    await node.run_pod("web")
    node.fake.write_log("web", "main", [("stdout", f"line {i}", T0 + i) for i in range(5)])
    admin = _tls(node, user="admin", groups=("system:masters",))
    async with httpx.AsyncClient(verify=admin) as client:
        answer = await client.get(_url(node, "/containerLogs/default/web/main?tailLines=2"))
        assert answer.text == "line 3\nline 4\n"
        answer = await client.get(
            _url(
                node, "/containerLogs/default/web/main?sinceTime=2023-11-14T22:13:23Z&timestamps=1"
            )
        )
        assert answer.text.splitlines() == [
            f"{streaming.format_rfc3339_nano(T0 + 3)} line 3",
            f"{streaming.format_rfc3339_nano(T0 + 4)} line 4",
        ]
        answer = await client.get(_url(node, "/containerLogs/default/web/main?previous=true"))
        assert answer.status_code == 400
        assert answer.text == 'previous terminated container "main" in pod "web" not found'
        answer = await client.get(_url(node, "/containerLogs/default/nope/main"))
        assert (answer.status_code, answer.text) == (404, 'pod "nope" does not exist')


async def _exec(
    node: StreamingCluster,
    query: str,
    protocol: str,
    stdin: list[bytes] = (),  # type: ignore[assignment]
) -> tuple[ws.WebSocket, dict[int, bytes]]:
    api = node.node_api
    socket = await ws.connect(
        api.address,
        api.port,
        "/exec/default/shell/main?" + query,
        ssl_context=_tls(node, user="admin", groups=("system:masters",)),
        subprotocols=[protocol],
    )
    assert socket.subprotocol == protocol
    for frame in stdin:
        await socket.send(frame)
    frames: dict[int, bytes] = {}
    while (message := await socket.receive()) is not None:
        assert isinstance(message, bytes)
        frames[message[0]] = frames.get(message[0], b"") + message[1:]
    return socket, frames


async def test_exec_channels(node: StreamingCluster) -> None:
    await node.run_pod("shell")
    command = "command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+7"
    _, frames = await _exec(node, command + "&output=1&error=1", ws.V5)
    assert frames[ws.STDOUT] == b"out\n" and frames[ws.STDERR] == b"err\n"
    status = orjson.loads(frames[ws.ERROR])
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
    # v5: stdin, then the client closes stdin with [255, 0] and cat ends.
    _, frames = await _exec(
        node,
        "command=cat&input=1&output=1",
        ws.V5,
        stdin=[bytes([ws.STDIN]) + b"typed\n", bytes([ws.CLOSE, ws.STDIN])],
    )
    assert frames[ws.STDOUT] == b"typed\n"
    assert orjson.loads(frames[ws.ERROR]) == {"metadata": {}, "status": "Success"}
    # v4 has the same status JSON; v1 sends only an error's text.
    _, frames = await _exec(node, "command=false&output=1", ws.V4)
    assert orjson.loads(frames[ws.ERROR])["details"]["causes"][0]["message"] == "1"
    _, frames = await _exec(node, "command=true&output=1", ws.V1)
    assert ws.ERROR not in frames
    _, frames = await _exec(node, "command=/no/such/binary&output=1", ws.V5)
    assert "no/such/binary" in orjson.loads(frames[ws.ERROR])["message"]


async def test_exec_refusals(node: StreamingCluster) -> None:
    await node.run_pod("shell")
    api = node.node_api
    context = _tls(node, user="admin", groups=("system:masters",))
    with pytest.raises(ws.HandshakeError) as refused:
        await ws.connect(
            api.address,
            api.port,
            "/exec/default/shell/other?command=ls&output=1",
            ssl_context=context,
            subprotocols=[ws.V5],
        )
    assert refused.value.status_code == 404
    assert refused.value.body == b"container other is not valid for pod shell"
    with pytest.raises(ws.HandshakeError) as refused:
        await ws.connect(
            api.address,
            api.port,
            "/exec/default/shell/main?output=1",
            ssl_context=context,
            subprotocols=[ws.V5],
        )
    assert refused.value.body == b"you must specify at least one command for the container"


async def _until(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_spdy_session_replies_and_delivers() -> None:
    """A SYN_STREAM gets a SYN_REPLY; data and FIN reach the stream; PING is echoed."""
    assert zlib.adler32(spdy.DICTIONARY) == 3821447106  # the SPDY/3 dictionary's checksum
    sent: list[bytes] = []
    streams: list[spdy.Stream] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    session = spdy.Session(send, streams.append)
    deflate = zlib.compressobj(9, zdict=spdy.DICTIONARY)
    block = deflate.compress(spdy.encode_headers({"streamtype": "data", "port": "80"}))
    block += deflate.flush(zlib.Z_SYNC_FLUSH)
    syn = spdy.control_frame(spdy.SYN_STREAM, struct.pack(">IIH", 1, 0, 0) + block)
    frames = syn + spdy.data_frame(1, b"abc") + spdy.data_frame(1, b"", spdy.FLAG_FIN)
    frames += spdy.control_frame(spdy.PING, struct.pack(">I", 7))
    for i in range(0, len(frames), 5):  # any split of the byte stream
        await session.feed(frames[i : i + 5])
    assert streams[0].headers == {"streamtype": "data", "port": "80"}
    assert [await streams[0].read(), await streams[0].read()] == [b"abc", None]
    kinds = [struct.unpack_from(">H", f, 2)[0] for f in sent]
    assert kinds == [spdy.SYN_REPLY, spdy.WINDOW_UPDATE, spdy.PING]
    await streams[0].write(b"out")
    assert sent[-1] == spdy.data_frame(1, b"out")
