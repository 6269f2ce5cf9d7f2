"""storage.k8s.io/v1 VolumeAttachments as upstream 1.37 serves them.

In-process cluster over HTTPS, official client and real kubectl: discovery,
status reset on create and kept on spec updates, ``volumeattachments/status``
written by the attacher, NAME ATTACHER PV NODE ATTACHED AGE, upstream's
422s (source, attacher, node name, status limits), a spec that never
changes, and DELETE answering with the object.
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


def attachment(name: str, *, pv: str | None = "pv-1", **spec: Any) -> Object:
    source: Object = {} if pv is None else {"persistentVolumeName": pv}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "VolumeAttachment",
        "metadata": {"name": name},
        "spec": {"attacher": "hostpath.csi.k8s.io", "nodeName": "node-1", "source": source, **spec},
    }


def test_discovery_lists_volumeattachments(cluster: InProcessCluster) -> None:
    assert api_resource_row(cluster, "storage.k8s.io", "volumeattachments")[:4] == [
        "volumeattachments",
        "storage.k8s.io/v1",
        "false",
        "VolumeAttachment",
    ]


def test_status_is_the_attachers_and_the_table_shows_it(
    cluster: InProcessCluster, storage: client.StorageV1Api
) -> None:
    body = attachment("va-1")
    body["status"] = {"attached": True}
    created = storage.create_volume_attachment(body)
    assert created.status.attached is False
    storage.patch_volume_attachment("va-1", {"status": {"attached": True}})
    assert storage.read_volume_attachment("va-1").status.attached is False
    storage.patch_volume_attachment_status(
        "va-1", {"status": {"attached": True, "attachmentMetadata": {"devicePath": "/dev/xvdb"}}}
    )
    read = storage.read_volume_attachment("va-1")
    assert (read.status.attached, read.status.attachment_metadata) == (
        True,
        {"devicePath": "/dev/xvdb"},
    )
    table = rows(cluster.kubectl("get", "volumeattachments").stdout)
    assert table[0] == ["NAME", "ATTACHER", "PV", "NODE", "ATTACHED", "AGE"]
    assert table[1][:5] == ["va-1", "hostpath.csi.k8s.io", "pv-1", "node-1", "true"]
    assert columns(cluster, "/apis/storage.k8s.io/v1/volumeattachments") == [
        ("Name", "string"),
        ("Attacher", "string"),
        ("PV", "string"),
        ("Node", "string"),
        ("Attached", "boolean"),
        ("Age", "string"),
    ]
    deleted = storage.delete_volume_attachment("va-1")
    assert deleted.spec.source.persistent_volume_name == "pv-1"


_ONE = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            attachment("no-source", pv=None),
            [("FieldValueRequired", "spec.source", f"Required value: {_ONE}")],
            id="no-source",
        ),
        pytest.param(
            attachment(
                "two-sources",
                source={
                    "persistentVolumeName": "pv-1",
                    "inlineVolumeSpec": {
                        "accessModes": ["ReadWriteOnce"],
                        "csi": {"driver": "hostpath.csi.k8s.io", "volumeHandle": "h"},
                    },
                },
            ),
            [("FieldValueForbidden", "spec.source", f"Forbidden: {_ONE}")],
            id="two-sources",
        ),
        pytest.param(
            attachment("bad-node", nodeName="Node_1"),
            [
                (
                    "FieldValueInvalid",
                    "spec.nodeName",
                    'Invalid value: "Node_1": a lowercase RFC 1123 subdomain must consist of '
                    "lower case alphanumeric characters, '-' or '.', and must start and end with "
                    "an alphanumeric character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            ],
            id="node-name",
        ),
        pytest.param(
            attachment("long-attacher", attacher="a" * 64),
            [("FieldValueTooLong", "spec.attacher", "Too long: may not be more than 63 bytes")],
            id="attacher-too-long",
        ),
    ],
)
def test_invalid_attachments_are_refused(
    storage: client.StorageV1Api, body: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused(storage.create_volume_attachment, body)
    assert causes(status) == expected


def test_status_limits_are_checked_on_the_status_endpoint(storage: client.StorageV1Api) -> None:
    storage.create_volume_attachment(attachment("va-2"))
    status = refused(
        storage.patch_volume_attachment_status,
        "va-2",
        {"status": {"attached": False, "attachError": {"message": "m" * 1025, "errorCode": -2}}},
    )
    expected = [
        (
            "FieldValueTooLong",
            "status.attachError.message",
            # Upstream states the metadata size limit for a message too long.
            "Too long: may not be more than 262144 bytes",
        ),
        (
            "FieldValueInvalid",
            "status.attachError.errorCode",
            "Invalid value: -2: must be between 0 and 2147483647, inclusive",
        ),
    ]
    # Upstream validates the new object twice on update: causes repeat, the message does not.
    assert causes(status) == expected * 2
    assert status["message"] == (
        'VolumeAttachment.storage.k8s.io "va-2" is invalid: ['
        + ", ".join(f"{path}: {message}" for _, path, message in expected)
        + "]"
    )


def test_the_spec_never_changes(cluster: InProcessCluster, storage: client.StorageV1Api) -> None:
    storage.create_volume_attachment(attachment("va-3"))
    result = cluster.kubectl(
        "patch", "volumeattachment", "va-3", "-p", '{"spec":{"nodeName":"node-2"}}', check=False
    )
    assert result.returncode == 1
    assert (
        'The VolumeAttachment "va-3" is invalid: spec: Invalid value: '
        'storage.VolumeAttachmentSpec{Attacher:"hostpath.csi.k8s.io", '
        "Source:storage.VolumeAttachmentSource{PersistentVolumeName:(*string)(0xc000000000), "
        'InlineVolumeSpec:(*core.PersistentVolumeSpec)(nil)}, NodeName:"node-2"}: '
        "field is immutable" in result.stderr
    )
    cluster.kubectl("label", "volumeattachment", "va-3", "csi=yes")
    assert storage.read_volume_attachment("va-3").metadata.labels == {"csi": "yes"}
