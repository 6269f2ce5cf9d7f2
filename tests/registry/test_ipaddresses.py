"""networking.k8s.io/v1 IPAddresses as upstream 1.37 serves them.

In-process cluster over HTTPS, official client and real kubectl: the short
name ``ip``; each Service ClusterIP recorded as an IPAddress by the
allocator (upstream's labels and parentRef) and gone with its Service; an
IPAddress created through the API holds its address against the allocator;
NAME PARENTREF; upstream's 422s and the immutable parentRef.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import (
    api_resource_row,
    causes,
    columns,
    refused,
    refused_raw,
    rows,
)

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
NS = "default"
PATH = "/apis/networking.k8s.io/v1/ipaddresses"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    api_client = cluster.api_client()
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def networking(api: client.ApiClient) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(api)


@pytest.fixture(scope="module")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def ip_address(address: str, **ref: Any) -> Object:
    parent = {"group": "", "resource": "services", "namespace": NS, "name": "web", **ref}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {"name": address},
        "spec": {"parentRef": {k: v for k, v in parent.items() if v is not None}},
    }


def service(name: str, cluster_ip: str = "") -> Object:
    spec: Object = {"ports": [{"port": 80}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def test_discovery_has_the_short_name_ip(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "networking.k8s.io", "ipaddresses")[:5] == [
        "ipaddresses",
        "ip",
        "networking.k8s.io/v1",
        "false",
        "IPAddress",
    ]


def test_each_cluster_ip_is_an_ipaddress_of_its_service(
    cluster: InProcessCluster, networking: client.NetworkingV1Api, core: client.CoreV1Api
) -> None:
    kubernetes = networking.read_ip_address("10.96.0.1")
    assert kubernetes.spec.parent_ref.to_dict() == {
        "group": None,
        "resource": "services",
        "namespace": "default",
        "name": "kubernetes",
    }
    created = core.create_namespaced_service(NS, service("web"))
    ip = networking.read_ip_address(created.spec.cluster_ip)
    assert ip.metadata.labels == {
        "ipaddress.kubernetes.io/ip-family": "IPv4",
        "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
    }
    assert (ip.spec.parent_ref.namespace, ip.spec.parent_ref.name) == (NS, "web")
    listed = networking.list_ip_address(
        label_selector="ipaddress.kubernetes.io/managed-by=ipallocator.k8s.io"
    )
    assert {i.metadata.name for i in listed.items} >= {"10.96.0.1", created.spec.cluster_ip}
    table = rows(cluster.kubectl("get", "ip", created.spec.cluster_ip).stdout)
    assert table == [["NAME", "PARENTREF"], [created.spec.cluster_ip, "services/default/web"]]
    assert columns(cluster, "/apis/networking.k8s.io/v1/ipaddresses") == [
        ("Name", "string"),
        ("ParentRef", "string"),
    ]
    core.delete_namespaced_service("web", NS)
    refused(networking.read_ip_address, created.spec.cluster_ip, code=404)


def test_an_ipaddress_created_through_the_api_holds_its_address(
    networking: client.NetworkingV1Api, core: client.CoreV1Api
) -> None:
    networking.create_ip_address(ip_address("10.96.0.77", name="elsewhere"))
    status = refused(core.create_namespaced_service, NS, service("taken", "10.96.0.77"))
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "spec.clusterIPs",
            'Invalid value: ["10.96.0.77"]: failed to allocate IP 10.96.0.77: provided IP is '
            "already allocated",
        )
    ]
    networking.delete_ip_address("10.96.0.77")
    assert core.create_namespaced_service(NS, service("taken", "10.96.0.77")).spec.cluster_ip == (
        "10.96.0.77"
    )
    core.delete_namespaced_service("taken", NS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            ip_address("10.96.000.8"),
            [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    'Invalid value: "10.96.000.8": must not have leading 0s',
                )
            ],
            id="leading-zero",
        ),
        pytest.param(
            ip_address("FD00::8"),
            [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    'Invalid value: "FD00::8": must be in canonical form ("fd00::8")',
                )
            ],
            id="not-canonical",
        ),
        pytest.param(
            ip_address("10.96.0.9", resource=None, name=None),
            [
                ("FieldValueRequired", "spec.parentRef.resource", "Required value"),
                ("FieldValueRequired", "spec.parentRef.name", "Required value"),
            ],
            id="ref-fields-required",
        ),
        pytest.param(
            ip_address("10.96.0.10", group="Not_A_Group", name=".."),
            [
                (
                    "FieldValueInvalid",
                    "spec.parentRef.group",
                    'Invalid value: "Not_A_Group": a lowercase RFC 1123 subdomain must consist of '
                    "lower case alphanumeric characters, '-' or '.', and must start and end with "
                    "an alphanumeric character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ),
                (
                    "FieldValueInvalid",
                    "spec.parentRef.name",
                    "Invalid value: \"..\": may not be '..'",
                ),
            ],
            id="ref-syntax",
        ),
    ],
)
def test_invalid_ipaddresses_are_refused(
    cluster: InProcessCluster, body: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused_raw(cluster, "POST", PATH, body)
    assert causes(status) == expected


def test_a_missing_parent_ref_is_refused(cluster: InProcessCluster) -> None:
    body = ip_address("10.96.0.11")
    del body["spec"]["parentRef"]
    status = refused_raw(cluster, "POST", PATH, body)
    assert status["message"] == (
        'IPAddress.networking.k8s.io "10.96.0.11" is invalid: spec.parentRef: Required value'
    )


def test_the_parent_ref_is_immutable(
    cluster: InProcessCluster, networking: client.NetworkingV1Api
) -> None:
    networking.create_ip_address(ip_address("10.96.0.12"))
    result = cluster.kubectl(
        "patch", "ip", "10.96.0.12", "-p", '{"spec":{"parentRef":{"name":"api"}}}', check=False
    )
    assert result.returncode == 1
    assert (
        'The IPAddress "10.96.0.12" is invalid: spec.parentRef: Invalid value: '
        'networking.ParentReference{Group:"", Resource:"services", Namespace:"default", '
        'Name:"api"}: field is immutable' in result.stderr
    )
    networking.delete_ip_address("10.96.0.12")
