"""Simulated kubelets against a real in-process API server: nodes, leases, pods."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet, node_status
from kajitori.kubelet.runtimes import simulated

Object = dict[str, Any]


async def eventually(
    check: Callable[[], Awaitable[Object | None]], timeout: float = 10.0
) -> Object:
    """Poll ``check`` until it returns an object."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def host(admin: rest.Client) -> AsyncIterator[kubelet.KubeletHost]:
    """Two simulated nodes with a 2 s lease (renewed every 0.5 s) and short back-offs."""
    runtime = simulated.SimulatedRuntime(start_delay=0.2, backoff_base=0.3, backoff_cap=1.0)
    running = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(2), runtime, lease_duration=2)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def pod(name: str, node: str, **annotations: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never" if annotations else "Always",
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
        },
    }


async def test_nodes_register_with_upstreams_shape_and_get_pod_cidrs(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    """Each node: labels, capacity, four conditions, addresses, nodeInfo, its own /24."""

    async def with_cidr() -> Object | None:
        found = await admin.get(rest.NODES, "kajitori-worker2")
        return found if found["spec"].get("podCIDR") else None

    node = await eventually(with_cidr)
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "kajitori-worker2"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["status"]["capacity"]["pods"] == "110"
    ready = {c["type"]: c for c in node["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    )
    assert node["status"]["addresses"] == [
        {"type": "InternalIP", "address": "172.18.0.3"},
        {"type": "Hostname", "address": "kajitori-worker2"},
    ]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.0"
    other = await eventually(with_cidr)
    first = await admin.get(rest.NODES, "kajitori-worker")
    assert {other["spec"]["podCIDR"], first["spec"]["podCIDR"]} == {
        "10.244.0.0/24",
        "10.244.1.0/24",
    }


async def test_the_lease_is_renewed_until_the_node_is_stopped(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    """renewTime advances every quarter lease; a stopped node's lease stands still."""
    ns = node_status.NODE_LEASE_NAMESPACE
    lease = await admin.get(rest.LEASES, "kajitori-worker", namespace=ns)
    assert lease["spec"]["leaseDurationSeconds"] == 2
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"

    async def renewed_after(previous: str) -> Object | None:
        found = await admin.get(rest.LEASES, "kajitori-worker", namespace=ns)
        return found if found["spec"]["renewTime"] != previous else None

    lease = await eventually(lambda: renewed_after(lease["spec"]["renewTime"]))
    await admin.patch(
        rest.NODES,
        "kajitori-worker",
        {"metadata": {"annotations": {node_status.STOPPED_ANNOTATION: "true"}}},
    )
    await asyncio.sleep(0.7)  # a renewal may have been in flight
    before = await admin.get(rest.LEASES, "kajitori-worker", namespace=ns)
    await asyncio.sleep(1.2)
    after = await admin.get(rest.LEASES, "kajitori-worker", namespace=ns)
    assert after["spec"]["renewTime"] == before["spec"]["renewTime"]


async def test_a_bound_pod_runs_with_an_ip_from_its_nodes_cidr_and_deletion_completes(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    """ContainerCreating → Running and Ready, podIP in the node's /24; delete removes it."""
    await admin.create(rest.PODS, pod("web", "kajitori-worker2"))

    async def in_phase(name: str, phase: str) -> Object | None:
        found = await admin.get(rest.PODS, name, namespace="default")
        return found if (found.get("status") or {}).get("phase") == phase else None

    async def creating() -> Object | None:
        found = await admin.get(rest.PODS, "web", namespace="default")
        statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
        return found if "waiting" in (statuses[0].get("state") or {}) else None

    pending = await eventually(creating)
    assert pending["status"]["phase"] == "Pending"
    waiting = pending["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ContainerCreating"
    running = await eventually(lambda: in_phase("web", "Running"))
    node = await admin.get(rest.NODES, "kajitori-worker2")
    network = ipaddress.ip_network(node["spec"]["podCIDR"])
    assert ipaddress.ip_address(running["status"]["podIP"]) in network
    assert running["status"]["hostIP"] == "172.18.0.3"
    ready = {c["type"]: c["status"] for c in running["status"]["conditions"]}
    assert ready["Ready"] == ready["ContainersReady"] == "True"
    await admin.delete(rest.PODS, "web", namespace="default")

    async def gone() -> Object | None:
        try:
            await admin.get(rest.PODS, "web", namespace="default")
        except rest.ApiError as exc:
            return {} if exc.not_found else None
        return None

    await eventually(gone)


@pytest.mark.parametrize(
    ("code", "phase", "reason"),
    [
        pytest.param("0", "Succeeded", "Completed", id="exit-0-succeeds"),
        pytest.param("3", "Failed", "Error", id="exit-3-fails"),
    ],
)
async def test_an_exiting_pod_with_restart_policy_never_ends_in_its_phase(
    admin: rest.Client, host: kubelet.KubeletHost, code: str, phase: str, reason: str
) -> None:
    """The annotated exit code decides Succeeded or Failed and the terminated reason."""
    name = f"job-{code}"
    await admin.create(
        rest.PODS,
        pod(
            name,
            "kajitori-worker",
            **{
                simulated.RUNTIME_SECONDS_ANNOTATION: "0.3",
                simulated.EXIT_CODE_ANNOTATION: code,
            },
        ),
    )

    async def finished() -> Object | None:
        found = await admin.get(rest.PODS, name, namespace="default")
        return found if (found.get("status") or {}).get("phase") == phase else None

    done = await eventually(finished)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (int(code), reason)


async def test_a_crashing_pod_restarts_with_a_growing_restart_count(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    """restartPolicy Always: the container is restarted and restartCount climbs."""
    crashing = pod("crash", "kajitori-worker", **{simulated.EXIT_CODE_ANNOTATION: "1"})
    crashing["spec"]["restartPolicy"] = "Always"
    await admin.create(rest.PODS, crashing)

    async def restarted_twice() -> Object | None:
        found = await admin.get(rest.PODS, "crash", namespace="default")
        statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
        return found if statuses[0].get("restartCount", 0) >= 2 else None

    found = await eventually(restarted_twice)
    assert found["status"]["phase"] == "Running"
    assert found["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1


async def test_a_pod_whose_containers_start_at_once_gets_one_status_write(
    admin: rest.Client,
) -> None:
    """With no start delay the first sync finds the containers running: one pods/status
    write takes the pod from its scheduled status to Running (upstream's status manager
    writes each status it generates, and there is only one)."""
    writes: list[Object] = []

    class Counting(rest.Client):
        async def request(self, method: str, path: str, **kwargs: Any) -> Object:
            if "/pods/" in path and path.endswith("/status") and method in ("PUT", "PATCH"):
                writes.append(kwargs["body"]["status"])
            return await super().request(method, path, **kwargs)

    node_client = Counting(admin.http)
    runtime = simulated.SimulatedRuntime(start_delay=0.0)
    running = kubelet.KubeletHost(
        admin, kubelet_cmd.node_configs(1), runtime, client_for=lambda _: node_client
    )
    await running.start()
    try:
        await admin.create(rest.PODS, pod("at-once", "kajitori-worker"))

        async def in_running() -> Object | None:
            found = await admin.get(rest.PODS, "at-once", namespace="default")
            return found if (found.get("status") or {}).get("phase") == "Running" else None

        await eventually(in_running)
        # The write's echo reaches the informer and must start nothing more.
        await running.pods.wait_for_sync()
        await eventually(lambda: _settled(running))
        assert [w["phase"] for w in writes] == ["Running"]
    finally:
        await running.stop()


async def _settled(host: kubelet.KubeletHost) -> Object | None:
    found = await host.client.get(rest.PODS, "at-once", namespace="default")
    echoed = host.pods.indexer.get("default/at-once") or {}
    same = echoed.get("metadata", {}).get("resourceVersion") == found["metadata"]["resourceVersion"]
    return {} if same and host.queue.idle() else None
