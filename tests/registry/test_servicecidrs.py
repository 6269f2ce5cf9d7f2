"""networking.k8s.io/v1 ServiceCIDRs as upstream 1.37 serves them.

In-process cluster over HTTPS, official client and real kubectl: the
``kubernetes`` ServiceCIDR the API server creates at start (10.96.0.0/12,
Ready=True with upstream's message), discovery, NAME CIDRS AGE, status
written only through ``/status``, the strict CIDR rules' 422s, and updates
that may only add the other IP family. ``test_default_servicecidr_up.py``
checks the same object after a real ``kajitori up``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import api_resource_row, causes, columns, create_json, refused, rows

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def networking(cluster: InProcessCluster) -> Iterator[client.NetworkingV1Api]:
    api = cluster.api_client()
    yield client.NetworkingV1Api(api)
    api.close()


def service_cidr(name: str, *cidrs: str) -> Object:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": name},
        "spec": {"cidrs": list(cidrs)},
    }


def test_the_default_service_cidr_is_created_ready(networking: client.NetworkingV1Api) -> None:
    default = networking.read_service_cidr("kubernetes")
    assert default.spec.cidrs == ["10.96.0.0/12"]
    [ready] = default.status.conditions
    assert (ready.type, ready.status, ready.reason, ready.message) == (
        "Ready",
        "True",
        "",
        "Kubernetes default Service CIDR is ready",
    )
    managers = {(m.manager, m.subresource) for m in default.metadata.managed_fields}
    assert ("kubernetes-service-cidr-controller", "status") in managers


def test_discovery_and_table(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "networking.k8s.io", "servicecidrs")[:4] == [
        "servicecidrs",
        "networking.k8s.io/v1",
        "false",
        "ServiceCIDR",
    ]
    create_json(cluster, service_cidr("dual", "10.200.0.0/24", "fd00:10::/64"))
    table = rows(cluster.kubectl("get", "servicecidrs").stdout)
    assert table[0] == ["NAME", "CIDRS", "AGE"]
    assert [r[:2] for r in table[1:]] == [
        ["dual", "10.200.0.0/24,fd00:10::/64"],
        ["kubernetes", "10.96.0.0/12"],
    ]
    assert columns(cluster, "/apis/networking.k8s.io/v1/servicecidrs") == [
        ("Name", "string"),
        ("CIDRs", "string"),
        ("Age", "string"),
    ]
    cluster.kubectl("delete", "servicecidr", "dual")


def test_the_status_endpoint_keeps_the_spec_and_the_main_one_takes_status(
    networking: client.NetworkingV1Api,
) -> None:
    """Upstream's strategies: /status copies the stored spec back; the main endpoint's
    PrepareForCreate/PrepareForUpdate are empty, so status sent there is stored."""

    def ready(reason: str) -> Object:
        return {
            "type": "Ready",
            "status": "True",
            "reason": reason,
            "message": "set by the test",
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        }

    body = service_cidr("extra", "10.201.0.0/24")
    body["status"] = {"conditions": [ready("Sent")]}
    created = networking.create_service_cidr(body)
    assert [c.reason for c in created.status.conditions] == ["Sent"]
    patched = networking.patch_service_cidr_status(
        "extra",
        {
            "metadata": {"labels": {"via": "status"}},
            "status": {"conditions": [ready("Status")]},
            "spec": {"cidrs": ["10.9.0.0/24"]},
        },
    )
    assert [c.reason for c in patched.status.conditions] == ["Status"]
    assert (patched.spec.cidrs, patched.metadata.labels) == (["10.201.0.0/24"], {"via": "status"})
    networking.delete_service_cidr("extra")


_NOT_DUAL = (
    "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"
)


@pytest.mark.parametrize(
    ("cidrs", "expected"),
    [
        pytest.param(
            (),
            ("FieldValueRequired", "spec.cidrs", "Required value: at least one CIDR required"),
            id="none",
        ),
        pytest.param(
            ("10.0.0.0/24", "10.1.0.0/24"),
            (
                "FieldValueInvalid",
                "spec.cidrs",
                'Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{"10.0.0.0/24", '
                f'"10.1.0.0/24"}}}}: {_NOT_DUAL}',
            ),
            id="same-family",
        ),
        pytest.param(
            ("10.0.0.0/24", "fd00::/64", "10.2.0.0/24"),
            (
                "FieldValueInvalid",
                "spec.cidrs",
                'Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{"10.0.0.0/24", '
                '"fd00::/64", "10.2.0.0/24"}}: may only hold up to 2 values',
            ),
            id="three",
        ),
        pytest.param(
            ("10.0.0.1/24",),
            (
                "FieldValueInvalid",
                "spec.cidrs[0]",
                'Invalid value: "10.0.0.1/24": must not have bits set beyond the prefix length',
            ),
            id="host-bits",
        ),
        pytest.param(
            ("010.0.0.0/24",),
            (
                "FieldValueInvalid",
                "spec.cidrs[0]",
                'Invalid value: "010.0.0.0/24": must not have leading 0s in IP or prefix length',
            ),
            id="leading-zero",
        ),
        pytest.param(
            ("FD00::/64",),
            (
                "FieldValueInvalid",
                "spec.cidrs[0]",
                'Invalid value: "FD00::/64": must be in canonical form ("fd00::/64")',
            ),
            id="not-canonical",
        ),
        pytest.param(
            ("not-a-cidr",),
            (
                "FieldValueInvalid",
                "spec.cidrs[0]",
                'Invalid value: "not-a-cidr": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
                "2001:db8::/64)",
            ),
            id="garbage",
        ),
    ],
)
def test_invalid_cidrs_are_refused(
    networking: client.NetworkingV1Api, cidrs: tuple[str, ...], expected: tuple[str, str, str]
) -> None:
    status = refused(networking.create_service_cidr, service_cidr("bad", *cidrs))
    assert causes(status) == [expected]
    assert status["message"] == (
        f'ServiceCIDR.networking.k8s.io "bad" is invalid: {expected[1]}: {expected[2]}'
    )


def test_cidrs_may_only_grow_to_dual_stack(networking: client.NetworkingV1Api) -> None:
    networking.create_service_cidr(service_cidr("growing", "10.210.0.0/24"))
    status = refused(
        networking.patch_service_cidr, "growing", {"spec": {"cidrs": ["10.211.0.0/24"]}}
    )
    assert causes(status) == [
        ("FieldValueInvalid", "spec.cidrs[0]", 'Invalid value: "10.211.0.0/24": field is immutable')
    ]
    grown = networking.patch_service_cidr(
        "growing", {"spec": {"cidrs": ["10.210.0.0/24", "fd00:210::/64"]}}
    )
    assert grown.spec.cidrs == ["10.210.0.0/24", "fd00:210::/64"]
    status = refused(
        networking.patch_service_cidr, "growing", {"spec": {"cidrs": ["10.210.0.0/24"]}}
    )
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "spec.cidrs",
            'Invalid value: []string{"10.210.0.0/24"}: field is immutable',
        )
    ]
