"""Kubelets as system:node:<name>: the Node authorizer and NodeRestriction, against a real server.

Two nodes, n1 and n2, each with a pod bound to it that uses its own Secret
and ConfigMap. Each kubelet reads only what its pods use, writes only its
own Node, Lease and pods, and is refused otherwise with upstream's messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kajitori.admission.plugins import node_restriction
from kajitori.auth import node as node_auth
from kajitori.auth import pki
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.registry.generic.request import UserInfo

Object = dict[str, Any]
NS = "default"


def _node(name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }


def _pod(name: str, node: str, secret: str, config: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "env": [
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}},
                        }
                    ],
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": config}}],
        },
    }


@pytest.fixture
async def cluster(apiserver: APIServerProcess) -> AsyncIterator[dict[str, rest.Client]]:
    """Admin plus one client per kubelet identity, with the objects described above."""
    assert apiserver.http is not None and apiserver.pki is not None
    app, ca = apiserver.http.app, apiserver.pki.ca

    def as_user(user: str, *groups: str) -> rest.Client:
        credentials = pki.issue_client_cert(ca, user=user, groups=groups)
        return rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)

    clients = {
        "admin": rest.Client.in_process(app, client_cert_pem=apiserver.pki.admin.cert_pem),
        "n1": as_user("system:node:n1", "system:nodes"),
        "n2": as_user("system:node:n2", "system:nodes"),
        "n3": as_user("system:node:n3", "system:nodes"),
        "nameless": as_user("system:node:", "system:nodes"),
    }
    admin = clients["admin"]
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, sa, namespace=NS)
    for index in (1, 2):
        await admin.create(rest.NODES, _node(f"n{index}"))
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{index}"}}
        secret["stringData"] = {"password": "hunter2"}
        await admin.create(rest.SECRETS, secret, namespace=NS)
        config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{index}"}}
        await admin.create(rest.CONFIGMAPS, config, namespace=NS)
        await admin.create(
            rest.PODS, _pod(f"p{index}", f"n{index}", f"s{index}", f"c{index}"), namespace=NS
        )
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


async def _refused(call: Any, code: int = 403) -> str:
    with pytest.raises(rest.ApiError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value.message


async def _eventually_refused(call_factory: Any) -> str:
    """The graph follows a watch: retry briefly until the change reaches it."""
    import asyncio

    for _ in range(100):
        try:
            await call_factory()
        except rest.ApiError as exc:
            assert exc.code == 403
            return exc.message
        await asyncio.sleep(0.02)
    raise AssertionError("still allowed")


async def test_a_kubelet_reads_only_the_secrets_and_config_maps_its_pods_use(
    cluster: dict[str, rest.Client],
) -> None:
    n1 = cluster["n1"]
    secret = await n1.get(rest.SECRETS, "s1", namespace=NS)
    assert secret["data"]["password"]
    await n1.get(rest.CONFIGMAPS, "c1", namespace=NS)
    message = await _refused(n1.get(rest.SECRETS, "s2", namespace=NS))
    assert message == (
        'secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API '
        'group "" in the namespace "default": no relationship found between node \'n1\' and '
        "this object"
    )
    await _refused(n1.get(rest.CONFIGMAPS, "c2", namespace=NS))
    message = await _refused(n1.list(rest.SECRETS, namespace=NS))
    assert message.endswith(": No Object name found")
    # A list or watch of one object by name is a read of that object.
    listed = await n1.list(rest.SECRETS, namespace=NS, field_selector="metadata.name=s1")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["s1"]


async def test_relations_follow_pods_coming_and_going(cluster: dict[str, rest.Client]) -> None:
    admin, n1 = cluster["admin"], cluster["n1"]
    await admin.delete(rest.PODS, "p1", namespace=NS, grace_period_seconds=0)
    message = await _eventually_refused(lambda: n1.get(rest.SECRETS, "s1", namespace=NS))
    assert "no relationship found between node 'n1'" in message
    await admin.create(rest.PODS, _pod("p3", "n1", "s2", "c2"), namespace=NS)
    import asyncio

    for _ in range(100):
        try:
            await n1.get(rest.SECRETS, "s2", namespace=NS)
            break
        except rest.ApiError:
            await asyncio.sleep(0.02)
    else:
        raise AssertionError("the new pod's secret never became readable")


async def test_pods_are_listed_only_by_node_and_read_only_when_bound_here(
    cluster: dict[str, rest.Client],
) -> None:
    n1 = cluster["n1"]
    message = await _refused(n1.list(rest.PODS))
    assert message.endswith(": can only list/watch pods with spec.nodeName field selector")
    mine = await n1.list(rest.PODS, field_selector="spec.nodeName=n1")
    assert [p["metadata"]["name"] for p in mine["items"]] == ["p1"]
    await _refused(n1.list(rest.PODS, field_selector="spec.nodeName=n2"))
    await n1.get(rest.PODS, "p1", namespace=NS)
    await _refused(n1.get(rest.PODS, "p2", namespace=NS))


async def test_a_kubelet_sees_and_writes_only_its_own_node(cluster: dict[str, rest.Client]) -> None:
    n1 = cluster["n1"]
    await n1.get(rest.NODES, "n1")
    message = await _refused(n1.get(rest.NODES, "n2"))
    assert message.endswith(": node 'n1' cannot read 'n2', only its own Node object")
    message = await _refused(n1.list(rest.NODES))
    assert message.endswith(": node 'n1' cannot read all nodes, only its own Node object")
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    await n1.patch(rest.NODES, "n1", status, subresource="status")
    message = await _refused(n1.patch(rest.NODES, "n2", status, subresource="status"))
    assert message == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    taint = {"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}
    message = await _refused(n1.patch(rest.NODES, "n1", taint))
    assert message == 'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'
    steer = {"metadata": {"labels": {"node-restriction.kubernetes.io/secure": "true"}}}
    message = await _refused(n1.patch(rest.NODES, "n1", steer))
    assert message == (
        'nodes "n1" is forbidden: is not allowed to modify labels: '
        "node-restriction.kubernetes.io/secure"
    )
    await n1.patch(rest.NODES, "n1", {"metadata": {"labels": {"topology.kubernetes.io/zone": "a"}}})


async def test_a_kubelet_registers_itself_only_with_kubelet_labels(
    cluster: dict[str, rest.Client],
) -> None:
    n3 = cluster["n3"]
    message = await _refused(n3.create(rest.NODES, _node("n9")))
    assert message == 'nodes "n9" is forbidden: node "n3" is not allowed to modify node "n9"'
    steering = _node("n3")
    steering["metadata"]["labels"]["kubernetes.io/role"] = "master"
    message = await _refused(n3.create(rest.NODES, steering))
    assert message == (
        'nodes "n3" is forbidden: node "n3" is not allowed to set the following labels: '
        "kubernetes.io/role"
    )
    tainted = _node("n3")
    tainted["spec"] = {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}
    created = await n3.create(rest.NODES, tainted)
    assert created["spec"]["taints"][0]["key"] == "dedicated"


async def test_pod_status_and_deletion_only_for_pods_bound_here(
    cluster: dict[str, rest.Client],
) -> None:
    admin, n1 = cluster["admin"], cluster["n1"]
    pod2 = await admin.get(rest.PODS, "p2", namespace=NS)
    pod2["status"] = {"phase": "Running"}
    message = await _refused(n1.update_status(rest.PODS, pod2))
    assert (
        message.endswith(
            'node "n1" can only update pod status for pods with spec.nodeName set to itself'
        )
        or "no relationship" in message
    )
    message = await _refused(n1.delete(rest.PODS, "p2", namespace=NS))
    assert message == (
        'pods "p2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'
    )
    pod1 = await n1.get(rest.PODS, "p1", namespace=NS)
    pod1["status"] = {"phase": "Running"}
    updated = await n1.update_status(rest.PODS, pod1)
    assert updated["status"]["phase"] == "Running"
    pod1 = updated
    pod1["metadata"]["labels"] = {"app": "stolen"}
    message = await _refused(n1.update_status(rest.PODS, pod1))
    assert message.endswith('node "n1" cannot update labels through pod status')


async def test_only_mirror_pods_of_its_own_may_be_created(cluster: dict[str, rest.Client]) -> None:
    n1 = cluster["n1"]
    plain = _pod("sneaky", "n1", "s2", "c2")
    message = await _refused(n1.create(rest.PODS, plain, namespace=NS))
    assert message == (
        'pods "sneaky" is forbidden: pod does not have "kubernetes.io/config.mirror" '
        'annotation, node "n1" can only create mirror pods'
    )
    mirror = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "static-web-n1",
            "annotations": {"kubernetes.io/config.mirror": "hash"},
        },
        "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "nginx"}]},
    }
    message = await _refused(n1.create(rest.PODS, mirror, namespace=NS))
    assert message.endswith('node "n1" can only create pods with spec.nodeName set to itself')
    mirror["spec"]["nodeName"] = "n1"
    message = await _refused(n1.create(rest.PODS, mirror, namespace=NS))
    assert message.endswith('node "n1" can only create pods with an owner reference set to itself')


async def test_leases_only_its_own_in_kube_node_lease(cluster: dict[str, rest.Client]) -> None:
    n1 = cluster["n1"]

    def lease(name: str) -> Object:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40},
        }

    await n1.create(rest.LEASES, lease("n1"), namespace="kube-node-lease")
    message = await _refused(n1.create(rest.LEASES, lease("n2"), namespace="kube-node-lease"))
    assert message.endswith("can only access node lease with the same name as the requesting node")
    message = await _refused(n1.get(rest.LEASES, "kube-scheduler", namespace="kube-system"))
    assert message.endswith('can only access leases in the "kube-node-lease" system namespace')


async def test_a_node_user_without_a_name_is_refused(cluster: dict[str, rest.Client]) -> None:
    message = await _refused(cluster["nameless"].get(rest.NODES, "n1"))
    assert message.endswith(': unknown node for user "system:node:"')


async def test_rules_review_for_a_node_is_incomplete(cluster: dict[str, rest.Client]) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": NS},
    }
    resource = rest.Resource(
        "authorization.k8s.io", "v1", "selfsubjectrulesreviews", False, "SelfSubjectRulesReview"
    )
    answer = await cluster["n1"].create(resource, review)
    assert answer["status"]["incomplete"] is True
    assert "node authorizer does not support user rule resolution" in answer["status"].get(
        "evaluationError", ""
    )


def test_pod_references_cover_every_way_a_pod_names_an_object() -> None:
    pod = {
        "metadata": {"namespace": "ns", "name": "p"},
        "spec": {
            "serviceAccountName": "robot",
            "imagePullSecrets": [{"name": "pull"}],
            "initContainers": [{"envFrom": [{"configMapRef": {"name": "init-env"}}]}],
            "containers": [{"envFrom": [{"secretRef": {"name": "env-secret"}}]}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol-secret"}},
                {"name": "b", "persistentVolumeClaim": {"claimName": "claim"}},
                {"name": "c", "ephemeral": {"volumeClaimTemplate": {}}},
                {"name": "d", "projected": {"sources": [{"configMap": {"name": "proj"}}]}},
                {"name": "e", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi"}}},
            ],
        },
    }
    assert node_auth.pod_references(pod) == {
        ("pod", "ns", "p"),
        ("serviceaccount", "ns", "robot"),
        ("secret", "ns", "pull"),
        ("configmap", "ns", "init-env"),
        ("secret", "ns", "env-secret"),
        ("secret", "ns", "vol-secret"),
        ("pvc", "ns", "claim"),
        ("pvc", "ns", "p-c"),
        ("configmap", "ns", "proj"),
        ("secret", "ns", "csi"),
    }


def _graph_pod(uid: str, node: str, secret: str, ephemeral: list[Object] | None = None) -> Object:
    spec: Object = {
        "nodeName": node,
        "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": secret}}]}],
    }
    if ephemeral is not None:
        spec["ephemeralContainers"] = ephemeral
    return {"metadata": {"namespace": "ns", "name": "p", "uid": uid}, "spec": spec}


def test_the_graph_walks_a_pod_again_only_when_its_references_may_have_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Upstream's updatePod: same node, same uid and no new ephemeral container keep the entry."""
    walked: list[str] = []
    real = node_auth.pod_references

    def counting(pod: Object) -> set[node_auth.Vertex]:
        walked.append(pod["metadata"]["uid"])
        return real(pod)

    monkeypatch.setattr(node_auth, "pod_references", counting)
    graph = node_auth.NodeGraph()
    graph.apply_pod("ADDED", _graph_pod("u1", "n1", "s1"))
    # A status write: nothing a reference comes from changed; the spec is not walked.
    graph.apply_pod("MODIFIED", _graph_pod("u1", "n1", "s1"))
    assert walked == ["u1"]
    assert graph.related("n1", "secret", "ns", "s1")
    # An ephemeral container is the one spec change that may add references.
    debug = [{"name": "debug", "envFrom": [{"secretRef": {"name": "debug-secret"}}]}]
    graph.apply_pod("MODIFIED", _graph_pod("u1", "n1", "s1", debug))
    assert walked == ["u1", "u1"]
    assert graph.related("n1", "secret", "ns", "debug-secret")
    graph.apply_pod("MODIFIED", _graph_pod("u1", "n1", "s1", debug))
    assert walked == ["u1", "u1"]
    # Another pod under the name (another uid), or another node: walked again.
    graph.apply_pod("MODIFIED", _graph_pod("u2", "n1", "s2"))
    assert graph.related("n1", "secret", "ns", "s2")
    assert not graph.related("n1", "secret", "ns", "s1")
    graph.apply_pod("MODIFIED", _graph_pod("u2", "n2", "s2"))
    assert walked == ["u1", "u1", "u2", "u2"]
    assert graph.related("n2", "secret", "ns", "s2")
    assert not graph.related("n1", "secret", "ns", "s2")
    graph.apply_pod("DELETED", _graph_pod("u2", "n2", "s2"))
    assert not graph.related("n2", "secret", "ns", "s2")


def test_node_identity_needs_both_the_group_and_the_user_prefix() -> None:
    assert node_auth.node_identity(UserInfo("system:node:a", ("system:nodes",))) == ("a", True)
    assert node_auth.node_identity(UserInfo("system:node:a", ())) == ("", False)
    assert node_auth.node_identity(UserInfo("alice", ("system:nodes",))) == ("", False)


def test_kubelet_labels_are_allowed_and_steering_labels_are_not() -> None:
    assert node_restriction.forbidden_labels(
        [
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
            "kubelet.kubernetes.io/x",
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "example.com/mine",
            "node-restriction.kubernetes.io/secure",
            "kubernetes.io/role",
            "sub.k8s.io/x",
        ]
    ) == ["kubernetes.io/role", "node-restriction.kubernetes.io/secure", "sub.k8s.io/x"]
