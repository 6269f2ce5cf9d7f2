"""Pinning a sandbox's namespaces from a thread: new namespaces on files, the kubelet's own untouched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.kubelet.runtimes.oci import helpers

from kajitori.kubelet.runtimes.oci import mounts, runc

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")


def _ns(kind: str) -> str:
    return os.readlink(f"/proc/thread-self/ns/{kind}")


async def test_namespaces_are_new_named_and_the_callers_stay_where_they_were(
    tmp_path: Path,
) -> None:
    before = {kind: _ns(kind) for kind in ("net", "ipc", "uts")}
    try:
        await runc.pin_namespaces(tmp_path, hostname="pinned-pod")
        assert {kind: _ns(kind) for kind in before} == before  # the event loop's thread
        for kind in ("net", "ipc", "uts"):
            assert os.stat(tmp_path / kind).st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino
        name = subprocess.run(
            ["nsenter", f"--uts={tmp_path / 'uts'}", "hostname"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert name.stdout.strip() == "pinned-pod"
        links = subprocess.run(
            ["nsenter", f"--net={tmp_path / 'net'}", "ip", "-o", "link", "show", "up"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    finally:
        mounts.unmount_all(tmp_path)


async def test_a_failure_is_a_runc_error(tmp_path: Path) -> None:
    with pytest.raises(runc.RuncError):
        await runc.pin_namespaces(tmp_path / "missing", hostname="x")
