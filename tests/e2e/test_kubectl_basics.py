"""The real kubectl against kajitori: the everyday commands a newcomer types."""

from __future__ import annotations

import json

import pytest

from kajitori.testing.cluster import KajitoriCluster


def test_initial_namespaces_exist(cluster: KajitoriCluster) -> None:
    """default, kube-system, kube-public and kube-node-lease exist from the start."""
    out = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{name}" in out


def test_kubernetes_service_has_first_service_ip(cluster: KajitoriCluster) -> None:
    """The kubernetes Service sits at 10.96.0.1:443 in default, as kubeadm's."""
    svc = json.loads(cluster.kubectl("get", "service", "kubernetes", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443


def test_configmap_create_get_delete(cluster: KajitoriCluster) -> None:
    """create configmap, read a key back with jsonpath, delete it, and it is gone."""
    cluster.kubectl("create", "configmap", "basic", "--from-literal=greeting=hello")
    value = cluster.kubectl("get", "configmap", "basic", "-o", "jsonpath={.data.greeting}").stdout
    assert value == "hello"
    cluster.kubectl("delete", "configmap", "basic")
    missing = cluster.kubectl("get", "configmap", "basic", check=False)
    assert missing.returncode != 0
    assert 'configmaps "basic" not found' in missing.stderr


def test_api_versions_lists_core_and_groups(cluster: KajitoriCluster) -> None:
    """kubectl api-versions reads discovery and lists v1, apps/v1 and batch/v1."""
    versions = cluster.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"):
        assert gv in versions


def test_api_resources_shows_short_names(cluster: KajitoriCluster) -> None:
    """kubectl api-resources shows upstream's short names and scopes."""
    out = cluster.kubectl("api-resources", "--no-headers").stdout
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.strip():
            # The first row per name is the preferred version (later: legacy versions).
            rows.setdefault(line.split()[0], line.split())
    assert "po" in rows["pods"]
    assert "deploy" in rows["deployments"]
    assert "false" in rows["nodes"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("version", "-o", "json"), '"minor": "37"', id="version"),
    ],
)
def test_server_version_is_1_37(
    cluster: KajitoriCluster, args: tuple[str, ...], expected: str
) -> None:
    """The server reports Kubernetes 1.37."""
    assert expected in cluster.kubectl(*args).stdout
