"""storage.k8s.io/v1 CSIStorageCapacities as upstream 1.37 serves them.

In-process cluster over HTTPS, official client and real kubectl: a
namespaced kind in discovery, CRUD, NAME STORAGECLASSNAME CAPACITY (no AGE
upstream), the 422s (selector, class name, negative capacity), and the
immutable GetCapacity inputs (nodeTopology printed as Go's ``%#v``).
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
NS = "default"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def storage(cluster: InProcessCluster) -> Iterator[client.StorageV1Api]:
    api = cluster.api_client()
    yield client.StorageV1Api(api)
    api.close()


def capacity(name: str, **fields: Any) -> Object:
    body: Object = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIStorageCapacity",
        "metadata": {"name": name},
        "storageClassName": "fast",
        "nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": "a"}},
        "capacity": "10Gi",
    }
    body.update(fields)
    return body


def test_discovery_lists_namespaced_csistoragecapacities(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "storage.k8s.io", "csistoragecapacities")[:4] == [
        "csistoragecapacities",
        "storage.k8s.io/v1",
        "true",
        "CSIStorageCapacity",
    ]


def test_crud_and_table(cluster: InProcessCluster, storage: client.StorageV1Api) -> None:
    create_json(cluster, capacity("zone-a"), "-n", NS)
    create_json(cluster, capacity("unknown", capacity=None), "-n", NS)
    table = rows(cluster.kubectl("get", "csistoragecapacities", "-n", NS).stdout)
    assert table == [
        ["NAME", "STORAGECLASSNAME", "CAPACITY"],
        ["unknown", "fast", "<unset>"],
        ["zone-a", "fast", "10Gi"],
    ]
    assert columns(cluster, f"/apis/storage.k8s.io/v1/namespaces/{NS}/csistoragecapacities") == [
        ("Name", "string"),
        ("StorageClassName", "string"),
        ("Capacity", "string"),
    ]
    read = storage.read_namespaced_csi_storage_capacity("zone-a", NS)
    assert read.node_topology.match_labels == {"topology.kubernetes.io/zone": "a"}
    storage.delete_namespaced_csi_storage_capacity("unknown", NS)
    storage.delete_namespaced_csi_storage_capacity("zone-a", NS)
    assert storage.list_namespaced_csi_storage_capacity(NS).items == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"capacity": "-1Gi"},
            (
                "FieldValueInvalid",
                "capacity",
                'Invalid value: "-1Gi": must be greater than or equal to 0',
            ),
            id="negative-capacity",
        ),
        pytest.param(
            {"storageClassName": "Fast_Class"},
            (
                "FieldValueInvalid",
                "storageClassName",
                'Invalid value: "Fast_Class": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ),
            id="class-name",
        ),
        pytest.param(
            {"nodeTopology": {"matchExpressions": [{"key": "zone", "operator": "In"}]}},
            (
                "FieldValueRequired",
                "nodeTopology.matchExpressions[0].values",
                "Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ),
            id="selector",
        ),
    ],
)
def test_invalid_capacities_are_refused(
    storage: client.StorageV1Api, fields: Object, expected: tuple[str, str, str]
) -> None:
    status = refused(storage.create_namespaced_csi_storage_capacity, NS, capacity("bad", **fields))
    assert causes(status) == [expected]
    assert status["message"] == (
        f'CSIStorageCapacity.storage.k8s.io "bad" is invalid: {expected[1]}: {expected[2]}'
    )


def test_get_capacity_inputs_are_immutable(storage: client.StorageV1Api) -> None:
    storage.create_namespaced_csi_storage_capacity(NS, capacity("fixed"))
    grown = storage.patch_namespaced_csi_storage_capacity("fixed", NS, {"capacity": "20Gi"})
    assert grown.capacity == "20Gi"
    status = refused(
        storage.patch_namespaced_csi_storage_capacity,
        "fixed",
        NS,
        {"nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": "b"}}},
    )
    assert status["message"] == (
        'CSIStorageCapacity.storage.k8s.io "fixed" is invalid: nodeTopology: Invalid value: '
        'v1.LabelSelector{MatchLabels:map[string]string{"topology.kubernetes.io/zone":"b"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    )
    status = refused(
        storage.patch_namespaced_csi_storage_capacity, "fixed", NS, {"storageClassName": "slow"}
    )
    assert causes(status) == [
        ("FieldValueInvalid", "storageClassName", 'Invalid value: "slow": field is immutable')
    ]
