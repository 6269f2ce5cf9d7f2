"""A kubelet over the oci runtime against an in-process API server: pod status and deletion."""

from __future__ import annotations

from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers
from tests.kubelet.test_kubelet import eventually

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]


async def test_a_pod_runs_to_succeeded_and_its_status_shows_the_container(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    """The runtime's change callback drives the kubelet: Pending → Succeeded, reason Completed."""
    await admin.create(rest.PODS, helpers.pod("once", "echo done"), namespace="default")

    async def succeeded() -> Object | None:
        found = await admin.get(rest.PODS, "once", namespace="default")
        return found if found.get("status", {}).get("phase") == "Succeeded" else None

    found = await eventually(succeeded)
    (status,) = found["status"]["containerStatuses"]
    assert status["state"]["terminated"]["reason"] == "Completed"
    assert status["containerID"].startswith("runc://")


async def test_deleting_a_pod_terminates_its_containers_gracefully_then_removes_them(
    admin: rest.Client, host: kubelet.KubeletHost, oci: helpers.Harness
) -> None:
    """The kubelet kills the pod, deletes it once its container stopped, and nothing is left."""
    script = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    created = await admin.create(rest.PODS, helpers.pod("server", script), namespace="default")
    uid = created["metadata"]["uid"]

    async def running() -> Object | None:
        found = await admin.get(rest.PODS, "server", namespace="default")
        return found if found.get("status", {}).get("phase") == "Running" else None

    await eventually(running)
    await admin.delete(rest.PODS, "server", namespace="default", grace_period_seconds=5)

    async def gone() -> Object | None:
        try:
            await admin.get(rest.PODS, "server", namespace="default")
        except rest.ApiError as exc:
            if exc.not_found:
                return {}
            raise
        return None

    await eventually(gone)
    await helpers.wait_for(lambda: uid not in oci.runtime.get_pods(), what="pod forgotten")
    await oci.runtime.aclose()
    assert (await helpers.leaks(oci.runtime, uid)).empty()


async def test_a_restarted_kubelet_adopts_the_running_container(
    admin: rest.Client, oci: helpers.Harness
) -> None:
    """A new kubelet and runtime over the same root keep the pod Running with the same container."""
    first = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci.runtime)
    await first.start()
    script = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    await admin.create(rest.PODS, helpers.pod("kept", script), namespace="default")

    async def running() -> Object | None:
        found = await admin.get(rest.PODS, "kept", namespace="default")
        return found if found.get("status", {}).get("phase") == "Running" else None

    kept = await eventually(running)
    before = kept["status"]["containerStatuses"][0]
    await first.stop()
    await oci.runtime.aclose()
    oci.runtime = oci.new_runtime()
    second = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci.runtime)
    await second.start()
    try:
        adopted = oci.container(kept["metadata"]["uid"], "c")
        assert (adopted.state, adopted.container_id, adopted.restart_count) == (
            "running",
            before["containerID"],
            0,
        )
        await admin.delete(rest.PODS, "kept", namespace="default", grace_period_seconds=5)

        async def gone() -> Object | None:
            try:
                await admin.get(rest.PODS, "kept", namespace="default")
            except rest.ApiError as exc:
                return {} if exc.not_found else None
            return None

        await eventually(gone)
        await helpers.wait_for(lambda: oci.runtime.get_pods() == [], what="pod forgotten")
    finally:
        await second.stop()


async def test_a_starting_kubelet_removes_containers_of_pods_that_no_longer_exist(
    admin: rest.Client, oci: helpers.Harness
) -> None:
    """A pod the runtime still runs but the API does not know is removed, leaving nothing."""
    orphan = helpers.make_pod([helpers.sh("c", "sleep 1000")])
    uid = oci.start(orphan)
    await oci.wait_state(uid, "c", "running")
    host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci.runtime)
    await host.start()
    try:
        await helpers.wait_for(lambda: uid not in oci.runtime.get_pods(), what="orphan removed")
    finally:
        await host.stop()
    await oci.runtime.aclose()
    assert (await helpers.leaks(oci.runtime, uid)).empty()
