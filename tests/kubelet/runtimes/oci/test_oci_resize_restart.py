"""A RestartContainer resize on runc restarts the container at once, whatever the restartPolicy.

Upstream's kubelet stops a container whose resizePolicy says
RestartContainer and starts it again in the same sync: no crash-loop
back-off (nothing failed) and no regard for the pod's restartPolicy (with
OnFailure a container that exits 0 on SIGTERM still comes back; Never
cannot be combined with RestartContainer, validation refuses it). A later
exit of the new run follows the policy again.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, make_pod, sh, wait_for

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

Object = dict[str, Any]
LONG = 300.0  # a back-off no test waits out: a restart within the test's deadline skipped it


def limits(memory: str) -> Object:
    return {"requests": {"memory": memory}, "limits": {"memory": memory}}


@pytest.mark.parametrize("policy", ["OnFailure", "Always"])
async def test_a_restart_container_resize_restarts_at_once(oci: Harness, policy: str) -> None:
    oci.runtime.backoff_base = oci.runtime.backoff_cap = LONG
    body = make_pod(
        # Exits 0 on SIGTERM: OnFailure alone would not restart it.
        [sh("c", "trap 'exit 0' TERM; sleep 60 & wait", resources=limits("32Mi"))],
        restart_policy=policy,
        terminationGracePeriodSeconds=1,
    )
    uid = oci.start(body)
    first = await oci.wait_state(uid, "c", "running")
    error = await oci.runtime.resize_container(
        uid, "c", limits("48Mi"), restart=True, now=time.time()
    )
    assert error is None
    between = oci.container(uid, "c")  # stopped or started again: never crash-looping
    assert between.reason != "CrashLoopBackOff", between
    restarted = await wait_for(
        lambda: (c := oci.container(uid, "c")).restart_count == 1 and c.state == "running" and c,
        timeout=10,
        what="c restarted without back-off",
    )
    assert restarted.container_id != first.container_id
    assert restarted.last_termination is not None
    assert restarted.last_termination.exit_code == 0


async def test_after_the_resize_restart_never_applies_again(oci: Harness) -> None:
    body = make_pod(
        [sh("c", "trap 'exit 0' TERM; sleep 2 & wait; exit 0", resources=limits("32Mi"))],
        restart_policy="OnFailure",
        terminationGracePeriodSeconds=1,
    )
    uid = oci.start(body)
    await oci.wait_state(uid, "c", "running")
    await oci.runtime.resize_container(uid, "c", limits("48Mi"), restart=True, now=time.time())
    await wait_for(
        lambda: (c := oci.container(uid, "c")).restart_count == 1 and c.state == "running",
        timeout=10,
        what="c restarted",
    )
    ended = await oci.wait_state(uid, "c", "terminated")
    assert ended.termination is not None and ended.termination.exit_code == 0
    assert ended.restart_count == 1  # OnFailure: the new run's success is not restarted
