"""Exec with a terminal on the oci runtime: ``runc exec -d -t`` under the shim's reaper.

``OciStreaming.exec`` with ``tty`` gives the process a real terminal (its
stdin, stdout and stderr on one pseudo-terminal whose master the kubelet
holds): ``tty`` names a /dev/pts device, sizes set through ``resize`` reach
``stty size``, stderr comes merged into stdout, the exit code passes
through, and a command runc cannot start reports runc's error and code.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers

from kajitori.kubelet import oci_streams, streaming

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]


async def _running_pod(oci: helpers.Harness) -> Object:
    """A started pod whose status names its running container, as the kubelet's would."""
    pod = helpers.make_pod([helpers.sh("c", "sleep 60")], terminationGracePeriodSeconds=1)
    uid = oci.start(pod)
    running = await oci.wait_state(uid, "c", "running")
    pod["status"] = {
        "containerStatuses": [
            {
                "name": "c",
                "containerID": running.container_id,  # runc://<id>
                "state": {"running": {}},
            }
        ]
    }
    return pod


async def _output(process: streaming.ContainerProcess) -> tuple[bytes, int]:
    """All the process shows, and its exit code (10 s at most)."""
    assert process.stdout is not None
    async with asyncio.timeout(10):
        code = await process.wait()
        return await process.stdout.read(), code


async def _read_until(process: streaming.ContainerProcess, pattern: bytes) -> re.Match[bytes]:
    assert process.stdout is not None
    seen = b""
    async with asyncio.timeout(10):
        while (found := re.search(pattern, seen)) is None:
            chunk = await process.stdout.read(4096)
            assert chunk, f"output ended before {pattern!r}: {seen!r}"
            seen += chunk
    return found


async def test_exec_with_tty_runs_on_a_terminal_and_passes_its_exit_code(
    oci: helpers.Harness,
) -> None:
    pod = await _running_pod(oci)
    script = "tty; echo to-stderr >&2; exit 7"
    process = await oci_streams.OciStreaming(oci.runtime).exec(
        pod, "c", ["sh", "-c", script], stdin=False, tty=True
    )
    assert process.stderr is None  # a terminal merges stderr into stdout
    shown, code = await _output(process)
    assert re.match(rb"/dev/pts/\d+\r\nto-stderr\r\n", shown), shown  # the terminal's CRLF
    assert code == 7


async def test_resize_reaches_the_terminal_and_typed_input_the_shell(
    oci: helpers.Harness,
) -> None:
    pod = await _running_pod(oci)
    process = await oci_streams.OciStreaming(oci.runtime).exec(
        pod, "c", ["sh"], stdin=True, tty=True
    )
    process.resize(111, 33)
    await process.write_stdin(b"stty size; echo mark-$((6*7))\r")
    await _read_until(process, rb"33 111\r\n(.*\r\n)?mark-42")
    process.resize(80, 24)
    await process.write_stdin(b"stty size; exit 3\r")
    await _read_until(process, rb"\r\n24 80\r\n")
    async with asyncio.timeout(10):
        assert await process.wait() == 3


async def test_a_signal_ends_it_with_128_plus_the_signal(oci: helpers.Harness) -> None:
    pod = await _running_pod(oci)
    process = await oci_streams.OciStreaming(oci.runtime).exec(
        pod, "c", ["sh", "-c", "kill -TERM $$"], stdin=False, tty=True
    )
    _, code = await _output(process)
    assert code == 128 + 15


async def test_a_command_runc_cannot_start_shows_runc_error(oci: helpers.Harness) -> None:
    pod = await _running_pod(oci)
    process = await oci_streams.OciStreaming(oci.runtime).exec(
        pod, "c", ["no-such-command"], stdin=False, tty=True
    )
    shown, code = await _output(process)
    assert b"no-such-command" in shown, shown
    assert code != 0


async def test_the_client_leaving_hangs_the_terminal_up(oci: helpers.Harness) -> None:
    pod = await _running_pod(oci)
    process = await oci_streams.OciStreaming(oci.runtime).exec(
        pod, "c", ["sh"], stdin=True, tty=True
    )
    await process.write_stdin(b"echo ready\r")
    await _read_until(process, rb"\r\nready\r\n")
    process.kill()  # the shell gets SIGHUP from the hung-up terminal
    async with asyncio.timeout(10):
        assert await process.wait() == 128 + 1
