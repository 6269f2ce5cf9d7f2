"""DynamicResources: the structured allocator alone, then pods with claims end to end.

The end-to-end tests run the real API server, the resourceclaim controller
and the garbage collector (as their ServiceAccounts) and the scheduler (as
system:kube-scheduler), as ``kajitori up`` wires them; the test plays the
DRA driver by publishing ResourceSlices.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tests.scheduler import helpers

from kajitori.client import rest
from kajitori.cmd import controller_manager
from kajitori.cmd import scheduler as scheduler_cmd
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.scheduler import framework
from kajitori.scheduler.plugins import dra_allocator
from kajitori.scheduler.plugins import dynamic_resources as dra

Object = dict[str, Any]
DRIVER = "gpu.example.com"
NS = "default"


def device(name: str, *, model: str = "x", taints: list[Object] | None = None) -> Object:
    found: Object = {"name": name, "attributes": {"model": {"string": model}}}
    if taints:
        found["taints"] = taints
    return found


def resource_slice(node: str, *devices: Object, name: str = "", **pool: Any) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name or f"{node}-gpus"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1, **pool},
            "devices": list(devices),
        },
    }


def device_class(name: str = DRIVER) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]},
    }


def request(name: str = "gpu", **exactly: Any) -> Object:
    return {"name": name, "exactly": {"deviceClassName": DRIVER, **exactly}}


def claim(name: str, *requests: Object, uid: str = "") -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": NS, "uid": uid or f"uid-{name}"},
        "spec": {"devices": {"requests": list(requests) or [request()]}},
    }


def selector(expression: str) -> Object:
    return {"cel": {"expression": expression}}


# ----- the allocator alone ------------------------------------------------------------------


def allocate(
    claims: list[Object], slices: list[Object], node: str = "node-a", *, in_use: Any = ()
) -> list[Object] | None:
    classes = {DRIVER: device_class()}
    allocator = dra_allocator.Allocator(claims, set(in_use), classes.get, slices)
    return allocator.allocate(framework.NodeInfo(helpers.make_node(node)))


def devices_of(allocation: Object) -> list[tuple[str, str]]:
    return [(r["request"], r["device"]) for r in allocation["devices"]["results"]]


GPUS = resource_slice("node-a", device("gpu-0"), device("gpu-1", model="y"))


def test_exact_count_takes_free_devices_of_slices_on_the_node() -> None:
    [allocation] = allocate([claim("c", request(count=2))], [GPUS]) or [{}]
    assert devices_of(allocation) == [("gpu", "gpu-0"), ("gpu", "gpu-1")]
    assert allocation["nodeSelector"] == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}
        ]
    }
    assert allocation["devices"]["results"][0] == {
        "request": "gpu",
        "driver": DRIVER,
        "pool": "node-a",
        "device": "gpu-0",
    }
    assert allocate([claim("c")], [GPUS], node="node-b") is None
    taken = [(DRIVER, "node-a", "gpu-0")]
    assert devices_of((allocate([claim("c")], [GPUS], in_use=taken) or [{}])[0]) == [
        ("gpu", "gpu-1")
    ]
    assert allocate([claim("c", request(count=2))], [GPUS], in_use=taken) is None
    # Two claims of one pod never share a device.
    both = allocate([claim("c1"), claim("c2")], [GPUS]) or []
    assert [devices_of(a) for a in both] == [[("gpu", "gpu-0")], [("gpu", "gpu-1")]]
    assert allocate([claim("c1"), claim("c2"), claim("c3")], [GPUS]) is None


def test_cel_selectors_of_request_and_class_must_all_match() -> None:
    model_y = request(selectors=[selector(f'device.attributes["{DRIVER}"].model == "y"')])
    assert devices_of((allocate([claim("c", model_y)], [GPUS]) or [{}])[0]) == [("gpu", "gpu-1")]
    model_z = request(selectors=[selector(f'device.attributes["{DRIVER}"].model == "z"')])
    assert allocate([claim("c", model_z)], [GPUS]) is None
    # A domain no device has is an empty map (upstream's), so has() is false, not an error.
    other = request(selectors=[selector('has(device.attributes["other.example.com"].model)')])
    assert allocate([claim("c", other)], [GPUS]) is None
    # A missing attribute is a CEL runtime error: upstream's allocator error, naming the claim.
    broken = request(selectors=[selector(f'device.attributes["{DRIVER}"].memory == 1')])
    with pytest.raises(
        dra_allocator.AllocationError, match=r"^claim default/c: selector #0: CEL runtime"
    ):
        allocate([claim("c", broken)], [GPUS])


def test_all_mode_first_available_and_pool_generations() -> None:
    [every] = allocate([claim("c", request(allocationMode="All"))], [GPUS]) or [{}]
    assert devices_of(every) == [("gpu", "gpu-0"), ("gpu", "gpu-1")]
    # "All" needs every matching device free, and at least one.
    taken = [(DRIVER, "node-a", "gpu-1")]
    assert allocate([claim("c", request(allocationMode="All"))], [GPUS], in_use=taken) is None
    assert allocate([claim("c", request(allocationMode="All"))], [GPUS], node="node-b") is None
    # firstAvailable: the first subrequest that fits, named "<request>/<subrequest>".
    subs = {
        "name": "gpu",
        "firstAvailable": [
            {"name": "big", "deviceClassName": DRIVER, "count": 3},
            {"name": "small", "deviceClassName": DRIVER, "count": 1},
        ],
    }
    assert devices_of((allocate([claim("c", subs)], [GPUS]) or [{}])[0]) == [("gpu/small", "gpu-0")]
    # Only the newest generation of a pool counts; an incomplete pool gives nothing.
    old = resource_slice("node-a", device("old-0"), name="old")
    newer = resource_slice("node-a", device("new-0"), name="new", generation=2)
    assert devices_of((allocate([claim("c")], [old, newer]) or [{}])[0]) == [("gpu", "new-0")]
    partial = resource_slice("node-a", device("gpu-0"), resourceSliceCount=2)
    assert allocate([claim("c")], [partial]) is None
    with pytest.raises(dra_allocator.AllocationError, match="is currently being updated"):
        allocate([claim("c", request(allocationMode="All"))], [partial])


def test_tainted_devices_only_when_tolerated() -> None:
    broken = [{"key": "broken", "value": "yes", "effect": "NoSchedule"}]
    slices = [resource_slice("node-a", device("gpu-0", taints=broken))]
    assert allocate([claim("c")], slices) is None
    tolerant = request(tolerations=[{"key": "broken", "operator": "Exists"}])
    [allocation] = allocate([claim("c", tolerant)], slices) or [{}]
    assert devices_of(allocation) == [("gpu", "gpu-0")]
    assert allocation["devices"]["results"][0]["tolerations"] == [
        {"key": "broken", "operator": "Exists"}
    ]
    wrong_value = request(tolerations=[{"key": "broken", "operator": "Equal", "value": "no"}])
    assert allocate([claim("c", wrong_value)], slices) is None
    # Effect None never blocks.
    harmless = [resource_slice("node-a", device("gpu-0", taints=[{"key": "k", "effect": "None"}]))]
    assert allocate([claim("c")], harmless) is not None


class Listers:
    """``DraListers`` over plain lists (what the informers would hold)."""

    def __init__(self, claims: list[Object], slices: list[Object]) -> None:
        self.claim_list, self.slice_list = claims, slices

    def claim(self, namespace: str, name: str) -> Object | None:
        return next((c for c in self.claim_list if c["metadata"]["name"] == name), None)

    def claims(self) -> list[Object]:
        return self.claim_list

    def slices(self) -> list[Object]:
        return self.slice_list

    def device_class(self, name: str) -> Object | None:
        return device_class() if name == DRIVER else None


def claim_pod(name: str, *claim_names: str, template: bool = False) -> Object:
    built = helpers.make_pod(name)
    source = "resourceClaimTemplateName" if template else "resourceClaimName"
    built["spec"]["resourceClaims"] = [{"name": c, source: c} for c in claim_names]
    return built


def pre_filter(plugin: dra.DynamicResources, pod: Object) -> framework.Status:
    return plugin.pre_filter({}, pod, [])


def test_pre_enqueue_and_pre_filter_wait_with_upstreams_messages() -> None:
    plugin = dra.DynamicResources(Listers([claim("c"), claim("odd", request("x"))], [GPUS]))
    assert plugin.pre_enqueue(helpers.make_pod("plain")) == ""
    assert pre_filter(plugin, helpers.make_pod("plain")).code == framework.Code.SKIP
    waiting = claim_pod("p", "gpu", template=True)
    assert plugin.pre_enqueue(waiting) == 'pod "default/p": ResourceClaim not created yet'
    assert plugin.pre_enqueue(claim_pod("p", "nope")) == (
        'resourceclaim.resource.k8s.io "nope" not found'
    )
    # A generated claim must be the pod's own.
    waiting["status"]["resourceClaimStatuses"] = [{"name": "gpu", "resourceClaimName": "c"}]
    assert plugin.pre_enqueue(waiting).startswith("ResourceClaim default/c was not created for")
    status = pre_filter(plugin, waiting)
    assert status.code == framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    # A request whose class is missing; a claim being allocated for another pod.
    plugin.listers.claim_list[1]["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"] = (
        "nope"
    )
    assert pre_filter(plugin, claim_pod("p", "odd")).reasons == (
        "request x: device class nope does not exist",
    )
    reserved = plugin.reserve(
        claim_pod("first", "c"), framework.NodeInfo(helpers.make_node("node-a"))
    )
    assert not reserved.empty and list(reserved.allocations) == ["uid-c"]
    assert pre_filter(plugin, claim_pod("second", "c")).reasons == (
        "resource claim default/c is in the process of being allocated",
    )


# ----- end to end ---------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


@pytest.fixture
async def cluster(apiserver: APIServerProcess, admin: rest.Client) -> AsyncIterator[rest.Client]:
    """Two nodes, the GPU class, the controllers and the scheduler; yields the admin client."""
    assert apiserver.http is not None and apiserver.pki is not None
    app, ca = apiserver.http.app, apiserver.pki.ca
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, account, namespace=NS)
    for name in ("node-a", "node-b"):
        node = helpers.make_node(name)
        await admin.create(rest.NODES, {"apiVersion": "v1", "kind": "Node", **node})
        await admin.patch(rest.NODES, name, {"status": node["status"]}, subresource="status")
    await admin.create(rest.DEVICECLASSES, device_class())
    manager = controller_manager.start_in_process(
        app, ca, controllers=("resourceclaim-controller", "garbagecollector")
    )
    running = scheduler_cmd.start_in_process(app, ca)
    try:
        yield admin
    finally:
        await scheduler_cmd.stop(running)
        await controller_manager.stop(manager)


def pod(name: str, **claim_source: str) -> Object:
    source = claim_source or {"resourceClaimTemplateName": "gpu"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"claims": [{"name": "gpu"}]}}],
            "resourceClaims": [{"name": "gpu", **source}],
        },
    }


FULL = (
    "0/2 nodes are available: 2 cannot allocate all claims. "
    "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
)


async def scheduled(client: rest.Client, name: str) -> Object | None:
    found = await client.get(rest.PODS, name, namespace=NS)
    return found if found["spec"].get("nodeName") else None


async def pending_message(client: rest.Client, name: str) -> str | None:
    found = await client.get(rest.PODS, name, namespace=NS)
    for condition in (found.get("status") or {}).get("conditions") or ():
        if condition["type"] == "PodScheduled" and condition["status"] == "False":
            return str(condition["message"])
    return None


async def generated_claim(client: rest.Client, pod_name: str) -> Object | None:
    found = await client.get(rest.PODS, pod_name, namespace=NS)
    statuses = (found.get("status") or {}).get("resourceClaimStatuses") or []
    if not statuses:
        return None
    return await client.get(rest.RESOURCECLAIMS, statuses[0]["resourceClaimName"], namespace=NS)


async def test_template_claims_are_made_allocated_reserved_and_freed(cluster: rest.Client) -> None:
    admin = cluster
    await admin.create(
        rest.RESOURCESLICES, resource_slice("node-a", device("gpu-0"), device("gpu-1"))
    )
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "gpu", "namespace": NS},
        "spec": {"metadata": {"labels": {"app": "train"}}, "spec": claim("x")["spec"]},
    }
    await admin.create(rest.RESOURCECLAIMTEMPLATES, template, namespace=NS)
    first = await admin.create(rest.PODS, pod("p1"), namespace=NS)

    bound = await eventually(lambda: scheduled(admin, "p1"))
    assert bound["spec"]["nodeName"] == "node-a"
    made = await generated_claim(admin, "p1")
    assert made is not None
    assert made["metadata"]["name"].startswith("p1-gpu-")
    assert made["metadata"]["generateName"] == "p1-gpu-"
    assert made["metadata"]["labels"] == {"app": "train"}
    assert made["metadata"]["annotations"] == {"resource.kubernetes.io/pod-claim-name": "gpu"}
    [owner] = made["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Pod",
        "p1",
        first["metadata"]["uid"],
        True,
    )
    assert made["metadata"]["finalizers"] == ["resource.kubernetes.io/delete-protection"]
    allocation = made["status"]["allocation"]
    assert [(r["request"], r["driver"], r["pool"]) for r in allocation["devices"]["results"]] == [
        ("gpu", DRIVER, "node-a")
    ]
    assert allocation["nodeSelector"]["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [
        "node-a"
    ]
    assert made["status"]["reservedFor"] == [
        {"resource": "pods", "name": "p1", "uid": first["metadata"]["uid"]}
    ]
    first_device = allocation["devices"]["results"][0]["device"]

    await admin.create(rest.PODS, pod("p2"), namespace=NS)
    assert (await eventually(lambda: scheduled(admin, "p2")))["spec"]["nodeName"] == "node-a"
    second = await generated_claim(admin, "p2")
    assert second is not None
    second_device = second["status"]["allocation"]["devices"]["results"][0]["device"]
    assert {first_device, second_device} == {"gpu-0", "gpu-1"}

    # Both GPUs taken: the third pod waits, with upstream's diagnosis.
    await admin.create(rest.PODS, pod("p3"), namespace=NS)
    message = await eventually(lambda: pending_message(admin, "p3"))
    assert message == FULL

    # p1 goes: its claim is deleted (allocation and finalizer dropped), and p3 gets its GPU.
    made_name = made["metadata"]["name"]
    await admin.delete(rest.PODS, "p1", namespace=NS, grace_period_seconds=0)

    async def claim_gone() -> bool:
        try:
            await admin.get(rest.RESOURCECLAIMS, made_name, namespace=NS)
        except rest.ApiError as exc:
            return exc.not_found
        return False

    await eventually(claim_gone)
    assert (await eventually(lambda: scheduled(admin, "p3")))["spec"]["nodeName"] == "node-a"
    third = await generated_claim(admin, "p3")
    assert third is not None
    assert third["status"]["allocation"]["devices"]["results"][0]["device"] == first_device


async def test_selected_and_tainted_devices(cluster: rest.Client) -> None:
    admin = cluster
    broken = [{"key": "broken", "value": "fan", "effect": "NoSchedule"}]
    await admin.create(
        rest.RESOURCESLICES,
        resource_slice(
            "node-a", device("gpu-0", model="x", taints=broken), device("gpu-1", model="y")
        ),
    )
    model_x = selector(f'device.attributes["{DRIVER}"].model == "x"')
    wants_x = claim("wants-x", request(selectors=[model_x]))
    del wants_x["metadata"]["uid"]
    await admin.create(rest.RESOURCECLAIMS, wants_x, namespace=NS)
    await admin.create(rest.PODS, pod("picky", resourceClaimName="wants-x"), namespace=NS)
    assert await eventually(lambda: pending_message(admin, "picky")) == FULL

    tolerant = claim(
        "tolerant",
        request(selectors=[model_x], tolerations=[{"key": "broken", "operator": "Exists"}]),
    )
    del tolerant["metadata"]["uid"]
    await admin.create(rest.RESOURCECLAIMS, tolerant, namespace=NS)
    await admin.create(rest.PODS, pod("brave", resourceClaimName="tolerant"), namespace=NS)
    assert (await eventually(lambda: scheduled(admin, "brave")))["spec"]["nodeName"] == "node-a"
    written = await admin.get(rest.RESOURCECLAIMS, "tolerant", namespace=NS)
    [result] = written["status"]["allocation"]["devices"]["results"]
    assert (result["device"], result["tolerations"]) == (
        "gpu-0",
        [{"key": "broken", "operator": "Exists"}],
    )
    assert await pending_message(admin, "picky") is not None

    # A selector failing at run time aborts the cycle: upstream's SchedulerError.
    missing = selector(f'device.attributes["{DRIVER}"].memory == 1')
    broken = claim("broken", request(selectors=[missing]))
    del broken["metadata"]["uid"]
    await admin.create(rest.RESOURCECLAIMS, broken, namespace=NS)
    await admin.create(rest.PODS, pod("confused", resourceClaimName="broken"), namespace=NS)
    message = await eventually(lambda: pending_message(admin, "confused"))
    assert message.startswith(
        'running "DynamicResources" filter plugin: '
        "claim default/broken: selector #0: CEL runtime error: "
    )
    found = await admin.get(rest.PODS, "confused", namespace=NS)
    [condition] = found["status"]["conditions"]
    assert condition["reason"] == "SchedulerError"
