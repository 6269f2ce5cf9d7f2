"""Helpers for the oci runtime's tests: a runtime harness, pods of busybox containers, leak counts.

These tests run real containers, so they need root, runc and busybox-static
(CI installs both through scripts/install-test-deps); elsewhere they are
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kajitori.kubelet.runtimes import interface
from kajitori.kubelet.runtimes.oci import busybox, containers, mounts, runtime, state

Object = dict[str, Any]
NODE = "kajitori-worker"  # the one node kubelet_cmd.node_configs(1) names


def _skip_reason() -> str | None:
    problem = runtime.check_host()
    if problem is not None:
        return problem
    if not busybox.BUSYBOX.exists():
        return "busybox-static is not installed (/bin/busybox)"
    return None


REASON = _skip_reason()


@dataclasses.dataclass
class Leaks:
    """What a pod can leave behind; all empty once it is removed."""

    runc: list[str]
    mounts: list[Path]
    cgroups: list[Path]
    files: list[Path]
    shims: list[int]

    def empty(self) -> bool:
        return not (self.runc or self.mounts or self.cgroups or self.files or self.shims)


async def leaks(oci: runtime.OciRuntime, uid: str) -> Leaks:
    return Leaks(
        runc=[c["id"] for c in await oci.runc.list() if str(c["id"]).startswith(uid)],
        mounts=mounts.mounts_under(oci.root / "pods" / uid),
        cgroups=mounts.cgroup_dirs(f"/{containers.CGROUP_PARENT}/pod{uid}"),
        files=[
            p
            for p in (oci.root / "pods" / uid, oci.root / "logs")
            if p.exists() and any(p.iterdir())
        ],
        shims=_shims(oci.root, uid),
    )


def _shims(root: Path, uid: str) -> list[int]:
    """Live shims whose run directory belongs to pod ``uid``."""
    found = []
    pod_dir = os.path.realpath(root / "pods" / uid) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if comm == state.SHIM_COMM and cwd.startswith(pod_dir):
            found.append(int(entry.name))
    return found


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def make_pod(
    containers: list[Object], *, name: str = "pod", restart_policy: str = "Never", **spec: Any
) -> Object:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
        "spec": {"restartPolicy": restart_policy, "containers": containers, **spec},
    }


def pod(name: str, script: str, **spec: Any) -> Object:
    """A Pod for the API server, bound to ``NODE``, running ``script`` once in busybox."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Never",
            "containers": [sh("c", script)],
            **spec,
        },
    }


def sh(name: str, script: str, **fields: Any) -> Object:
    """A busybox container running ``script`` in sh."""
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **fields}


class Harness:
    """One runtime under a temp root; records the UIDs it reported changes for."""

    def __init__(self, root: Path, images: busybox.BusyboxImages) -> None:
        self.root = root
        self.images = images
        self.changes: list[str] = []
        self.runtime = self.new_runtime()

    def new_runtime(self) -> runtime.OciRuntime:
        oci = runtime.OciRuntime(self.root, self.images, backoff_base=0.2, backoff_cap=1.0)
        oci.set_on_change(self.changes.append)
        return oci

    def start(self, pod: Object) -> str:
        self.runtime.sync_pod(pod, now=time.time())
        return str(pod["metadata"]["uid"])

    def status(self, uid: str) -> interface.PodStatus:
        found = self.runtime.get_pod_status(uid, now=time.time())
        assert found is not None
        return found

    def container(self, uid: str, name: str) -> interface.ContainerStatus:
        found = self.status(uid)
        for container in (*found.init_containers, *found.containers):
            if container.name == name:
                return container
        raise KeyError(name)

    async def wait_state(
        self, uid: str, name: str, wanted: str, *, timeout: float = 10.0
    ) -> interface.ContainerStatus:
        def reached() -> interface.ContainerStatus | None:
            container = self.container(uid, name)
            return container if container.state == wanted else None

        result: interface.ContainerStatus = await wait_for(
            reached, timeout=timeout, what=f"{name} {wanted}"
        )
        return result

    def log(self, uid: str, name: str, run: int = 0) -> str:
        return self.runtime.log_path(uid, name, run).read_text()
