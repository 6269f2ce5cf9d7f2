"""storage.k8s.io/v1 CSIDrivers as upstream 1.37 serves them.

Against an in-process cluster over HTTPS with the official client and the
real kubectl: discovery, defaults read back, generation (none on create, +1
per spec change), the eight ``kubectl get`` columns, upstream's 422s for the
spec rules and the immutable fields, and updates that must carry a
resourceVersion.
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
    create_json,
    refused,
    rows,
)

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


def driver(name: str, **spec: Any) -> Object:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_discovery_lists_cluster_scoped_csidrivers(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "storage.k8s.io", "csidrivers") == [
        "csidrivers",
        "storage.k8s.io/v1",
        "false",
        "CSIDriver",
        "create,delete,deletecollection,get,list,patch,update,watch",
    ]


def test_defaults_are_read_back_and_generation_counts_spec_changes(
    storage: client.StorageV1Api,
) -> None:
    created = storage.create_csi_driver(driver("defaults.csi.example.com"))
    spec = created.spec
    assert (spec.attach_required, spec.pod_info_on_mount, spec.storage_capacity) == (
        True,
        False,
        False,
    )
    assert (spec.fs_group_policy, spec.volume_lifecycle_modes) == (
        "ReadWriteOnceWithFSType",
        ["Persistent"],
    )
    assert (spec.requires_republish, spec.se_linux_mount) == (False, False)
    assert created.metadata.generation is None
    labelled = storage.patch_csi_driver(
        "defaults.csi.example.com", {"metadata": {"labels": {"tier": "a"}}}
    )
    assert labelled.metadata.generation is None
    changed = storage.patch_csi_driver(
        "defaults.csi.example.com",
        {"spec": {"tokenRequests": [{"audience": "vault", "expirationSeconds": 3600}]}},
    )
    assert changed.metadata.generation == 1
    storage.delete_csi_driver("defaults.csi.example.com")


def test_kubectl_prints_upstreams_columns(cluster: InProcessCluster) -> None:
    create_json(
        cluster,
        driver(
            "printed.csi.example.com",
            attachRequired=False,
            tokenRequests=[{"audience": "a"}, {"audience": "b"}],
            volumeLifecycleModes=["Persistent", "Ephemeral"],
        ),
    )
    table = rows(cluster.kubectl("get", "csidrivers", "printed.csi.example.com").stdout)
    assert table[0] == [
        "NAME",
        "ATTACHREQUIRED",
        "PODINFOONMOUNT",
        "STORAGECAPACITY",
        "TOKENREQUESTS",
        "REQUIRESREPUBLISH",
        "MODES",
        "AGE",
    ]
    assert table[1][:7] == [
        "printed.csi.example.com",
        "false",
        "false",
        "false",
        "a,b",
        "false",
        "Persistent,Ephemeral",
    ]
    assert columns(cluster, "/apis/storage.k8s.io/v1/csidrivers") == [
        ("Name", "string"),
        ("AttachRequired", "boolean"),
        ("PodInfoOnMount", "boolean"),
        ("StorageCapacity", "boolean"),
        ("TokenRequests", "string"),
        ("RequiresRepublish", "boolean"),
        ("Modes", "string"),
        ("Age", "string"),
    ]


_KIND = 'CSIDriver.storage.k8s.io "bad.csi.example.com" is invalid: '


@pytest.mark.parametrize(
    ("spec", "message", "cause"),
    [
        pytest.param(
            {"fsGroupPolicy": "Sometimes"},
            'spec.fsGroupPolicy: Unsupported value: "Sometimes": supported values: "File", '
            '"None", "ReadWriteOnceWithFSType"',
            ("FieldValueNotSupported", "spec.fsGroupPolicy"),
            id="fs-group-policy",
        ),
        pytest.param(
            {"volumeLifecycleModes": ["Forever"]},
            'spec.volumeLifecycleModes: Unsupported value: "Forever": supported values: '
            '"Persistent", "Ephemeral"',
            ("FieldValueNotSupported", "spec.volumeLifecycleModes"),
            id="lifecycle-mode",
        ),
        pytest.param(
            {"tokenRequests": [{"audience": "x", "expirationSeconds": 60}]},
            "spec.tokenRequests[0].expirationSeconds: Invalid value: 60: may not specify a "
            "duration less than 10 minutes",
            ("FieldValueInvalid", "spec.tokenRequests[0].expirationSeconds"),
            id="token-too-short",
        ),
        pytest.param(
            {"tokenRequests": [{"audience": "x"}, {"audience": "x"}]},
            'spec.tokenRequests[1].audience: Duplicate value: "x"',
            ("FieldValueDuplicate", "spec.tokenRequests[1].audience"),
            id="duplicate-audience",
        ),
        pytest.param(
            {"serviceAccountTokenInSecrets": True},
            "spec.serviceAccountTokenInSecrets: Invalid value: true: serviceAccountTokenInSecrets "
            "is set but no tokenRequests are specified",
            ("FieldValueInvalid", "spec.serviceAccountTokenInSecrets"),
            id="token-in-secrets-without-requests",
        ),
        pytest.param(
            {"nodeAllocatableUpdatePeriodSeconds": 5},
            "spec.nodeAllocatableUpdatePeriodSeconds: Invalid value: 5: must be greater than "
            "or equal to 10 seconds",
            ("FieldValueInvalid", "spec.nodeAllocatableUpdatePeriodSeconds"),
            id="allocatable-period",
        ),
    ],
)
def test_invalid_specs_are_refused_with_upstreams_message(
    storage: client.StorageV1Api, spec: Object, message: str, cause: tuple[str, str]
) -> None:
    status = refused(storage.create_csi_driver, driver("bad.csi.example.com", **spec))
    assert status["message"] == _KIND + message
    assert [c[:2] for c in causes(status)] == [cause]


def test_invalid_name_is_refused(storage: client.StorageV1Api) -> None:
    status = refused(storage.create_csi_driver, driver("Bad_Driver"))
    assert status["message"].startswith(
        'CSIDriver.storage.k8s.io "Bad_Driver" is invalid: metadata.name: Invalid value: '
        '"Bad_Driver": a lowercase RFC 1123 subdomain must consist of'
    )


def test_attach_required_and_modes_are_immutable(
    cluster: InProcessCluster, storage: client.StorageV1Api
) -> None:
    storage.create_csi_driver(driver("fixed.csi.example.com"))
    status = refused(
        storage.patch_csi_driver, "fixed.csi.example.com", {"spec": {"attachRequired": False}}
    )
    # Upstream's path for attachRequired is spelt "attachedRequired".
    assert status["message"] == (
        'CSIDriver.storage.k8s.io "fixed.csi.example.com" is invalid: '
        "spec.attachedRequired: Invalid value: false: field is immutable"
    )
    result = cluster.kubectl(
        "patch",
        "csidriver",
        "fixed.csi.example.com",
        "-p",
        '{"spec":{"volumeLifecycleModes":["Ephemeral"]}}',
        check=False,
    )
    assert result.returncode == 1
    assert (
        'spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{"Ephemeral"}: '
        "field is immutable" in result.stderr
    )


def test_an_update_must_name_the_resource_version(storage: client.StorageV1Api) -> None:
    created = storage.create_csi_driver(driver("conditional.csi.example.com"))
    body = client.ApiClient().sanitize_for_serialization(created)
    del body["metadata"]["resourceVersion"]
    status = refused(storage.replace_csi_driver, "conditional.csi.example.com", body)
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "metadata.resourceVersion",
            "Invalid value: 0: must be specified for an update",
        )
    ]
