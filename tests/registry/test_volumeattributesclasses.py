"""storage.k8s.io/v1 VolumeAttributesClasses (GA in 1.34) as upstream 1.37 serves them.

In-process cluster over HTTPS, official client and real kubectl: the short
name ``vac`` in discovery and on the command line, CRUD (DELETE answers
with the object), NAME DRIVERNAME AGE with the default marker, upstream's
422s, and driverName and parameters that are forbidden to change.
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
def storage(cluster: InProcessCluster) -> Iterator[client.StorageV1Api]:
    api = cluster.api_client()
    yield client.StorageV1Api(api)
    api.close()


def vac(name: str, driver: str = "hostpath.csi.k8s.io", **fields: Any) -> Object:
    body: Object = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "VolumeAttributesClass",
        "metadata": {"name": name},
        "driverName": driver,
        "parameters": {"iops": "3000"},
    }
    body.update(fields)
    return body


def test_discovery_has_the_short_name_vac(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "storage.k8s.io", "volumeattributesclasses")[:5] == [
        "volumeattributesclasses",
        "vac",
        "storage.k8s.io/v1",
        "false",
        "VolumeAttributesClass",
    ]


def test_crud_and_table(cluster: InProcessCluster, storage: client.StorageV1Api) -> None:
    create_json(cluster, vac("gold"))
    marked = vac("silver")
    marked["metadata"]["annotations"] = {
        "volumeattributesclass.alpha.kubernetes.io/is-default-class": "true"
    }
    storage.create_volume_attributes_class(marked)
    table = rows(cluster.kubectl("get", "vac").stdout)
    assert table[0] == ["NAME", "DRIVERNAME", "AGE"]
    # kubectl's columns split on spaces: the default marker is a cell of its own here.
    assert [r[:-1] for r in table[1:]] == [
        ["gold", "hostpath.csi.k8s.io"],
        ["silver", "(default)", "hostpath.csi.k8s.io"],
    ]
    assert columns(cluster, "/apis/storage.k8s.io/v1/volumeattributesclasses") == [
        ("Name", "string"),
        ("DriverName", "string"),
        ("Age", "string"),
    ]
    deleted = storage.delete_volume_attributes_class("gold")
    assert deleted.parameters == {"iops": "3000"}
    storage.delete_volume_attributes_class("silver")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            vac("no-params", parameters=None),
            [
                (
                    "FieldValueRequired",
                    "parameters",
                    "Required value: must contain at least one key/value pair",
                )
            ],
            id="parameters-required",
        ),
        pytest.param(
            vac("no-driver", driver=""),
            [("FieldValueRequired", "driverName", "Required value")],
            id="driver-required",
        ),
        pytest.param(
            vac("bad-driver", driver="a b"),
            [
                (
                    "FieldValueInvalid",
                    "driverName",
                    'Invalid value: "a b": name part must consist of alphanumeric characters, '
                    "'-', '_' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                )
            ],
            id="driver-not-qualified",
        ),
    ],
)
def test_invalid_classes_are_refused(
    storage: client.StorageV1Api, body: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused(storage.create_volume_attributes_class, body)
    assert causes(status) == expected


def test_driver_and_parameters_are_forbidden_to_change(
    cluster: InProcessCluster, storage: client.StorageV1Api
) -> None:
    storage.create_volume_attributes_class(vac("bronze"))
    status = refused(
        storage.patch_volume_attributes_class,
        "bronze",
        {"driverName": "other.csi.k8s.io", "parameters": {"iops": "100"}},
    )
    assert status["message"] == (
        'VolumeAttributesClass.storage.k8s.io "bronze" is invalid: [driverName: Forbidden: '
        "updates to driverName are forbidden., parameters: Forbidden: updates to parameters "
        "are forbidden.]"
    )
    cluster.kubectl("annotate", "vac", "bronze", "owner=storage-team")
    assert storage.read_volume_attributes_class("bronze").metadata.annotations == {
        "owner": "storage-team"
    }
