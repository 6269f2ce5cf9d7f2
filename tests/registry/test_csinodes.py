"""storage.k8s.io/v1 CSINodes as upstream 1.37 serves them.

In-process cluster over HTTPS, official client and real kubectl: discovery,
CRUD (DELETE answers with the object), NAME DRIVERS AGE, the 422s of the
driver rules, and the update rule that a registered driver may change only
its allocatable count (upstream prints the changed driver as Go's ``%#v``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import api_resource_row, causes, columns, refused, rows

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def storage(cluster: InProcessCluster) -> Iterator[client.StorageV1Api]:
    api = cluster.api_client()
    yield client.StorageV1Api(api)
    api.close()


def csi_node(name: str, *drivers: Object) -> Object:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": name},
        "spec": {"drivers": list(drivers)},
    }


def drv(name: str = "hostpath.csi.k8s.io", node_id: str = "node-1", **extra: Any) -> Object:
    return {"name": name, "nodeID": node_id, **extra}


def test_discovery_lists_cluster_scoped_csinodes(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "storage.k8s.io", "csinodes")[:4] == [
        "csinodes",
        "storage.k8s.io/v1",
        "false",
        "CSINode",
    ]


def test_crud_and_table(cluster: InProcessCluster, storage: client.StorageV1Api) -> None:
    storage.create_csi_node(
        csi_node("node-1", drv(topologyKeys=["topology.kubernetes.io/zone"]), drv("b.example.com"))
    )
    table = rows(cluster.kubectl("get", "csinodes").stdout)
    assert table[0] == ["NAME", "DRIVERS", "AGE"]
    assert table[1][:2] == ["node-1", "2"]
    assert columns(cluster, "/apis/storage.k8s.io/v1/csinodes") == [
        ("Name", "string"),
        ("Drivers", "integer"),
        ("Age", "string"),
    ]
    deleted = storage.delete_csi_node("node-1")
    assert deleted.metadata.name == "node-1"
    assert [d.name for d in deleted.spec.drivers] == ["hostpath.csi.k8s.io", "b.example.com"]


@pytest.mark.parametrize(
    ("drivers", "expected"),
    [
        pytest.param(
            [drv(node_id="")],
            [("FieldValueRequired", "spec.drivers[0].nodeID", "Required value")],
            id="node-id-required",
        ),
        pytest.param(
            [drv(node_id="n" * 257)],
            [
                (
                    "FieldValueInvalid",
                    "spec.drivers[0].nodeID",
                    f'Invalid value: "{"n" * 257}": must be 256 characters or less',
                )
            ],
            id="node-id-too-long",
        ),
        pytest.param(
            [drv(), drv()],
            [
                (
                    "FieldValueDuplicate",
                    "spec.drivers[1].name",
                    'Duplicate value: "hostpath.csi.k8s.io"',
                )
            ],
            id="duplicate-driver",
        ),
        pytest.param(
            [drv(allocatable={"count": -1})],
            [
                (
                    "FieldValueInvalid",
                    "spec.drivers[0].allocatable.count",
                    "Invalid value: -1: must be greater than or equal to 0",
                )
            ],
            id="negative-count",
        ),
        pytest.param(
            [drv(topologyKeys=["zone", "zone"])],
            [("FieldValueDuplicate", "spec.drivers[0]", 'Duplicate value: "zone"')],
            id="duplicate-topology-key",
        ),
    ],
)
def test_invalid_drivers_are_refused(
    storage: client.StorageV1Api, drivers: list[Object], expected: list[tuple[str, str, str]]
) -> None:
    status = refused(storage.create_csi_node, csi_node("bad-node", *drivers))
    assert causes(status) == expected
    _, path, message = expected[0]
    assert status["message"] == f'CSINode.storage.k8s.io "bad-node" is invalid: {path}: {message}'


def test_bad_driver_name_is_refused(storage: client.StorageV1Api) -> None:
    status = refused(storage.create_csi_node, csi_node("bad-node", drv("Not_A_Driver")))
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "spec.drivers[0].name",
            'Invalid value: "Not_A_Driver": a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    ]


def test_a_registered_driver_may_change_only_its_allocatable_count(
    storage: client.StorageV1Api,
) -> None:
    storage.create_csi_node(csi_node("node-2", drv(allocatable={"count": 3})))
    grown = storage.patch_csi_node("node-2", {"spec": {"drivers": [drv(allocatable={"count": 5})]}})
    assert grown.spec.drivers[0].allocatable.count == 5
    status = refused(
        storage.patch_csi_node, "node-2", {"spec": {"drivers": [drv(node_id="node-9")]}}
    )
    assert status["message"] == (
        'CSINode.storage.k8s.io "node-2" is invalid: spec.drivers: Invalid value: '
        'storage.CSINodeDriver{Name:"hostpath.csi.k8s.io", NodeID:"node-9", '
        "TopologyKeys:[]string(nil), Allocatable:(*storage.VolumeNodeResources)(nil)}: "
        "field is immutable"
    )
    # A driver that registers anew (another name) is no change of an existing one.
    added = storage.patch_csi_node(
        "node-2", {"spec": {"drivers": [drv(allocatable={"count": 5}), drv("b.example.com")]}}
    )
    assert len(added.spec.drivers) == 2


def test_status_has_its_own_endpoint_and_storage_health_is_gated_off(
    storage: client.StorageV1Api,
) -> None:
    """1.37 serves ``csinodes/status``; storageHealth needs the alpha CSIVolumeHealth gate."""
    body = csi_node("node-3", drv())
    body["status"] = {"storageHealth": [{"name": "hostpath.csi.k8s.io"}]}
    created = storage.create_csi_node(body)
    assert created.status is None or created.status.storage_health is None
    patched = storage.patch_csi_node_status(
        "node-3",
        {
            "metadata": {"labels": {"seen": "yes"}},
            "status": {"storageHealth": [{"name": "hostpath.csi.k8s.io"}]},
        },
    )
    assert patched.status is None or patched.status.storage_health is None
    assert patched.metadata.labels is None  # metadata is not the status endpoint's
    assert patched.spec.drivers[0].node_id == "node-1"
    storage.delete_csi_node("node-3")
