"""The EndpointSlice controller: slices planned in memory, and kept against a real API server."""

from __future__ import annotations

from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import informer, rest
from kajitori.controllers import endpointslice, manager

Object = dict[str, Any]
NS = "default"
SERVICE: Object = {
    "metadata": {"name": "web", "namespace": NS, "uid": "svc-uid", "labels": {"team": "blue"}},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
}


@pytest.fixture
async def admin(admin: rest.Client) -> rest.Client:
    """The admin client of conftest, with node-1 (zone a) registered."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
    }
    await admin.create(rest.NODES, node)
    return admin


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """Only the endpointslice controller, with its own ServiceAccount's RBAC."""
    return await start_controllers("endpointslice")


async def _pod(client: rest.Client, name: str, ip: str, *, ready: bool = True) -> Object:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {"name": "c", "image": "nginx:1", "ports": [{"name": "web", "containerPort": 8080}]}
            ],
        },
    }
    await client.create(rest.PODS, pod, namespace=NS)
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return await client.patch(
        rest.PODS, name, {"status": status}, namespace=NS, subresource="status"
    )


def _service(name: str, *, selector: Object | None = None) -> Object:
    body: Object = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"team": "blue"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}]},
    }
    if selector is not None:
        body["spec"]["selector"] = selector
    return body


async def _slices(client: rest.Client, service: str) -> list[Object]:
    listed = await client.list(
        rest.ENDPOINTSLICES, namespace=NS, label_selector=f"kubernetes.io/service-name={service}"
    )
    return list(listed["items"])


async def test_a_service_gets_a_slice_with_conditions_node_zone_and_owner(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """One slice: labels, managed-by, owner Service, IPv4, port 8080 named http, zone-a."""
    pod = await _pod(admin, "web-1", "10.244.0.5")
    service = await admin.create(
        rest.SERVICES, _service("web", selector={"app": "web"}), namespace=NS
    )

    async def filled() -> list[Object]:
        return [s for s in await _slices(admin, "web") if s.get("endpoints")]

    (slice_,) = await eventually(filled)
    meta = slice_["metadata"]
    assert meta["name"].startswith("web-")
    assert meta["labels"] == {
        "team": "blue",
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": service["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert slice_["endpoints"] == [
        {
            "addresses": ["10.244.0.5"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {
                "kind": "Pod",
                "namespace": NS,
                "name": "web-1",
                "uid": pod["metadata"]["uid"],
            },
            "nodeName": "node-1",
            "zone": "zone-a",
        }
    ]


async def test_a_terminating_pod_stays_serving_but_not_ready(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A graceful delete flips the endpoint to ready=false, serving=true, terminating=true."""
    await _pod(admin, "web-1", "10.244.0.5")
    await admin.create(rest.SERVICES, _service("web", selector={"app": "web"}), namespace=NS)
    await admin.delete(rest.PODS, "web-1", namespace=NS, grace_period_seconds=30)

    async def terminating() -> Object | None:
        for slice_ in await _slices(admin, "web"):
            for endpoint in slice_.get("endpoints") or ():
                if endpoint["conditions"].get("terminating"):
                    return dict(endpoint["conditions"])
        return None

    conditions = await eventually(terminating)
    assert conditions == {"ready": False, "serving": True, "terminating": True}


async def test_a_service_without_pods_keeps_one_empty_placeholder_slice(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """No pods: one slice without endpoints or ports; a selector-less Service gets none."""
    await admin.create(rest.SERVICES, _service("empty", selector={"app": "none"}), namespace=NS)
    await admin.create(rest.SERVICES, _service("manual"), namespace=NS)
    (placeholder,) = await eventually(lambda: _slices(admin, "empty"))
    assert placeholder.get("endpoints") in (None, [])
    assert not placeholder.get("ports")
    # Both Services were synced from the same burst of events; only one has slices.
    assert await _slices(admin, "manual") == []


def _endpoint(i: int, *, ready: bool = True) -> Object:
    return {
        "addresses": [f"10.0.{i // 250}.{i % 250}"],
        "conditions": {"ready": ready, "serving": ready, "terminating": False},
    }


def _desired(count: int) -> endpointslice.Desired:
    ports = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    key = endpointslice.ports_key(ports)
    group = {endpointslice.endpoint_key(e): e for e in (_endpoint(i) for i in range(count))}
    return endpointslice.Desired({key: group}, {key: ports})


def test_endpoints_are_split_into_slices_of_at_most_100() -> None:
    """250 endpoints and no slices → creates of 100, 100 and 50, owned by the Service."""
    planned = endpointslice.plan(SERVICE, [], _desired(250), trigger=None)
    assert [len(s["endpoints"]) for s in planned.create] == [100, 100, 50]
    assert planned.update == [] and planned.delete == []
    assert planned.create[0]["metadata"]["generateName"] == "web-"


def test_a_changed_endpoint_is_replaced_in_its_slice_without_new_slices() -> None:
    """One endpoint gone and one new: the existing slice is updated in place."""
    ports = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    existing = {
        "metadata": {"name": "web-abc", "namespace": NS, "resourceVersion": "5"},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": [_endpoint(i) for i in range(3)],
    }
    desired = _desired(4)
    gone = endpointslice.endpoint_key(_endpoint(0))
    del desired.groups[endpointslice.ports_key(ports)][gone]
    planned = endpointslice.plan(SERVICE, [existing], desired, trigger="2026-01-01T00:00:00Z")
    assert planned.create == [] and planned.delete == []
    (updated,) = planned.update
    assert updated["metadata"]["resourceVersion"] == "5"
    assert [e["addresses"][0] for e in updated["endpoints"]] == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]
    assert updated["metadata"]["annotations"] == {
        "endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:00Z"
    }


def test_slices_for_ports_no_pod_serves_any_more_are_deleted() -> None:
    """A slice whose port set is no longer desired goes; the desired one is created."""
    stale = {
        "metadata": {"name": "web-old", "namespace": NS},
        "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}],
        "endpoints": [_endpoint(1)],
    }
    planned = endpointslice.plan(SERVICE, [stale], _desired(1), trigger=None)
    assert [s["metadata"]["name"] for s in planned.delete] == ["web-old"]
    assert len(planned.create) == 1


def test_the_tracker_waits_for_the_cache_to_see_our_writes() -> None:
    """A written slice newer than the cache, or a deleted one still cached, is stale."""
    tracker = endpointslice.SliceTracker()
    written = {"metadata": {"name": "web-a", "resourceVersion": "7"}}
    tracker.record("default/web", written)
    assert tracker.stale("default/web", [])
    assert tracker.stale("default/web", [{"metadata": {"name": "web-a", "resourceVersion": "6"}}])
    assert not tracker.stale("default/web", [written])
    tracker.record("default/web", written, deleted=True)
    assert tracker.stale("default/web", [written])
    assert not tracker.stale("default/web", [])


def test_pods_on_unknown_nodes_are_left_out_unless_not_ready_addresses_are_published() -> None:
    """Upstream skips a pod whose node is missing (and retries) except for publishNotReady."""
    pod = {
        "metadata": {"name": "p", "namespace": NS, "uid": "u", "labels": {"app": "web"}},
        "spec": {"nodeName": "ghost"},
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    }
    nodes = informer.Indexer()
    desired = endpointslice.desired_endpoints(SERVICE, [pod], nodes)
    assert desired.groups == {} and desired.missing_nodes == 1
    publish = {**SERVICE, "spec": {**SERVICE["spec"], "publishNotReadyAddresses": True}}
    desired = endpointslice.desired_endpoints(publish, [pod], nodes)
    (group,) = desired.groups.values()
    assert group["10.0.0.1"]["conditions"] == {
        "ready": True,
        "serving": False,
        "terminating": False,
    }
