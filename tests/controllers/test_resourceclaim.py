"""The resourceclaim controller against the API server, acting as resource-claim-controller."""

from __future__ import annotations

from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, event_messages, eventually

from kajitori.client import rest
from kajitori.controllers import manager, resourceclaim

Object = dict[str, Any]
NS = "default"
DRIVER = "gpu.example.com"
FINALIZER = "resource.kubernetes.io/delete-protection"


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    return await start_controllers("resourceclaim-controller")


def claim_spec() -> Object:
    return {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": DRIVER}}]}}


def template(name: str = "gpu") -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {
            "metadata": {"labels": {"app": "train"}, "annotations": {"team": "ml"}},
            "spec": claim_spec(),
        },
    }


def pod(name: str, *entries: Object, node: str = "") -> Object:
    spec: Object = {
        "containers": [{"name": "c", "image": "i"}],
        "resourceClaims": list(entries) or [{"name": "gpu", "resourceClaimTemplateName": "gpu"}],
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def claim_statuses(client: rest.Client, name: str, count: int = 1) -> list[Object] | None:
    found = await client.get(rest.PODS, name, namespace=NS)
    statuses: list[Object] = (found.get("status") or {}).get("resourceClaimStatuses") or []
    return statuses if len(statuses) == count else None


async def gone(client: rest.Client, name: str) -> bool:
    try:
        await client.get(rest.RESOURCECLAIMS, name, namespace=NS)
    except rest.ApiError as exc:
        return exc.not_found
    return False


def test_generated_names_are_cut_as_upstream_cuts_them() -> None:
    assert resourceclaim.generate_name("web-0", "gpu") == "web-0-gpu-"
    long_pod, long_claim = "p" * 40, "c" * 40
    assert resourceclaim.generate_name(long_pod, long_claim) == "p" * 32 + "-" + "c" * 32 + "-"


async def test_claims_are_made_from_templates_and_recorded(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    await admin.create(rest.RESOURCECLAIMTEMPLATES, template(), namespace=NS)
    entries = (
        {"name": "gpu", "resourceClaimTemplateName": "gpu"},
        {"name": "second", "resourceClaimTemplateName": "gpu"},
    )
    created = await admin.create(rest.PODS, pod("trainer", *entries), namespace=NS)
    statuses = await eventually(lambda: claim_statuses(admin, "trainer", 2))
    assert [s["name"] for s in statuses] == ["gpu", "second"]
    for entry in statuses:
        made = await admin.get(rest.RESOURCECLAIMS, entry["resourceClaimName"], namespace=NS)
        meta = made["metadata"]
        assert meta["generateName"] == f"trainer-{entry['name']}-"
        assert meta["labels"] == {"app": "train"}
        assert meta["annotations"] == {
            "team": "ml",
            "resource.kubernetes.io/pod-claim-name": entry["name"],
        }
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "trainer",
                "uid": created["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert made["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"] == DRIVER
    listed = await admin.list(rest.RESOURCECLAIMS, namespace=NS)
    assert len(listed["items"]) == 2  # made once each, however often the pod was synced


async def test_a_missing_template_is_reported_then_used_once_it_exists(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    await admin.create(rest.PODS, pod("early"), namespace=NS)
    messages = await eventually(
        lambda: event_messages(admin, "early", "FailedResourceClaimCreation", at_least=1)
    )
    assert messages[0] == (
        'PodResourceClaim gpu: resource claim template "gpu": '
        'resourceclaimtemplate.resource.k8s.io "gpu" not found'
    )
    await admin.create(rest.RESOURCECLAIMTEMPLATES, template(), namespace=NS)
    await eventually(lambda: claim_statuses(admin, "early"), timeout=15.0)


async def allocated_claim(client: rest.Client, name: str, reserved_for: list[Object]) -> Object:
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "finalizers": [FINALIZER]},
        "spec": claim_spec(),
    }
    made = await client.create(rest.RESOURCECLAIMS, body, namespace=NS)
    made["status"] = {
        "allocation": {
            "devices": {
                "results": [
                    {"request": "gpu", "driver": DRIVER, "pool": "node-a", "device": "gpu-0"}
                ]
            }
        },
        "reservedFor": reserved_for,
    }
    written: Object = await client.update(rest.RESOURCECLAIMS, made, subresource="status")
    return written


async def test_reservations_of_gone_pods_are_dropped_and_the_claim_deallocated(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    ghost = {"resource": "pods", "name": "ghost", "uid": "0b5f1a5e-4c1e-4d2e-9d53-3a4a3b0b9e11"}
    await allocated_claim(admin, "shared", [ghost])

    async def released() -> Object | None:
        found = await admin.get(rest.RESOURCECLAIMS, "shared", namespace=NS)
        return found if not found["metadata"].get("finalizers") else None

    found = await eventually(released)
    assert "reservedFor" not in found.get("status", {})
    assert "allocation" not in found.get("status", {})


async def test_a_scheduled_pod_is_reserved_and_a_done_pods_claim_deleted(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    # Placed by hand (no DRA-aware scheduler): the controller reserves its allocated claim.
    await allocated_claim(admin, "by-hand", [])
    placed = await admin.create(
        rest.PODS,
        pod("placed", {"name": "gpu", "resourceClaimName": "by-hand"}, node="node-a"),
        namespace=NS,
    )

    async def reserved() -> list[Object] | None:
        found = await admin.get(rest.RESOURCECLAIMS, "by-hand", namespace=NS)
        refs: list[Object] = (found.get("status") or {}).get("reservedFor") or []
        return refs or None

    assert await eventually(reserved) == [
        {"resource": "pods", "name": "placed", "uid": placed["metadata"]["uid"]}
    ]

    # A pod that finished: its generated claim goes although the pod stays.
    await admin.create(rest.RESOURCECLAIMTEMPLATES, template(), namespace=NS)
    await admin.create(rest.PODS, pod("batch"), namespace=NS)
    [entry] = await eventually(lambda: claim_statuses(admin, "batch"))
    name = entry["resourceClaimName"]
    await admin.patch(
        rest.PODS, "batch", {"status": {"phase": "Succeeded"}}, namespace=NS, subresource="status"
    )
    await eventually(lambda: gone(admin, name))
    # The user's claim of a finished pod is released, not deleted.
    await admin.patch(
        rest.PODS, "placed", {"status": {"phase": "Failed"}}, namespace=NS, subresource="status"
    )
    assert await eventually(lambda: _unreserved(admin, "by-hand"))


async def _unreserved(client: rest.Client, name: str) -> bool:
    found = await client.get(rest.RESOURCECLAIMS, name, namespace=NS)
    return not (found.get("status") or {}).get("reservedFor") and not found["metadata"].get(
        "finalizers"
    )
