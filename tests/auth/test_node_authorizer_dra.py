"""Kubelets and resource.k8s.io: the Node authorizer's ResourceClaim and ResourceSlice rules.

As upstream's node authorizer: a kubelet gets a ResourceClaim only when a pod
bound to it uses the claim (named in ``spec.resourceClaims``, or generated
from a template and named in ``status.resourceClaimStatuses``); it lists and
watches ResourceSlices only with ``spec.nodeName=<itself>``, creates them
(NodeRestriction checks the node), and reads or changes only its own. The
``system:node`` role carries upstream's static DRA rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kajitori.auth import bootstrap_policy, pki
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess

Object = dict[str, Any]
NS = "default"


def _claim(name: str) -> Object:
    request = {"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": {"devices": {"requests": [request]}},
    }


def _pod(name: str, node: str, claim: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "containers": [{"name": "c", "image": "busybox"}],
            "resourceClaims": [
                {"name": "direct", "resourceClaimName": claim},
                {"name": "templated", "resourceClaimTemplateName": "t"},
            ],
        },
    }


def _slice(name: str, node: str) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {
            "driver": "gpu.example.com",
            "pool": {"name": node, "generation": 0, "resourceSliceCount": 1},
            "nodeName": node,
        },
    }


@pytest.fixture
async def cluster(apiserver: APIServerProcess) -> AsyncIterator[dict[str, rest.Client]]:
    """Admin and two kubelets; a pod on n1 using claim "direct-1", one on n2 using "direct-2"."""
    assert apiserver.http is not None and apiserver.pki is not None
    app, ca = apiserver.http.app, apiserver.pki.ca

    def as_user(user: str, *groups: str) -> rest.Client:
        credentials = pki.issue_client_cert(ca, user=user, groups=groups)
        return rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)

    clients = {
        "admin": rest.Client.in_process(app, client_cert_pem=apiserver.pki.admin.cert_pem),
        "n1": as_user("system:node:n1", "system:nodes"),
        "n2": as_user("system:node:n2", "system:nodes"),
    }
    admin = clients["admin"]
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, sa, namespace=NS)
    for index in (1, 2):
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n{index}"}}
        await admin.create(rest.NODES, node)
        await admin.create(rest.RESOURCECLAIMS, _claim(f"direct-{index}"), namespace=NS)
        await admin.create(rest.RESOURCECLAIMS, _claim(f"generated-{index}"), namespace=NS)
        await admin.create(
            rest.PODS, _pod(f"p{index}", f"n{index}", f"direct-{index}"), namespace=NS
        )
        await admin.create(rest.RESOURCESLICES, _slice(f"slice-{index}", f"n{index}"))
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


async def _refused(call: Awaitable[Any]) -> str:
    with pytest.raises(rest.ApiError) as caught:
        await call
    assert caught.value.code == 403, caught.value.message
    return caught.value.message


async def _eventually(call: Callable[[], Awaitable[Any]]) -> Any:
    """The graph follows watches: retry until a change has reached it (2 s at most)."""
    for _ in range(100):
        try:
            return await call()
        except rest.ApiError as exc:
            assert exc.code == 403
            await asyncio.sleep(0.02)
    raise AssertionError("never allowed")


async def test_a_kubelet_gets_only_the_claims_of_its_pods(
    cluster: dict[str, rest.Client],
) -> None:
    admin, n1 = cluster["admin"], cluster["n1"]
    claim = await _eventually(lambda: n1.get(rest.RESOURCECLAIMS, "direct-1", namespace=NS))
    assert claim["metadata"]["name"] == "direct-1"
    message = await _refused(n1.get(rest.RESOURCECLAIMS, "direct-2", namespace=NS))
    assert message == (
        'resourceclaims.resource.k8s.io "direct-2" is forbidden: User "system:node:n1" cannot '
        'get resource "resourceclaims" in API group "resource.k8s.io" in the namespace '
        "\"default\": no relationship found between node 'n1' and this object"
    )
    message = await _refused(n1.list(rest.RESOURCECLAIMS, namespace=NS))
    assert message.endswith(": can only get individual resources of this type")
    # A claim generated from a template is the pod's once its status names it.
    await _refused(n1.get(rest.RESOURCECLAIMS, "generated-1", namespace=NS))
    statuses = [{"name": "templated", "resourceClaimName": "generated-1"}]
    await admin.patch(
        rest.PODS, "p1", {"status": {"resourceClaimStatuses": statuses}}, namespace=NS,
        subresource="status",
    )  # fmt: skip
    await _eventually(lambda: n1.get(rest.RESOURCECLAIMS, "generated-1", namespace=NS))
    await _refused(n1.get(rest.RESOURCECLAIMS, "generated-2", namespace=NS))


async def test_a_kubelet_lists_and_changes_only_its_own_slices(
    cluster: dict[str, rest.Client],
) -> None:
    n1 = cluster["n1"]
    message = await _refused(n1.list(rest.RESOURCESLICES))
    assert message == (
        'resourceslices.resource.k8s.io is forbidden: User "system:node:n1" cannot list '
        'resource "resourceslices" in API group "resource.k8s.io" at the cluster scope: '
        "can only list/watch/deletecollection resourceslices with nodeName field selector"
    )
    await _refused(n1.list(rest.RESOURCESLICES, field_selector="spec.nodeName=n2"))
    mine = await n1.list(rest.RESOURCESLICES, field_selector="spec.nodeName=n1")
    assert [s["metadata"]["name"] for s in mine["items"]] == ["slice-1"]
    await _eventually(lambda: n1.get(rest.RESOURCESLICES, "slice-1"))
    message = await _refused(n1.get(rest.RESOURCESLICES, "slice-2"))
    assert message.endswith(": no relationship found between node 'n1' and this object")
    await _refused(n1.delete(rest.RESOURCESLICES, "slice-2"))
    # Create is allowed here (NodeRestriction looks at the node), then it is the kubelet's.
    await n1.create(rest.RESOURCESLICES, _slice("slice-1b", "n1"))
    await _eventually(lambda: n1.delete(rest.RESOURCESLICES, "slice-1b"))


def test_the_node_role_has_upstreams_dra_rules() -> None:
    rules = bootstrap_policy.node_rules()
    dra = [r for r in rules if r["apiGroups"] == ["resource.k8s.io"]]
    assert dra == [
        {"verbs": ["get"], "apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims"]},
        {
            "verbs": ["deletecollection"],
            "apiGroups": ["resource.k8s.io"],
            "resources": ["resourceslices"],
        },
    ]
