"""Attach with stdin on the oci runtime: the shim's attach socket under real runc.

A container with ``stdin`` gets its stdin on a pipe the shim holds; with
``tty`` a terminal whose master the shim holds (runtimes/oci/shim.py).
``OciStreaming.attach`` reaches them through ``ShimAttach``, as the kubelet's
``/attach`` does. stdinOnce follows containerd: without a terminal, the end
of the first attach's stdin closes the container's; otherwise it ends only
that attach.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers

from kajitori.kubelet import oci_streams, streaming

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]


async def _read_until(reader: asyncio.StreamReader | None, wanted: bytes) -> bytes:
    """What ``reader`` gives until ``wanted`` came (10 s at most)."""
    assert reader is not None
    seen = b""
    async with asyncio.timeout(10):
        while wanted not in seen:
            chunk = await reader.read(4096)
            assert chunk, f"stream ended before {wanted!r}; got {seen!r}"
            seen += chunk
    return seen


async def _exit_code(oci: helpers.Harness, uid: str) -> int:
    exited = await oci.wait_state(uid, "c", "terminated")
    assert exited.termination is not None
    return exited.termination.exit_code


async def _attach(
    oci: helpers.Harness, pod: Object, *, stdin: bool = True, tty: bool = False
) -> streaming.ContainerProcess:
    uid = pod["metadata"]["uid"]
    await oci.wait_state(uid, "c", "running")
    return await oci_streams.OciStreaming(oci.runtime).attach(pod, "c", stdin=stdin, tty=tty)


async def test_stdin_once_without_a_terminal_closes_the_container_stdin(
    oci: helpers.Harness,
) -> None:
    pod = helpers.make_pod([helpers.sh("c", "cat; echo done", stdin=True, stdinOnce=True)])
    uid = oci.start(pod)
    process = await _attach(oci, pod)
    await process.write_stdin(b"hello\n")
    assert await _read_until(process.stdout, b"hello\n") == b"hello\n"
    process.close_stdin()  # cat sees EOF: the shim closed the container's stdin
    assert (await _read_until(process.stdout, b"done\n")).endswith(b"done\n")
    async with asyncio.timeout(10):
        assert await process.wait() == 0
    assert await _exit_code(oci, uid) == 0
    assert "hello" in oci.log(uid, "c")  # the log still gets what the container wrote


async def test_without_stdin_once_the_end_of_stdin_ends_only_the_attach(
    oci: helpers.Harness,
) -> None:
    pod = helpers.make_pod([helpers.sh("c", "cat", stdin=True)])
    uid = oci.start(pod)
    first = await _attach(oci, pod)
    await first.write_stdin(b"one\n")
    await _read_until(first.stdout, b"one\n")
    first.close_stdin()
    async with asyncio.timeout(10):
        assert await first.wait() == 0
    assert oci.container(uid, "c").state == "running"  # cat still reads the same stdin
    second = await _attach(oci, pod)
    await second.write_stdin(b"two\n")
    assert await _read_until(second.stdout, b"two\n") == b"two\n"
    second.kill()  # the client left: the container runs on
    await asyncio.sleep(0)
    assert oci.container(uid, "c").state == "running"


async def test_an_attach_without_stdin_sees_the_output_and_sends_nothing(
    oci: helpers.Harness,
) -> None:
    pod = helpers.make_pod([helpers.sh("c", "cat", stdin=True, stdinOnce=True)])
    uid = oci.start(pod)
    watcher = await _attach(oci, pod, stdin=False)
    typist = await _attach(oci, pod)
    await watcher.write_stdin(b"dropped\n")  # not an attach with stdin: nothing reaches cat
    await typist.write_stdin(b"typed\n")
    seen = await _read_until(watcher.stdout, b"typed\n")
    assert seen == b"typed\n"
    watcher.kill()  # leaving without stdin leaves the container's stdin open
    await typist.write_stdin(b"again\n")
    await _read_until(typist.stdout, b"again\n")
    typist.kill()  # the first attach with stdin left: stdinOnce closes it, cat ends
    assert await _exit_code(oci, uid) == 0


async def test_a_terminal_takes_input_sizes_and_ends_with_the_shell(
    oci: helpers.Harness,
) -> None:
    container = {"name": "c", "image": "busybox", "command": ["sh"]}
    pod = helpers.make_pod([{**container, "stdin": True, "stdinOnce": True, "tty": True}])
    uid = oci.start(pod)
    process = await _attach(oci, pod, tty=True)
    assert process.stderr is None  # a terminal merges stderr into stdout
    process.resize(123, 45)
    await process.write_stdin(b"stty size; echo $TERM; tty\n")
    seen = await _read_until(process.stdout, b"/dev/pts/")
    assert b"45 123" in seen and b"xterm" in seen, seen
    await process.write_stdin(b"exit 3\n")
    async with asyncio.timeout(10):
        assert await process.wait() == 0  # attach reports no exit code, as upstream's
    assert await _exit_code(oci, uid) == 3
    bundle = oci.runtime.run_directory(uid, "c")
    assert bundle is not None and (bundle / "stdio").read_text() == "stdin stdinOnce tty"
    # The shim took both sockets away: runc's console one at once, the attach one at the exit.
    assert not (bundle / "console.sock").exists() and not (bundle / "attach.sock").exists()
    assert "45 123" in oci.log(uid, "c")  # the terminal's output is logged as stdout


async def test_attach_after_the_container_exited_is_not_found(oci: helpers.Harness) -> None:
    pod = helpers.make_pod([helpers.sh("c", "exit 0", stdin=True, tty=True)])
    uid = oci.start(pod)
    await oci.wait_state(uid, "c", "terminated")
    with pytest.raises(streaming.StreamingError) as caught:
        await oci_streams.OciStreaming(oci.runtime).attach(pod, "c", stdin=True, tty=True)
    assert caught.value.code == 500
    assert caught.value.message == "container c not found in pod pod_default"
