"""Attach in the runtimes' streams: upstream's answer to an exited container, log-following.

``SimulatedStreaming.attach`` and ``streaming.LogAttach`` (the oci runtime's
attach) without a cluster; ``tests/e2e/test_run_attach_e2e.py`` runs them
under the real ``kubectl run -i``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kajitori.kubelet import streaming


def _pod(state: dict[str, object], **annotations: str) -> dict[str, object]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "annotations": annotations},
        "status": {"containerStatuses": [{"name": "c", "state": state}]},
    }


async def test_simulated_attach_to_an_exited_container_is_not_found(tmp_path: Path) -> None:
    runtime = streaming.SimulatedStreaming(tmp_path)
    exited = _pod({"terminated": {"exitCode": 0, "startedAt": "2026-01-01T00:00:00Z"}})
    with pytest.raises(streaming.StreamingError) as caught:
        await runtime.attach(exited, "c", stdin=True, tty=False)
    assert (caught.value.code, caught.value.message) == (500, "container c not found in pod p_ns")


async def test_simulated_attach_is_silent_and_ends_with_the_run(tmp_path: Path) -> None:
    runtime = streaming.SimulatedStreaming(tmp_path)
    now = streaming.format_rfc3339_nano(time.time())
    running = _pod({"running": {"startedAt": now}}, **{"kajitori.io/simulate-exit-code": "3"})
    process = await runtime.attach(running, "c", stdin=True, tty=False)
    await process.write_stdin(b"dropped\n")
    # Zero seconds of runtime: the run is over, and attach reports 0 whatever the exit code.
    assert await asyncio.wait_for(process.wait(), 5) == 0
    assert process.stdout is not None and await process.stdout.read() == b""
    forever = await runtime.attach(
        _pod({"running": {"startedAt": now}}), "c", stdin=False, tty=True
    )
    assert forever.stderr is None  # a terminal merges stderr
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(forever.wait()), 0.2)
    forever.kill()  # the client left: only the attach ends
    assert await forever.wait() == 0


async def test_log_attach_streams_what_is_written_after_it(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(streaming.cri_line("stdout", b"before", time.time()))
    running = True
    process = streaming.LogAttach(log, running=lambda: running, tty=False)
    with open(log, "ab") as handle:
        handle.write(streaming.cri_line("stdout", b"after", time.time()))
        handle.write(streaming.cri_line("stderr", b"oops", time.time()))
        handle.write(streaming.cri_line("stdout", b"par", time.time(), partial=True))
        handle.write(streaming.cri_line("stdout", b"tial", time.time()))
    assert process.stdout is not None and process.stderr is not None
    assert await asyncio.wait_for(process.stdout.readline(), 5) == b"after\n"
    running = False  # the container exited: the rest of the file, then the end
    assert await asyncio.wait_for(process.wait(), 5) == 0
    assert await process.stdout.read() == b"partial\n"
    assert await process.stderr.read() == b"oops\n"
