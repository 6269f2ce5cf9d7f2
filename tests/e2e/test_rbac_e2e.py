"""RBAC with the real kubectl: non-admin users by client certificate from the cluster CA."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kajitori.auth import pki
from kajitori.client import kubeconfig
from kajitori.testing.cluster import KajitoriCluster

SA_NAME = "system:serviceaccount:demo:default"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:demo")


class Users:
    """Kubeconfigs for alice (no groups), bob (group devs) and the demo default ServiceAccount."""

    def __init__(self, cluster: KajitoriCluster) -> None:
        self.cluster = cluster
        self.paths: dict[str, Path] = {}
        ca = pki.load_cert_and_key(
            cluster.data_dir / "pki" / "ca.crt", cluster.data_dir / "pki" / "ca.key"
        )
        for short, name, groups in (
            ("alice", "alice", ()),
            ("bob", "bob", ("devs",)),
            ("sa", SA_NAME, SA_GROUPS),
        ):
            pair = pki.issue_client_cert(ca, user=name, groups=groups)
            path = cluster.data_dir / f"{short}.kubeconfig"
            kubeconfig.write_kubeconfig(
                path,
                server_url=cluster.url,
                ca_pem=ca.cert_pem,
                client_cert_pem=pair.cert_pem,
                client_key_pem=pair.key_pem,
                user_name=short,
                context_name=short,
            )
            self.paths[short] = path

    def kubectl(
        self, who: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {"KUBECONFIG": str(self.paths[who])}
        return self.cluster.kubectl(*args, stdin=stdin, check=False, env=env)


@pytest.fixture(scope="module")
def users(cluster: KajitoriCluster) -> Iterator[Users]:
    """The demo namespace with edit for group devs and view for the demo default ServiceAccount."""
    cluster.kubectl("create", "namespace", "demo")
    cluster.kubectl(
        "create", "rolebinding", "devs-edit", "--clusterrole=edit", "--group=devs", "-n", "demo"
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "sa-view",
        "--clusterrole=view",
        "--serviceaccount=demo:default",
        "-n",
        "demo",
    )
    yield Users(cluster)


def _eventually(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return bool(check())  # type: ignore[operator]


@pytest.mark.parametrize(
    ("who", "args", "allowed"),
    [
        pytest.param("alice", ("list", "pods", "-n", "demo"), False, id="alice-list-pods"),
        pytest.param("alice", ("get", "/api"), True, id="alice-discovery"),
        pytest.param("alice", ("get", "/metrics"), False, id="alice-metrics"),
        pytest.param(
            "alice",
            ("create", "selfsubjectaccessreviews.authorization.k8s.io"),
            True,
            id="alice-basic-user",
        ),
        pytest.param(
            "bob", ("create", "deployments.apps", "-n", "demo"), True, id="bob-create-deploy-demo"
        ),
        pytest.param(
            "bob",
            ("create", "deployments.apps", "-n", "default"),
            False,
            id="bob-create-deploy-default",
        ),
        pytest.param("bob", ("get", "secrets", "-n", "demo"), True, id="bob-read-secrets"),
        pytest.param(
            "bob",
            ("create", "roles.rbac.authorization.k8s.io", "-n", "demo"),
            False,
            id="bob-no-roles",
        ),
        pytest.param("bob", ("delete", "pods", "-n", "demo"), True, id="bob-delete-pods"),
        pytest.param(
            "bob", ("create", "pods", "--subresource=exec", "-n", "demo"), True, id="bob-exec"
        ),
        pytest.param("bob", ("list", "nodes"), False, id="bob-nodes"),
        pytest.param(
            "bob",
            ("update", "deployments.apps", "--subresource=scale", "-n", "demo"),
            True,
            id="bob-scale",
        ),
        pytest.param("sa", ("list", "pods", "-n", "demo"), True, id="sa-list-pods"),
        pytest.param("sa", ("get", "pods", "--subresource=log", "-n", "demo"), True, id="sa-logs"),
        pytest.param("sa", ("get", "secrets", "-n", "demo"), False, id="sa-no-secrets"),
        pytest.param("sa", ("create", "configmaps", "-n", "demo"), False, id="sa-read-only"),
        pytest.param("sa", ("list", "pods", "-n", "default"), False, id="sa-other-namespace"),
        pytest.param("sa", ("list", "pods", "--all-namespaces"), False, id="sa-cluster-wide"),
    ],
)
def test_rbac_matrix_matches_upstream_roles(
    users: Users, who: str, args: tuple[str, ...], allowed: bool
) -> None:
    """kubectl auth can-i (SelfSubjectAccessReview) answers as upstream's edit/view/basic-user do."""
    result = users.kubectl(who, "auth", "can-i", *args)
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr
    assert result.returncode == (0 if allowed else 1)


@pytest.mark.parametrize(
    ("who", "args", "message"),
    [
        pytest.param(
            "sa",
            ("get", "secrets", "-n", "demo"),
            'secrets is forbidden: User "system:serviceaccount:demo:default" cannot list resource '
            '"secrets" in API group "" in the namespace "demo"',
            id="namespaced-list",
        ),
        pytest.param(
            "alice",
            ("get", "nodes"),
            'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope',
            id="cluster-scope",
        ),
        pytest.param(
            "alice",
            ("get", "pod", "x", "-n", "demo"),
            'pods "x" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "demo"',
            id="named",
        ),
        pytest.param(
            "alice",
            ("get", "--raw", "/api/v1/namespaces/demo/pods/x/log"),
            'pods "x" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "demo"',
            id="subresource",
        ),
        pytest.param(
            "alice",
            ("get", "--raw", "/foo"),
            'forbidden: User "alice" cannot get path "/foo"',
            id="path",
        ),
    ],
)
def test_denials_carry_upstreams_messages(
    users: Users, who: str, args: tuple[str, ...], message: str
) -> None:
    """403 Forbidden with the exact upstream text."""
    result = users.kubectl(who, *args)
    assert result.returncode != 0
    assert f"Error from server (Forbidden): {message}" in result.stderr


def test_whoami_shows_the_certificate_identity(users: Users) -> None:
    """kubectl auth whoami (SelfSubjectReview) reports CN, O and system:authenticated."""
    out = users.kubectl("bob", "auth", "whoami", "-o", "json")
    review = json.loads(out.stdout)
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"] == {
        "username": "bob",
        "groups": ["devs", "system:authenticated"],
    }


def test_can_i_list_shows_the_users_rules(users: Users) -> None:
    """kubectl auth can-i --list (SelfSubjectRulesReview) lists bound and basic rules."""
    out = users.kubectl("sa", "auth", "can-i", "--list", "-n", "demo").stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "[get list watch]" in rows["pods"]
    assert "[create]" in rows["selfsubjectaccessreviews.authorization.k8s.io"]
    assert "secrets" not in rows
    assert "[/api/*]" in out


def _anonymous_get(cluster: KajitoriCluster, path: str) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    try:
        with urllib.request.urlopen(cluster.url + path, context=context, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_anonymous_sees_only_public_info(cluster: KajitoriCluster) -> None:
    """system:anonymous may read /version and /healthz, nothing else."""
    assert _anonymous_get(cluster, "/healthz") == (200, "ok")
    assert _anonymous_get(cluster, "/version")[0] == 200
    code, body = _anonymous_get(cluster, "/api")
    assert code == 403
    assert (
        json.loads(body)["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'
    )
    code, body = _anonymous_get(cluster, "/api/v1/namespaces")
    assert (code, json.loads(body)["message"]) == (
        403,
        'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
        'in API group "" at the cluster scope',
    )


def test_a_rolebinding_takes_effect_promptly(users: Users, cluster: KajitoriCluster) -> None:
    """alice is refused, gets a RoleBinding, and within moments can list pods; removal revokes."""
    assert users.kubectl("alice", "get", "pods", "-n", "demo").returncode != 0
    cluster.kubectl(
        "create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "-n", "demo"
    )
    assert _eventually(lambda: users.kubectl("alice", "get", "pods", "-n", "demo").returncode == 0)
    cluster.kubectl("delete", "rolebinding", "alice-view", "-n", "demo")
    assert _eventually(lambda: users.kubectl("alice", "get", "pods", "-n", "demo").returncode != 0)


def test_role_escalation_is_refused(users: Users, cluster: KajitoriCluster) -> None:
    """A namespace admin cannot create a Role granting what they do not hold, but can within it."""
    cluster.kubectl(
        "create", "rolebinding", "bob-admin", "--clusterrole=admin", "--user=bob", "-n", "demo"
    )
    assert _eventually(
        lambda: (
            users.kubectl("bob", "auth", "can-i", "create", "roles", "-n", "demo").returncode == 0
        )
    )
    refused = users.kubectl(
        "bob", "create", "role", "nodes", "--verb=get", "--resource=nodes", "-n", "demo"
    )
    assert refused.returncode != 0
    assert (
        'roles.rbac.authorization.k8s.io "nodes" is forbidden: user "bob" '
        '(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}'
    ) in refused.stderr
    ok = users.kubectl(
        "bob", "create", "role", "pods", "--verb=get", "--resource=pods", "-n", "demo"
    )
    assert ok.returncode == 0, ok.stderr


def test_binding_escalation_is_refused(users: Users) -> None:
    """Binding cluster-admin in a namespace needs its permissions or the bind verb."""
    refused = users.kubectl(
        "bob",
        "create",
        "rolebinding",
        "sneaky",
        "--clusterrole=cluster-admin",
        "--user=bob",
        "-n",
        "demo",
    )
    assert refused.returncode != 0
    assert (
        'rolebindings.rbac.authorization.k8s.io "sneaky" is forbidden: user "bob"' in refused.stderr
    )
    assert "is attempting to grant RBAC permissions not currently held" in refused.stderr


def test_subject_access_review_answers_for_another_user(cluster: KajitoriCluster) -> None:
    """An admin's SubjectAccessReview about the ServiceAccount: allowed, with the reason."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SA_NAME,
            "groups": list(SA_GROUPS),
            "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "demo"},
        },
    }
    out = cluster.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(review)).stdout
    status = json.loads(out)["status"]
    assert status["allowed"] is True
    assert status["reason"] == (
        'RBAC: allowed by RoleBinding "sa-view/demo" of ClusterRole "view" to ServiceAccount "default/demo"'
    )


def test_review_kinds_are_create_only_in_discovery(cluster: KajitoriCluster) -> None:
    """The review kinds are served with verbs [create] only."""
    out = cluster.kubectl("get", "--raw", "/apis/authorization.k8s.io/v1").stdout
    verbs = {r["name"]: r["verbs"] for r in json.loads(out)["resources"]}
    assert verbs == {
        "subjectaccessreviews": ["create"],
        "selfsubjectaccessreviews": ["create"],
        "localsubjectaccessreviews": ["create"],
        "selfsubjectrulesreviews": ["create"],
    }
