"""storagemigration.k8s.io/v1 StorageVersionMigrations (GA in 1.37) as upstream serves them.

In-process cluster without controllers (so only the tests write status),
over HTTPS with the official client and the real kubectl: discovery, CRUD,
the NAME RESOURCE table, upstream's 422s for the spec, an immutable spec,
and the ``/status`` rules (a resourceVersion set once, Succeeded/Failed
exclusive and final, Running never beside them). The migration itself is
tests/controllers/test_storage_version_migrator.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import api_resource_row, causes, columns, refused, rows

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
NOW = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def svms(cluster: InProcessCluster) -> Iterator[client.StoragemigrationV1Api]:
    api = cluster.api_client()
    yield client.StoragemigrationV1Api(api)
    api.close()


def svm(name: str, resource: str = "secrets", group: str = "") -> Object:
    # The official client insists on both fields of a GroupResource.
    target: Object = {"group": group, "resource": resource}
    return {
        "apiVersion": "storagemigration.k8s.io/v1",
        "kind": "StorageVersionMigration",
        "metadata": {"name": name},
        "spec": {"resource": target},
    }


def condition(kind: str, status: str = "True", reason: str = "Because") -> Object:
    return {"type": kind, "status": status, "reason": reason, "lastTransitionTime": NOW}


def test_discovery_row(cluster: InProcessCluster) -> None:
    row = api_resource_row(cluster, "storagemigration.k8s.io", "storageversionmigrations")
    assert row[:4] == [
        "storageversionmigrations",
        "storagemigration.k8s.io/v1",
        "false",
        "StorageVersionMigration",
    ]


def test_crud_and_table(cluster: InProcessCluster, svms: client.StoragemigrationV1Api) -> None:
    body = svm("secrets-1")
    body["status"] = {"resourceVersion": "5"}
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(body))
    svms.create_storage_version_migration(svm("deployments-1", "deployments", "apps"))
    assert svms.read_storage_version_migration("secrets-1").status.resource_version is None
    assert rows(cluster.kubectl("get", "storageversionmigrations").stdout) == [
        ["NAME", "RESOURCE"],
        ["deployments-1", "deployments.apps"],
        ["secrets-1", "secrets"],
    ]
    assert columns(cluster, "/apis/storagemigration.k8s.io/v1/storageversionmigrations") == [
        ("Name", "string"),
        ("Resource", "string"),
    ]
    svms.delete_storage_version_migration("deployments-1")
    cluster.kubectl("delete", "storageversionmigration", "secrets-1")
    assert svms.list_storage_version_migration().items == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            svm("no-resource", resource=""),
            [
                (
                    "FieldValueRequired",
                    "spec.resource.resource",
                    "Required value: resource is required to be set",
                )
            ],
            id="resource-required",
        ),
        pytest.param(
            svm("bad-resource", resource="Secrets"),
            [
                (
                    "FieldValueInvalid",
                    "spec.resource.resource",
                    'Invalid value: "Secrets": a DNS-1035 label must consist of lower case '
                    "alphanumeric characters or '-', start with an alphabetic character, and end "
                    "with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used "
                    "for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                )
            ],
            id="resource-not-dns1035",
        ),
        pytest.param(
            svm("bad-group", resource="widgets", group="Example_com"),
            [
                (
                    "FieldValueInvalid",
                    "spec.resource.group",
                    'Invalid value: "Example_com": a lowercase RFC 1123 subdomain must consist of '
                    "lower case alphanumeric characters, '-' or '.', and must start and end with "
                    "an alphanumeric character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            ],
            id="group-not-subdomain",
        ),
    ],
)
def test_invalid_migrations_are_refused(
    svms: client.StoragemigrationV1Api, body: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused(svms.create_storage_version_migration, body)
    assert causes(status) == expected


def test_spec_is_immutable(svms: client.StoragemigrationV1Api) -> None:
    svms.create_storage_version_migration(svm("fixed"))
    status = refused(
        svms.patch_storage_version_migration,
        "fixed",
        {"spec": {"resource": {"group": "", "resource": "configmaps"}}},
    )
    ((reason, path, message),) = causes(status)
    assert (reason, path) == ("FieldValueInvalid", "spec")
    assert message.endswith("field is immutable")
    svms.delete_storage_version_migration("fixed")


def test_status_rules(svms: client.StoragemigrationV1Api) -> None:
    svms.create_storage_version_migration(svm("lifecycle"))
    status = refused(
        svms.patch_storage_version_migration_status,
        "lifecycle",
        {"status": {"resourceVersion": "x1"}},
    )
    ((reason, path, _),) = causes(status)
    assert (reason, path) == ("FieldValueInvalid", "status.resourceVersion")
    svms.patch_storage_version_migration_status(
        "lifecycle", {"status": {"resourceVersion": "42", "conditions": [condition("Running")]}}
    )
    status = refused(
        svms.patch_storage_version_migration_status,
        "lifecycle",
        {"status": {"resourceVersion": "43"}},
    )
    assert causes(status) == [
        ("FieldValueInvalid", "status.resourceVersion", 'Invalid value: "43": field is immutable')
    ]
    both = [condition("Running"), condition("Succeeded")]
    status = refused(
        svms.patch_storage_version_migration_status, "lifecycle", {"status": {"conditions": both}}
    )
    assert [(r, p, m.split(": ")[-1]) for r, p, m in causes(status)] == [
        (
            "FieldValueInvalid",
            "status.conditions",
            "Running condition cannot be true when success condition is true",
        )
    ]
    bad_reason = refused(
        svms.patch_storage_version_migration_status,
        "lifecycle",
        {"status": {"conditions": [condition("Running", reason="1bad")]}},
    )
    ((reason, path, _),) = causes(bad_reason)
    assert (reason, path) == ("FieldValueInvalid", "status.conditions[0].reason")
    done = [condition("Running", "False"), condition("Succeeded")]
    svms.patch_storage_version_migration_status("lifecycle", {"status": {"conditions": done}})
    undone = [condition("Running", "False"), condition("Succeeded", "False")]
    status = refused(
        svms.patch_storage_version_migration_status, "lifecycle", {"status": {"conditions": undone}}
    )
    assert [(r, p, m.split(": ")[-1]) for r, p, m in causes(status)] == [
        (
            "FieldValueInvalid",
            "status.conditions",
            "Success condition cannot be set to false once it is true",
        )
    ]
    svms.delete_storage_version_migration("lifecycle")
