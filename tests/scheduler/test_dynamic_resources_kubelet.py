"""The kubelet's side of DRA: the simulated runtime runs a pod with an allocated claim; a
runtime without DRA plugins (the oci kubelet's case) refuses it as upstream's kubelet does."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.controllers import manager
from kajitori.kubelet import dra, kubelet
from kajitori.kubelet.runtimes import simulated

Object = dict[str, Any]
NS = "default"
DRIVER = "gpu.example.com"
NODE = kubelet_cmd.node_configs(1)[0].name


class NoPluginsRuntime(simulated.SimulatedRuntime):
    """Simulated containers, but typed as a runtime that prepares no claims (like oci)."""

    type = "oci"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def node(
    admin: rest.Client, runtime: simulated.SimulatedRuntime
) -> AsyncIterator[kubelet.KubeletHost]:
    """One kubelet over ``runtime``, with node IPAM giving its node a pod CIDR."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, account, namespace=NS)
    controllers = manager.ControllerManager(admin, controllers=["nodeipam"])
    controllers.start()
    host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), runtime)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()
        await controllers.stop()


@pytest.fixture
async def simulated_node(admin: rest.Client) -> AsyncIterator[kubelet.KubeletHost]:
    async with node(admin, simulated.SimulatedRuntime()) as host:
        yield host


@pytest.fixture
async def node_without_plugins(admin: rest.Client) -> AsyncIterator[kubelet.KubeletHost]:
    async with node(admin, NoPluginsRuntime()) as host:
        yield host


async def allocated_pod(admin: rest.Client, name: str) -> None:
    """A claim allocated on NODE and reserved for a pod, then the pod bound there (the
    scheduler's PreBind and Bind)."""
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": f"{name}-gpu"},
        "spec": {
            "devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": DRIVER}}]}
        },
    }
    made = await admin.create(rest.RESOURCECLAIMS, body, namespace=NS)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"claims": [{"name": "gpu"}]}}],
            "resourceClaims": [{"name": "gpu", "resourceClaimName": f"{name}-gpu"}],
        },
    }
    created = await admin.create(rest.PODS, pod, namespace=NS)
    result = {"request": "gpu", "driver": DRIVER, "pool": NODE, "device": "gpu-0"}
    made["status"] = {
        "allocation": {"devices": {"results": [result]}},
        "reservedFor": [{"resource": "pods", "name": name, "uid": created["metadata"]["uid"]}],
    }
    await admin.update(rest.RESOURCECLAIMS, made, subresource="status")
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"kind": "Node", "name": NODE},
    }
    await admin.create(rest.PODS, binding, namespace=NS, subresource="binding")


async def phase(admin: rest.Client, name: str) -> str:
    found = await admin.get(rest.PODS, name, namespace=NS)
    return str((found.get("status") or {}).get("phase") or "")


async def test_the_simulated_runtime_treats_allocated_claims_as_prepared(
    admin: rest.Client, simulated_node: kubelet.KubeletHost
) -> None:
    await allocated_pod(admin, "trainer")
    await eventually(lambda: _is(phase(admin, "trainer"), "Running"))


async def test_without_a_registered_driver_the_pod_is_refused_and_waits(
    admin: rest.Client, node_without_plugins: kubelet.KubeletHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dra, "RETRY_SECONDS", 0.2)  # upstream's sync period is 10 s
    await allocated_pod(admin, "trainer")

    async def refusals() -> list[Object]:
        listed = await admin.list(rest.EVENTS, namespace=NS)
        return [e for e in listed["items"] if e["reason"] == "FailedPrepareDynamicResources"]

    [event] = await eventually(refusals)
    assert (event["type"], event["source"]["component"], event["involvedObject"]["name"]) == (
        "Warning",
        "kubelet",
        "trainer",
    )
    assert event["message"] == (
        "Failed to prepare dynamic resources: prepare dynamic resources: "
        f"DRA driver {DRIVER} is not registered"
    )
    # A claim not (yet) reserved for the pod is refused too, naming both.
    await _unreserve(admin, "trainer-gpu")
    await admin.delete(rest.EVENTS, event["metadata"]["name"], namespace=NS)
    [event] = await eventually(refusals, timeout=15.0)
    assert re.fullmatch(
        r"Failed to prepare dynamic resources: prepare dynamic resources: pod trainer \([0-9a-f-]+\) "
        r"is not allowed to use resource claim trainer-gpu \([0-9a-f-]+\)",
        event["message"],
    )
    # No sandbox, no containers: the pod stays Pending.
    found = await admin.get(rest.PODS, "trainer", namespace=NS)
    assert (found.get("status") or {}).get("phase") == "Pending"
    assert not (found.get("status") or {}).get("containerStatuses")


async def _unreserve(admin: rest.Client, name: str) -> None:
    claim = await admin.get(rest.RESOURCECLAIMS, name, namespace=NS)
    claim["status"]["reservedFor"] = None
    await admin.update(rest.RESOURCECLAIMS, claim, subresource="status")


async def _is(value: Awaitable[str], wanted: str) -> bool:
    return await value == wanted
