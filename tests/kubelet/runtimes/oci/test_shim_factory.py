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
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, _shims, make_pod, sh, wait_for

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


class _HeldImages:
    """The runtime's images, whose ``ensure`` waits for ``go``: a pod's container does not start
    (its sandbox does) until the test lets it."""

    def __init__(self, images: Any) -> None:
        self.images = images
        self.go = asyncio.Event()

    async def ensure(self, *args: Any, **kwargs: Any) -> Any:
        await self.go.wait()
        return await self.images.ensure(*args, **kwargs)


async def test_a_pods_ready_sandbox_is_written_with_its_running_containers(
    admin: rest.Client, oci: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubelet holds a sandbox-only status change: Pending, then Running, two writes.

    Each step waits for what it expects, never for a time: the container is held back
    until the kubelet has seen the sandbox ready and held that change (not written), so
    no sync can see the container half created (a containerID while still waiting,
    which is more than the sandbox and is written at once).
    """
    monkeypatch.setattr(kubelet, "SANDBOX_STATUS_DELAY", 60.0)  # never expires in this test
    held_images = _HeldImages(oci.runtime.runs.images)
    monkeypatch.setattr(oci.runtime.runs, "images", held_images)
    host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci.runtime)
    await host.start()
    seen: list[Object] = []
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
        watch = admin.watch(
            rest.PODS,
            namespace="default",
            resource_version=created["metadata"]["resourceVersion"],
            field_selector="metadata.name=held",
        )
        events = aiter(watch)
        try:
            # The kubelet's first write: Pending, the containers being created.
            while not seen or not seen[-1].get("containerStatuses"):
                seen.append((await asyncio.wait_for(anext(events), 30))["object"]["status"])
            uid = created["metadata"]["uid"]
            await wait_for(
                lambda: _sandbox_ready(oci, uid) and "default/held" in host._held,
                timeout=30,
                what="the kubelet holding the sandbox-only change",
            )
            # Held, not written: the API still has the sandbox not ready.
            now = await admin.get(rest.PODS, "held", namespace="default")
            assert _condition(now["status"], "PodReadyToStartContainers") == "False"
            held_images.go.set()
            while seen[-1].get("phase") != "Running":
                seen.append((await asyncio.wait_for(anext(events), 30))["object"]["status"])
        finally:
            await watch.aclose()
    finally:
        held_images.go.set()
        await host.stop()
    kubelet_writes = [s for s in seen if s.get("containerStatuses")]
    assert [s["phase"] for s in kubelet_writes] == ["Pending", "Running"]
    assert _condition(kubelet_writes[0], "PodReadyToStartContainers") == "False"
    assert _condition(kubelet_writes[1], "PodReadyToStartContainers") == "True"


def _sandbox_ready(oci: Harness, uid: str) -> bool:
    found = oci.runtime.get_pod_status(uid, now=0.0)
    return found is not None and found.sandbox_ready


def _condition(status: Object, kind: str) -> str:
    return {c["type"]: c["status"] for c in status.get("conditions") or ()}.get(kind, "")
