"""DRA admin access and the DRA rules of the user-facing roles, as upstream 1.37.

Against one in-process cluster over HTTPS with the official client: a
ResourceClaim or ResourceClaimTemplate asking for ``adminAccess`` is refused
with upstream's 422 unless its namespace carries
``resource.kubernetes.io/admin-access: "true"``, and so is a claim status
that first grants admin access; the aggregated ``edit`` role lets a user
write claims and templates, ``view`` only read them (SubjectAccessReviews).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import causes, refused

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
LABEL = "resource.kubernetes.io/admin-access"
MESSAGE = (
    "admin access to devices requires the `resource.kubernetes.io/admin-access: true` label "
    "on the containing namespace"
)
FIELD = "spec.devices.requests[1].exactly.adminAccess"


@pytest.fixture(scope="module")
def api(kajitori_module_cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    with kajitori_module_cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def dra(api: client.ApiClient) -> client.ResourceV1Api:
    return client.ResourceV1Api(api)


def namespace(core: client.CoreV1Api, **labels: str) -> str:
    name = f"dra-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    return name


def claim_spec(admin: bool) -> Object:
    requests = [
        {"name": "plain", "exactly": {"deviceClassName": "gpu.example.com"}},
        {"name": "admin", "exactly": {"deviceClassName": "gpu.example.com", "adminAccess": admin}},
    ]
    return {"devices": {"requests": requests}}


def claim(name: str, admin: bool = True) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": claim_spec(admin),
    }


def template(name: str) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": claim_spec(True)},
    }


def test_admin_access_needs_an_admin_namespace(
    core: client.CoreV1Api, dra: client.ResourceV1Api
) -> None:
    plain = namespace(core)
    status = refused(dra.create_namespaced_resource_claim, plain, claim("c"))
    assert (
        status["message"]
        == f'ResourceClaim.resource.k8s.io "c" is invalid: {FIELD}: Forbidden: {MESSAGE}'
    )
    assert causes(status) == [("FieldValueForbidden", FIELD, f"Forbidden: {MESSAGE}")]
    status = refused(dra.create_namespaced_resource_claim_template, plain, template("t"))
    assert status["message"] == (
        f'ResourceClaimTemplate.resource.k8s.io "t" is invalid: {FIELD}: Forbidden: {MESSAGE}'
    )
    # adminAccess false asks for nothing.
    dra.create_namespaced_resource_claim(plain, claim("not-admin", admin=False))
    # The label must say "true".
    maybe = namespace(core, **{LABEL: "yes"})
    refused(dra.create_namespaced_resource_claim, maybe, claim("c"))
    admins = namespace(core, **{LABEL: "true"})
    made = dra.create_namespaced_resource_claim(admins, claim("c"))
    assert made.spec.devices.requests[1].exactly.admin_access is True
    dra.create_namespaced_resource_claim_template(admins, template("t"))


def test_a_status_granting_admin_access_needs_an_admin_namespace(
    core: client.CoreV1Api, dra: client.ResourceV1Api
) -> None:
    plain = namespace(core)
    dra.create_namespaced_resource_claim(plain, claim("c", admin=False))
    result = {
        "request": "admin",
        "driver": "gpu.example.com",
        "pool": "pool-a",
        "device": "gpu-0",
        "adminAccess": True,
    }
    status = {"status": {"allocation": {"devices": {"results": [result]}}}}
    refusal = refused(dra.patch_namespaced_resource_claim_status, "c", plain, status)
    path = "status.allocation.devices.results[0].adminAccess"
    assert causes(refusal) == [("FieldValueForbidden", path, f"Forbidden: {MESSAGE}")]


def _allowed(api: client.ApiClient, user: str, ns: str, verb: str, resource: str) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            resource_attributes=client.V1ResourceAttributes(
                namespace=ns, verb=verb, group="resource.k8s.io", resource=resource
            ),
        )
    )
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_edit_writes_claims_and_view_reads_them(
    api: client.ApiClient, core: client.CoreV1Api
) -> None:
    ns = namespace(core)
    rbac = client.RbacAuthorizationV1Api(api)
    for role in ("edit", "view", "admin"):
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "User",
                        "name": f"{role}-user",
                    }
                ],
            },
        )
    for resource in ("resourceclaims", "resourceclaimtemplates"):
        for user in ("edit-user", "admin-user"):
            assert _allowed(api, user, ns, "create", resource)
            assert _allowed(api, user, ns, "deletecollection", resource)
            assert _allowed(api, user, ns, "list", resource)
        assert _allowed(api, "view-user", ns, "watch", resource)
        assert not _allowed(api, "view-user", ns, "create", resource)
    # Nobody but the scheduler and kubelets writes a claim's status.
    assert not _allowed(api, "edit-user", ns, "update", "resourceclaims/status")
    assert _allowed(api, "view-user", ns, "get", "resourceclaims/status")
    assert not _allowed(api, "edit-user", ns, "list", "resourceslices")
