"""In-place resize of runc containers: ``runc update`` of the running container's cgroup.

The runtime applies a resize's resources without a restart (the CFS quota
and memory limit change, the run and its container ID stay), refuses to
put a memory limit below the container's usage with upstream's message,
and, for RestartContainer, stops the run with upstream's Killing message so
that the next run starts with the new resources.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, make_pod, sh, wait_for

from kajitori.kubelet.runtimes import interface

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

Object = dict[str, Any]
READ_LIMITS = (
    "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; "
    "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
)


def limits(cpu: str, memory: str) -> Object:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def _log(oci: Harness, uid: str) -> str:
    try:
        return oci.log(uid, "c")
    except FileNotFoundError:  # not started yet
        return ""


async def read_limits(oci: Harness, uid: str) -> tuple[str, str]:
    code, out, err = await oci.runtime.exec(uid, "c", ["sh", "-c", READ_LIMITS])
    assert code == 0, err
    cpu, memory = out.decode().split("\n")[:2]
    return cpu.split()[0], memory


async def test_a_running_container_is_resized_in_place(oci: Harness) -> None:
    body = make_pod(
        [sh("c", "sleep 30", resources=limits("250m", "32Mi"))], terminationGracePeriodSeconds=1
    )
    uid = oci.start(body)
    before = await oci.wait_state(uid, "c", "running")
    assert await read_limits(oci, uid) == ("25000", str(32 * 2**20))
    error = await oci.runtime.resize_container(
        uid, "c", limits("500m", "64Mi"), restart=False, now=time.time()
    )
    assert error is None
    assert await read_limits(oci, uid) == ("50000", str(64 * 2**20))
    after = oci.container(uid, "c")
    assert (after.state, after.container_id, after.restart_count) == (
        "running",
        before.container_id,
        0,
    )


async def test_a_memory_limit_below_usage_is_refused(oci: Harness) -> None:
    # A shell and its sleep use a few hundred KiB: a 4Ki limit is far below that.
    hog = "echo filled; sleep 30"
    body = make_pod(
        [sh("c", hog, resources=limits("250m", "64Mi"))], terminationGracePeriodSeconds=1
    )
    uid = oci.start(body)
    await oci.wait_state(uid, "c", "running")  # the runtime knows it started
    await wait_for(lambda: "filled" in _log(oci, uid), what="shell running")
    error = await oci.runtime.resize_container(
        uid, "c", limits("250m", "4Ki"), restart=False, now=time.time()
    )
    assert error is not None
    assert error.startswith(
        'attempting to set container "c" memory limit (4096) below current usage ('
    )
    assert (await read_limits(oci, uid))[1] == str(64 * 2**20)  # unchanged


async def test_restart_container_policy_stops_the_run_for_the_next(oci: Harness) -> None:
    events: list[tuple[str, str]] = []

    async def no_secret(node: str, namespace: str, name: str) -> None:
        return None

    def record(pod: Object, kind: str, reason: str, message: str, /, **_: Any) -> None:
        events.append((reason, message))

    oci.runtime.set_kubelet_hooks(interface.KubeletHooks(record, no_secret, lambda node: ""))
    body = make_pod(
        [sh("c", "sleep 30", resources=limits("250m", "32Mi"))],
        restart_policy="Always",
        terminationGracePeriodSeconds=1,
    )
    uid = oci.start(body)
    await oci.wait_state(uid, "c", "running")
    error = await oci.runtime.resize_container(
        uid, "c", limits("250m", "48Mi"), restart=True, now=time.time()
    )
    assert error is None
    assert ("Killing", "Container c resize requires restart") in events
    restarted = await wait_for(
        lambda: (c := oci.container(uid, "c")).restart_count == 1 and c.state == "running" and c,
        timeout=15,
        what="c restarted",
    )
    assert restarted.last_termination is not None
    assert (await read_limits(oci, uid))[1] == str(48 * 2**20)
