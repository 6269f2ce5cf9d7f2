"""A real runc container's usage, read from its cgroup as ``/metrics/resource`` reads it.

A busy container's CPU counter (cgroup v2 ``cpu.stat`` or v1 ``cpuacct.usage``)
grows between two looks, and its working set is that of a live process.
"""

from __future__ import annotations

import time

import pytest
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, make_pod, sh, wait_for

from kajitori.kubelet import resource_metrics

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


async def test_a_busy_containers_cgroup_counter_grows(oci: Harness) -> None:
    body = make_pod([sh("c", "while :; do :; done")], terminationGracePeriodSeconds=1)
    uid = oci.start(body)
    running = await oci.wait_state(uid, "c", "running")
    assert running.started_at is not None
    pod = {
        **body,
        "status": {
            "containerStatuses": [{"name": "c", "containerID": running.container_id}],
        },
    }
    source = resource_metrics.CgroupUsage()

    def sample() -> resource_metrics.ContainerSample | None:
        found = source.sample(pod, {"c": running.started_at or 0.0}, time.time())
        return found[0] if found and found[0].cpu_seconds > 0.05 else None

    first = await wait_for(sample, timeout=10, what="CPU time in the cgroup")
    second = await wait_for(
        lambda: (s := sample()) and s.cpu_seconds > first.cpu_seconds + 0.05 and s,
        timeout=10,
        what="the counter to grow",
    )
    assert second.memory_bytes > 0
    assert second.name == "c"
