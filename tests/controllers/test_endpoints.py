"""The Endpoints controller against a real in-process API server, acting as endpoint-controller."""

from __future__ import annotations

from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import endpoints, manager

Object = dict[str, Any]
NS = "default"


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """Only the endpoint controller, with its own ServiceAccount's RBAC."""
    return await start_controllers("endpoint")


def _service(name: str, *, selector: Object | None, headless: bool = False, **spec: Any) -> Object:
    body: Object = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"team": "blue"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}], **spec},
    }
    if selector is not None:
        body["spec"]["selector"] = selector
    if headless:
        body["spec"]["clusterIP"] = "None"
    return body


async def _pod(
    client: rest.Client,
    name: str,
    ip: str,
    *,
    ready: bool = True,
    app: str = "web",
    port_name: str = "web",
    **spec: Any,
) -> Object:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "c",
                    "image": "nginx:1",
                    "ports": [{"name": port_name, "containerPort": 8080}],
                }
            ],
            **spec,
        },
    }
    await client.create(rest.PODS, pod, namespace=NS)
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    return await client.patch(
        rest.PODS, name, {"status": status}, namespace=NS, subresource="status"
    )


async def _endpoints(client: rest.Client, name: str) -> Object | None:
    try:
        return await client.get(rest.ENDPOINTS, name, namespace=NS)
    except rest.ApiError as exc:
        if exc.not_found:
            return None
        raise


async def test_ready_and_unready_pods_become_addresses_with_their_named_port(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Ready pod → addresses, unready → notReadyAddresses; targetPort "web" → 8080."""
    ready = await _pod(admin, "web-1", "10.244.0.5")
    await _pod(admin, "web-2", "10.244.0.6", ready=False)
    await _pod(admin, "other", "10.244.0.7", app="other")
    await admin.create(rest.SERVICES, _service("web", selector={"app": "web"}), namespace=NS)

    async def filled() -> Object | None:
        found = await _endpoints(admin, "web")
        subsets = (found or {}).get("subsets") or []
        return found if subsets and subsets[0].get("notReadyAddresses") else None

    found = await eventually(filled)
    assert found["subsets"] == [
        {
            "addresses": [
                {
                    "ip": "10.244.0.5",
                    "nodeName": "node-1",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": NS,
                        "name": "web-1",
                        "uid": ready["metadata"]["uid"],
                    },
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "10.244.0.6",
                    "nodeName": "node-1",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": NS,
                        "name": "web-2",
                        "uid": found["subsets"][0]["notReadyAddresses"][0]["targetRef"]["uid"],
                    },
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]
    meta = found["metadata"]
    assert meta["labels"] == {
        "team": "blue",
        "endpoints.kubernetes.io/managed-by": "endpoint-controller",
    }
    assert meta["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]


async def test_a_pod_turning_ready_moves_to_addresses_and_a_deleted_pod_leaves(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Endpoints follow pod readiness and deletion."""
    await _pod(admin, "web-1", "10.244.0.5", ready=False)
    await admin.create(rest.SERVICES, _service("web", selector={"app": "web"}), namespace=NS)
    await eventually(lambda: _subset_field(admin, "notReadyAddresses"))
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    await admin.patch(rest.PODS, "web-1", {"status": ready}, namespace=NS, subresource="status")
    await eventually(lambda: _subset_field(admin, "addresses"))
    await admin.delete(rest.PODS, "web-1", namespace=NS, grace_period_seconds=0)

    async def emptied() -> bool:
        found = await _endpoints(admin, "web")
        return found is not None and not found.get("subsets")

    await eventually(emptied)


async def _subset_field(client: rest.Client, field: str) -> bool:
    found = await _endpoints(client, "web")
    subsets = (found or {}).get("subsets") or []
    return bool(subsets and subsets[0].get(field))


async def test_publish_not_ready_addresses_lists_unready_pods_as_ready(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """publishNotReadyAddresses: every pod with an IP is in ``addresses``."""
    await _pod(admin, "web-1", "10.244.0.5", ready=False)
    service = _service("web", selector={"app": "web"}, publishNotReadyAddresses=True)
    await admin.create(rest.SERVICES, service, namespace=NS)
    await eventually(lambda: _subset_field(admin, "addresses"))


async def test_a_headless_service_gets_pod_hostnames_and_the_headless_label(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A pod with hostname + subdomain naming the Service is listed with its hostname."""
    await _pod(admin, "db-0", "10.244.0.9", hostname="db-0", subdomain="db")
    service = _service("db", selector={"app": "web"}, headless=True)
    await admin.create(rest.SERVICES, service, namespace=NS)

    async def listed() -> Object | None:
        found = await _endpoints(admin, "db")
        return found if (found or {}).get("subsets") else None

    found = await eventually(listed)
    assert found["subsets"][0]["addresses"][0]["hostname"] == "db-0"
    assert found["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


async def test_a_service_without_a_selector_is_left_alone(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A selector-less Service's hand-made Endpoints stay as written; deleting the Service
    of a selector Service removes its Endpoints."""
    await admin.create(rest.SERVICES, _service("manual", selector=None), namespace=NS)
    manual = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}],
    }
    await admin.create(rest.ENDPOINTS, manual, namespace=NS)
    await admin.create(rest.SERVICES, _service("web", selector={"app": "web"}), namespace=NS)
    await eventually(lambda: _endpoints(admin, "web"))
    stored = await admin.get(rest.ENDPOINTS, "manual", namespace=NS)
    assert stored["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]
    assert "endpoints.kubernetes.io/managed-by" not in (stored["metadata"].get("labels") or {})
    await admin.delete(rest.SERVICES, "web", namespace=NS)

    async def gone() -> bool:
        return await _endpoints(admin, "web") is None

    await eventually(gone)


def test_more_than_1000_addresses_are_truncated_and_annotated() -> None:
    """1100 ready pods → 1000 addresses and ``over-capacity: truncated``; not-ready go first."""
    service = {
        "metadata": {"name": "big", "namespace": NS},
        "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]},
    }
    pods = [
        {
            "metadata": {"name": f"p{i}", "namespace": NS, "uid": f"u{i}"},
            "spec": {},
            "status": {
                "phase": "Running",
                "podIP": f"10.0.{i // 250}.{i % 250}",
                "conditions": [{"type": "Ready", "status": "True" if i < 950 else "False"}],
            },
        }
        for i in range(1100)
    ]
    subsets = endpoints.compute_subsets(service, pods)
    written = endpoints.new_endpoints(None, service, subsets, None)
    assert written["metadata"]["annotations"] == {
        "endpoints.kubernetes.io/over-capacity": "truncated"
    }
    (subset,) = written["subsets"]
    assert (len(subset["addresses"]), len(subset["notReadyAddresses"])) == (950, 50)
    assert endpoints.needs_write(written, subsets, service) is False
    small = endpoints.compute_subsets(service, pods[:10])
    assert endpoints.needs_write(written, small, service) is True
    assert "over-capacity" not in str(endpoints.new_endpoints(written, service, small, None))
