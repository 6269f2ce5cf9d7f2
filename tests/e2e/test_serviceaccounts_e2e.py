"""Service accounts and tokens with the real kubectl: TokenRequest, bearer tokens, impersonation."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster

STATIC_TOKEN = "static-token-for-carol"


@pytest.fixture(scope="module")
def sa_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """A cluster started with a static token file naming carol (group devs)."""
    data_dir: Path = tmp_path_factory.mktemp("sa-cluster")
    token_file = data_dir / "tokens.csv"
    token_file.write_text(f'{STATIC_TOKEN},carol,1001,"devs"\n')
    with KajitoriCluster(data_dir, extra_args=("--token-auth-file", str(token_file))) as running:
        _write_certless_kubeconfig(running)
        yield running


def _write_certless_kubeconfig(cluster: KajitoriCluster) -> None:
    """A kubeconfig with the server and CA but no client certificate (tokens only)."""
    ca = cluster.data_dir / "pki" / "ca.crt"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": cluster.url, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "u", "user": {}}],
        "contexts": [
            {"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}
        ],
        "current-context": "c",
    }
    (cluster.data_dir / "nocert.kubeconfig").write_text(json.dumps(config))


def _as_token(cluster: KajitoriCluster, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(cluster.data_dir / "nocert.kubeconfig")}
    return cluster.kubectl("--token", token, *args, check=False, env=env)


def _raw_get(cluster: KajitoriCluster, path: str, token: str) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    request = urllib.request.Request(
        cluster.url + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _default_sa_exists(cluster: KajitoriCluster, namespace: str) -> bool:
    got = cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False)
    return got.returncode == 0


def test_a_created_token_is_the_service_account_and_rbac_decides(
    sa_cluster: KajitoriCluster,
) -> None:
    """kubectl create token: 403 with upstream's message, 200 after a view rolebinding."""
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "default"))
    token = sa_cluster.kubectl("create", "token", "default").stdout.strip()
    code, body = _raw_get(sa_cluster, "/api/v1/namespaces/default/pods", token)
    assert code == 403
    assert body["message"] == (
        'pods is forbidden: User "system:serviceaccount:default:default" cannot list resource '
        '"pods" in API group "" in the namespace "default"'
    )
    sa_cluster.kubectl(
        "create", "rolebinding", "sa-view", "--clusterrole=view", "--serviceaccount=default:default"
    )
    assert _eventually(
        lambda: _raw_get(sa_cluster, "/api/v1/namespaces/default/pods", token)[0] == 200
    )


def test_auth_whoami_with_a_token_reports_the_service_account(
    sa_cluster: KajitoriCluster,
) -> None:
    """kubectl auth whoami --token shows the user, uid and groups of the token."""
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "default"))
    token = sa_cluster.kubectl("create", "token", "default").stdout.strip()
    result = _as_token(sa_cluster, token, "auth", "whoami", "-o", "json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:default:default"
    assert info["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("eyJhbGciOiJub25lIn0.eyJpc3MiOiJrdWJlcm5ldGVzIn0.", id="alg-none"),
    ],
)
def test_an_invalid_token_gets_upstreams_401_status(
    sa_cluster: KajitoriCluster, token: str
) -> None:
    """A bearer token nobody accepts: 401 with reason Unauthorized, never anonymous."""
    code, body = _raw_get(sa_cluster, "/api/v1/namespaces/default/pods", token)
    assert code == 401
    assert (body["kind"], body["reason"], body["message"]) == (
        "Status",
        "Unauthorized",
        "Unauthorized",
    )


def test_a_token_bound_to_a_pod_dies_with_the_pod(sa_cluster: KajitoriCluster) -> None:
    """--bound-object-kind Pod: valid while the pod exists, 401 once it is gone."""
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "default"))
    sa_cluster.kubectl("run", "bound", "--image=nginx")
    token = sa_cluster.kubectl(
        "create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "bound"
    ).stdout.strip()
    assert _as_token(sa_cluster, token, "auth", "whoami").returncode == 0
    sa_cluster.kubectl("delete", "pod", "bound", "--grace-period=0", "--force")
    result = _as_token(sa_cluster, token, "auth", "whoami")
    assert result.returncode != 0
    assert "Unauthorized" in result.stderr


def test_token_request_validation_and_missing_accounts(sa_cluster: KajitoriCluster) -> None:
    """Too short a duration is 422; an unknown account is 404 serviceaccounts "x" not found."""
    short = sa_cluster.kubectl("create", "token", "default", "--duration=5m", check=False)
    assert "may not specify a duration less than 10 minutes" in short.stderr
    missing = sa_cluster.kubectl("create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr


def test_a_static_token_file_user_authenticates(sa_cluster: KajitoriCluster) -> None:
    """--token-auth-file: the row's user, uid and groups."""
    result = _as_token(sa_cluster, STATIC_TOKEN, "auth", "whoami", "-o", "json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)["status"]["userInfo"]
    assert (info["username"], info["uid"], info["groups"]) == (
        "carol",
        "1001",
        ["devs", "system:authenticated"],
    )


def test_kubectl_as_impersonates_when_allowed_and_is_refused_otherwise(
    sa_cluster: KajitoriCluster,
) -> None:
    """The admin may act as bob in g; carol may not, with upstream's message."""
    result = sa_cluster.kubectl("--as", "bob", "--as-group", "g", "auth", "whoami", "-o", "json")
    info = json.loads(result.stdout)["status"]["userInfo"]
    assert (info["username"], info["groups"]) == ("bob", ["g", "system:authenticated"])
    refused = _as_token(sa_cluster, STATIC_TOKEN, "--as", "bob", "get", "pods")
    assert refused.returncode != 0
    assert (
        'users "bob" is forbidden: User "carol" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    ) in refused.stderr


def test_token_review_answers_for_a_service_account_token(sa_cluster: KajitoriCluster) -> None:
    """authentication.k8s.io/v1 TokenReview reports the token's user."""
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "default"))
    token = sa_cluster.kubectl("create", "token", "default").stdout.strip()
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    result = sa_cluster.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(review))
    status = json.loads(result.stdout)["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:default:default"
    bad = {**review, "spec": {"token": "garbage"}}
    result = sa_cluster.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(bad))
    assert json.loads(result.stdout)["status"].get("authenticated") in (False, None)


def test_a_new_namespace_gets_the_default_account_and_the_root_ca(
    sa_cluster: KajitoriCluster,
) -> None:
    """The serviceaccount controller and root-ca-cert-publisher fill every namespace."""
    sa_cluster.kubectl("create", "namespace", "fresh")
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "fresh"))

    def ca() -> str:
        got = sa_cluster.kubectl(
            "get", "configmap", "kube-root-ca.crt", "-n", "fresh", "-o", "json", check=False
        )
        return json.loads(got.stdout)["data"]["ca.crt"] if got.returncode == 0 else ""

    assert _eventually(ca) == (sa_cluster.data_dir / "pki" / "ca.crt").read_text()


def test_a_pod_gets_the_kube_api_access_volume_in_every_container(
    sa_cluster: KajitoriCluster,
) -> None:
    """ServiceAccount admission: default account, projected volume, read-only mounts."""
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "default"))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "mounted"},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx"}],
        },
    }
    sa_cluster.kubectl("create", "-f", "-", stdin=json.dumps(pod))
    spec = json.loads(sa_cluster.kubectl("get", "pod", "mounted", "-o", "json").stdout)["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == 21
    assert volume["projected"]["defaultMode"] == 420
    assert volume["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}
    }
    for container in [*spec["initContainers"], *spec["containers"]]:
        assert container["volumeMounts"] == [
            {
                "name": volume["name"],
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ]


def test_a_pod_whose_account_does_not_exist_is_refused(sa_cluster: KajitoriCluster) -> None:
    """Upstream's message for a missing service account."""
    result = sa_cluster.kubectl(
        "run",
        "orphan",
        "--image=nginx",
        "--overrides",
        '{"spec":{"serviceAccountName":"nope"}}',
        check=False,
    )
    assert (
        'pods "orphan" is forbidden: error looking up service account default/nope: '
        'serviceaccount "nope" not found'
    ) in result.stderr


def test_a_legacy_token_secret_gets_its_token_and_it_authenticates(
    sa_cluster: KajitoriCluster,
) -> None:
    """The tokens controller fills data.token, ca.crt and namespace; the token works."""
    assert _eventually(lambda: _default_sa_exists(sa_cluster, "default"))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "legacy",
            "annotations": {"kubernetes.io/service-account.name": "default"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    sa_cluster.kubectl("create", "-f", "-", stdin=json.dumps(secret))

    def data() -> dict[str, str]:
        got = sa_cluster.kubectl("get", "secret", "legacy", "-o", "json")
        found: dict[str, str] = json.loads(got.stdout).get("data") or {}
        return found if "token" in found else {}

    filled = _eventually(data)
    assert set(filled) == {"token", "ca.crt", "namespace"}
    assert base64.b64decode(filled["namespace"]) == b"default"
    token = base64.b64decode(filled["token"]).decode()
    assert "token:" in sa_cluster.kubectl("describe", "secret", "legacy").stdout
    whoami = _as_token(sa_cluster, token, "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == (
        "system:serviceaccount:default:default"
    )
    sa_cluster.kubectl("delete", "secret", "legacy")
    assert _as_token(sa_cluster, token, "auth", "whoami").returncode != 0
