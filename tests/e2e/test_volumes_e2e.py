"""Persistent volumes on ``kajitori up --nodes 2`` through the real kubectl.

kind's behaviour: the default ``standard`` class (local-path,
WaitForFirstConsumer) leaves a claim Pending until a pod uses it; the
scheduler then picks a node, the provisioner makes a hostPath volume pinned
to that node, and the claim binds. Deleting the claim deletes that volume.
A hand-made Retain volume binds, and is Released when its claim goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_until

Object = dict[str, Any]
NODES = ("kajitori-worker", "kajitori-worker2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """A cluster with two simulated nodes."""
    data_dir: Path = tmp_path_factory.mktemp("volumes")
    with KajitoriCluster(data_dir, extra_args=("--nodes=2", "--runtime=simulated")) as running:
        running.wait_for_namespace_defaults("default")
        yield running


def get(cluster: KajitoriCluster, *args: str) -> Object:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)  # type: ignore[no-any-return]


def apply(cluster: KajitoriCluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=manifest)


def phase(cluster: KajitoriCluster, *args: str) -> str:
    found = cluster.kubectl("get", *args, "-o", "jsonpath={.status.phase}", check=False)
    return found.stdout.strip() if found.returncode == 0 else ""


def test_standard_is_the_default_storage_class(cluster: KajitoriCluster) -> None:
    """``kubectl get storageclass`` shows kind's ``standard (default)``."""
    table = cluster.kubectl("get", "storageclass").stdout
    assert "standard (default)" in table
    assert "rancher.io/local-path" in table and "WaitForFirstConsumer" in table


def test_claim_waits_for_its_first_consumer_then_binds_on_the_pods_node(
    cluster: KajitoriCluster,
) -> None:
    """Pending until a pod uses it; then a node-local volume on the pod's node, Bound; delete frees it."""
    apply(
        cluster,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n"
        "spec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n",
    )

    def waiting() -> bool:
        found = get(cluster, "events", "--field-selector", "involvedObject.name=data")
        return any(e["reason"] == "WaitForFirstConsumer" for e in found["items"])

    wait_until(waiting, what="WaitForFirstConsumer event")
    claim = get(cluster, "pvc", "data")
    assert claim["status"]["phase"] == "Pending"
    assert claim["spec"]["storageClassName"] == "standard"
    assert get(cluster, "pv")["items"] == []

    apply(
        cluster,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: user}\nspec:\n"
        "  containers: [{name: c, image: nginx}]\n"
        "  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]\n",
    )
    wait_until(lambda: phase(cluster, "pvc", "data") == "Bound", what="claim Bound")
    wait_until(lambda: phase(cluster, "pod", "user") == "Running", what="pod Running")

    claim = get(cluster, "pvc", "data")
    node = get(cluster, "pod", "user")["spec"]["nodeName"]
    assert node in NODES
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    pv = get(cluster, "pv", claim["spec"]["volumeName"])
    assert pv["metadata"]["name"] == f"pvc-{claim['metadata']['uid']}"
    assert pv["status"]["phase"] == "Bound"
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0]["values"] == [node]
    assert claim["status"]["capacity"] == {"storage": "1Gi"}

    cluster.kubectl("delete", "pod", "user", "--timeout=30s")
    cluster.kubectl("delete", "pvc", "data", "--timeout=30s")
    wait_until(
        lambda: cluster.kubectl("get", "pv", pv["metadata"]["name"], check=False).returncode == 1,
        what="provisioned volume deleted",
    )


def test_a_retained_volume_binds_and_is_released_with_its_claim(cluster: KajitoriCluster) -> None:
    """A pre-created Retain volume (class "") binds to a matching claim; delete → Released."""
    apply(
        cluster,
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: keep}\nspec:\n"
        "  capacity: {storage: 2Gi}\n  accessModes: [ReadWriteOnce]\n"
        "  persistentVolumeReclaimPolicy: Retain\n  storageClassName: ''\n"
        "  hostPath: {path: /srv/keep}\n",
    )
    wait_until(lambda: phase(cluster, "pv", "keep") == "Available", what="volume Available")
    apply(
        cluster,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: static}\n"
        "spec:\n  storageClassName: ''\n  accessModes: [ReadWriteOnce]\n"
        "  resources: {requests: {storage: 1Gi}}\n",
    )
    wait_until(lambda: phase(cluster, "pvc", "static") == "Bound", what="claim Bound")
    assert get(cluster, "pvc", "static")["spec"]["volumeName"] == "keep"
    table = cluster.kubectl("get", "pv", "keep").stdout
    assert "Bound" in table and "default/static" in table

    cluster.kubectl("delete", "pvc", "static", "--timeout=30s")
    wait_until(lambda: phase(cluster, "pv", "keep") == "Released", what="volume Released")
    assert "Released" in cluster.kubectl("get", "pv", "keep").stdout


def test_a_pod_whose_claim_is_missing_is_unschedulable(cluster: KajitoriCluster) -> None:
    """The scheduler reports upstream's 'persistentvolumeclaim "x" not found'."""
    apply(
        cluster,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: orphan}\nspec:\n"
        "  containers: [{name: c, image: nginx}]\n"
        "  volumes: [{name: d, persistentVolumeClaim: {claimName: nope}}]\n",
    )

    def reported() -> bool:
        pod = get(cluster, "pod", "orphan")
        conditions = pod["status"].get("conditions") or ()
        return any(
            c["type"] == "PodScheduled" and 'persistentvolumeclaim "nope" not found' in c["message"]
            for c in conditions
        )

    wait_until(reported, what="FailedScheduling for the missing claim")
