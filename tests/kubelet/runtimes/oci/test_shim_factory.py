"""Shims come from a long-lived factory per runc root (decision 0034), and keep every shim property.

The factory forks a shim per container instead of starting an interpreter;
the shim must still be nobody's child, lead a session of its own, parent
the container's init, write the CRI log and the exit record, and outlive
the runtime that asked for it. Without a factory, a shim of its own starts.
And the kubelet writes a starting pod's status twice, not three times.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, _shims, make_pod, sh

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet
from kajitori.kubelet.runtimes.oci import shim

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

Object = dict[str, Any]

FOREVER = "echo up; trap 'exit 7' TERM; while true; do sleep 0.05; done"


def _status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split()[1]
    raise KeyError(field)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def _factories(name: str) -> list[int]:
    """Live factories listening on ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != shim.FACTORY_COMM.decode():
                continue
            if name in _cmdline(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_a_factory_forked_shim_keeps_the_shims_properties_across_runtimes(
    oci: Harness,
) -> None:
    name = oci.runtime.runc._factory_name()
    uid = oci.start(make_pod([sh("c", FOREVER)]))
    running = await oci.wait_state(uid, "c", "running")
    [factory] = _factories(name)
    [pid] = _shims(oci.root, uid)
    assert _cmdline(pid)[-2:] == ["--factory", name]  # forked, not a new interpreter
    assert int(_status(pid, "PPid")) not in (os.getpid(), factory)  # nobody's child
    assert os.getsid(pid) == pid
    init = int(next(oci.root.glob(f"pods/{uid}/containers/c/*/init.pid")).read_text())
    assert int(_status(init, "PPid")) == pid  # the container's subreaper
    assert running.container_id

    # A new runtime over the same root adopts the container and asks the same factory.
    await oci.runtime.aclose()
    oci.runtime = oci.new_runtime()
    second = oci.start(make_pod([sh("d", "echo second")], name="second"))
    done = await oci.wait_state(second, "d", "terminated")
    assert done.termination is not None and done.termination.exit_code == 0
    assert _factories(name) == [factory]
    assert "stdout F second" in oci.log(second, "d")

    oci.runtime.kill_pod(uid, now=0.0, grace_period=5)
    stopped = await oci.wait_state(uid, "c", "terminated")
    assert stopped.termination is not None and stopped.termination.exit_code == 7
    assert "stdout F up" in oci.log(uid, "c")


async def test_without_a_factory_the_runtime_starts_a_shim_of_its_own(oci: Harness) -> None:
    """A name taken by something that never answers "ok": no shim was forked, so one is started."""
    name = oci.runtime.runc._factory_name()

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    impostor = await asyncio.start_unix_server(refuse, "\0" + name)
    try:
        uid = oci.start(make_pod([sh("c", FOREVER)]))
        await oci.wait_state(uid, "c", "running")
        [pid] = _shims(oci.root, uid)
        assert "--factory" not in _cmdline(pid)
        assert _factories(name) == []
        oci.runtime.kill_pod(uid, now=0.0, grace_period=5)
        stopped = await oci.wait_state(uid, "c", "terminated")
        assert stopped.termination is not None and stopped.termination.exit_code == 7
    finally:
        impostor.close()
        await impostor.wait_closed()


async def test_a_pods_ready_sandbox_is_written_with_its_running_containers(
    admin: rest.Client, oci: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubelet holds a sandbox-only status change: Pending, then Running, two writes."""
    monkeypatch.setattr(kubelet, "SANDBOX_STATUS_DELAY", 60.0)  # never expires in this test
    host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci.runtime)
    await host.start()
    try:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "held", "namespace": "default"},
            "spec": {
                "nodeName": kubelet_cmd.node_configs(1)[0].name,
                "restartPolicy": "Never",
                "containers": [sh("c", FOREVER)],
            },
        }
        created = await admin.create(rest.PODS, body, namespace="default")
        seen: list[Object] = []
        watch = admin.watch(
            rest.PODS,
            namespace="default",
            resource_version=created["metadata"]["resourceVersion"],
            field_selector="metadata.name=held",
        )
        async for event in watch:
            seen.append(event["object"]["status"])
            if seen[-1].get("phase") == "Running":
                break
        await watch.aclose()
    finally:
        await host.stop()
    kubelet_writes = [s for s in seen if s.get("containerStatuses")]
    assert [s["phase"] for s in kubelet_writes] == ["Pending", "Running"]
    ready = {c["type"]: c["status"] for c in kubelet_writes[0]["conditions"]}
    assert ready["PodReadyToStartContainers"] == "False"
