"""The service-cidrs controller: the ServiceCIDR finalizer and Ready condition.

The planning (which allocated addresses would be orphaned) is checked on
plain objects; the controller runs as its own ServiceAccount (so upstream's
``service-cidrs-controller`` role must grant what it does) against an
in-process API server, with a short deletion grace period.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import servicecidrs

Object = dict[str, Any]
ALLOCATED = {"ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"}


def cidr(name: str, *cidrs: str) -> Object:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": name},
        "spec": {"cidrs": list(cidrs)},
    }


def ip(address: str, labels: dict[str, str] | None = None) -> Object:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {"name": address, "labels": dict(ALLOCATED if labels is None else labels)},
        "spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "web"}},
    }


# ----- planning ------------------------------------------------------------------


DEFAULT = cidr("kubernetes", "10.96.0.0/12")


@pytest.mark.parametrize(
    ("doomed", "ips", "blocking"),
    [
        pytest.param(cidr("a", "10.250.0.0/24"), [ip("10.250.0.5")], ["10.250.0.5"], id="orphan"),
        pytest.param(cidr("a", "10.250.0.0/24"), [ip("10.251.0.5")], [], id="outside"),
        pytest.param(
            cidr("a", "10.250.0.0/24"), [ip("10.250.0.5", labels={})], [], id="not-allocated"
        ),
        pytest.param(cidr("a", "10.96.5.0/24"), [ip("10.96.5.5")], [], id="covered-by-a-parent"),
        pytest.param(
            cidr("a", "10.250.0.0/24", "fd00:250::/64"),
            [ip("fd00:250::9")],
            ["fd00:250::9"],
            id="second-family",
        ),
        pytest.param(cidr("a", "10.250.0.0/24"), [ip("10.250.0.0")], [], id="network-address"),
    ],
)
def test_blocking_addresses(doomed: Object, ips: list[Object], blocking: list[str]) -> None:
    assert servicecidrs.blocking_addresses(doomed, [DEFAULT, doomed], ips) == blocking


def test_an_address_also_in_an_overlapping_cidr_does_not_block() -> None:
    doomed = cidr("a", "10.250.0.0/24")
    wider = cidr("b", "10.250.0.0/23")
    half = cidr("c", "10.250.0.0/25")
    assert servicecidrs.blocking_addresses(doomed, [doomed, half], [ip("10.250.0.5")]) == []
    assert servicecidrs.blocking_addresses(doomed, [doomed, half], [ip("10.250.0.200")]) == [
        "10.250.0.200"
    ]
    assert servicecidrs.blocking_addresses(doomed, [doomed, wider], [ip("10.250.0.200")]) == []


# ----- the controller --------------------------------------------------------------

SERVICE_CIDRS = servicecidrs.SERVICE_CIDRS
IP_ADDRESSES = servicecidrs.IP_ADDRESSES


async def _ready(client: rest.Client, name: str, status: str) -> Object | None:
    obj = await client.get(SERVICE_CIDRS, name)
    condition = servicecidrs.ready_condition(obj)
    if condition is None or condition["status"] != status:
        return None
    return obj


async def _gone(client: rest.Client, name: str) -> bool:
    try:
        await client.get(SERVICE_CIDRS, name)
    except rest.ApiError as exc:
        return exc.not_found
    return False


@pytest.fixture
async def controller(start_controllers: StartControllers) -> None:
    options = {"service-cidr-controller": {"deletion_grace_period": 0.2}}
    await start_controllers("service-cidr-controller", options=options)


async def test_every_service_cidr_gets_the_finalizer_and_ready(
    admin: rest.Client, controller: None
) -> None:
    await admin.create(SERVICE_CIDRS, cidr("extra", "10.250.0.0/24"))
    extra = await eventually(lambda: _ready(admin, "extra", "True"))
    assert extra["metadata"]["finalizers"] == [servicecidrs.FINALIZER]
    condition = servicecidrs.ready_condition(extra)
    assert condition is not None
    assert (condition["reason"], condition["message"]) == ("", "Kubernetes Service CIDR is ready")
    managers = {(m["manager"], m["operation"]) for m in extra["metadata"]["managedFields"]}
    assert ("service-cidr-controller", "Apply") in managers

    async def default_guarded() -> bool:
        obj = await admin.get(SERVICE_CIDRS, "kubernetes")
        return servicecidrs.FINALIZER in (obj["metadata"].get("finalizers") or [])

    await eventually(default_guarded)


async def test_deletion_waits_for_allocated_addresses_to_go(
    admin: rest.Client, controller: None
) -> None:
    await admin.create(SERVICE_CIDRS, cidr("extra", "10.250.0.0/24"))
    await eventually(lambda: _ready(admin, "extra", "True"))
    await admin.create(IP_ADDRESSES, ip("10.250.0.7"))
    await admin.delete(SERVICE_CIDRS, "extra")
    blocked = await eventually(lambda: _ready(admin, "extra", "False"))
    condition = servicecidrs.ready_condition(blocked)
    assert condition is not None
    assert (condition["reason"], condition["message"]) == (
        "OrphanIPAddress",
        "There are still IPAddresses referencing the ServiceCIDR, please remove them or create a "
        "new ServiceCIDR",
    )
    assert blocked["metadata"]["finalizers"] == [servicecidrs.FINALIZER]
    await admin.delete(IP_ADDRESSES, "10.250.0.7")
    await eventually(lambda: _gone(admin, "extra"))


async def test_a_cidr_inside_another_is_deleted_despite_its_addresses(
    admin: rest.Client, controller: None
) -> None:
    await admin.create(SERVICE_CIDRS, cidr("inner", "10.96.200.0/24"))
    await eventually(lambda: _ready(admin, "inner", "True"))
    await admin.create(IP_ADDRESSES, ip("10.96.200.9"))
    await admin.delete(SERVICE_CIDRS, "inner")
    await eventually(lambda: _gone(admin, "inner"))
