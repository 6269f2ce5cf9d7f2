"""Cascading deletion in each mode with the real kubectl, the garbage collector and running pods.

A Deployment of two replicas on simulated nodes owns a ReplicaSet that owns
two Running pods. ``kubectl delete --cascade=background`` removes the
Deployment at once and the collector then removes the ReplicaSet and pods;
``foreground`` keeps the Deployment (with ``foregroundDeletion`` and a
deletionTimestamp) until every blocking dependent is gone; ``orphan`` removes
only the Deployment and leaves its ReplicaSet and pods running, without an
owner reference to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_until

Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    args = ("--nodes=2", "--runtime=simulated")
    with KajitoriCluster(tmp_path_factory.mktemp("cascade"), extra_args=args) as running:
        running.wait_for_namespace_defaults("default")
        yield running


def _items(cluster: KajitoriCluster, kind: str, selector: str) -> list[Object]:
    out = cluster.kubectl("get", kind, "-l", selector, "-o", "json").stdout
    return json.loads(out)["items"]  # type: ignore[no-any-return]


def _running_deployment(cluster: KajitoriCluster, name: str) -> None:
    cluster.kubectl("create", "deployment", name, "--image=nginx", "--replicas=2")
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s")
    wait_until(
        lambda: (
            [p["status"].get("phase") for p in _items(cluster, "pods", f"app={name}")]
            == ["Running", "Running"]
        ),
        timeout=30,
        what=f"{name}'s pods to run",
    )


def _gone(cluster: KajitoriCluster, *args: str) -> bool:
    return cluster.kubectl("get", *args, check=False).returncode != 0


def test_background_deletes_the_owner_then_the_collector_its_dependents(
    cluster: KajitoriCluster,
) -> None:
    _running_deployment(cluster, "bg")
    cluster.kubectl("delete", "deployment", "bg", "--cascade=background", "--wait=false")
    assert _gone(cluster, "deployment", "bg")
    wait_until(
        lambda: (
            not _items(cluster, "replicasets", "app=bg") and not _items(cluster, "pods", "app=bg")
        ),
        timeout=30,
        what="the collector to delete the ReplicaSet and pods",
    )


def test_foreground_keeps_the_owner_until_its_dependents_are_gone(
    cluster: KajitoriCluster,
) -> None:
    _running_deployment(cluster, "fg")
    cluster.kubectl("delete", "deployment", "fg", "--cascade=foreground", "--wait=false")
    held = cluster.kubectl("get", "deployment", "fg", "-o", "json", check=False)
    if held.returncode == 0:
        # Still there while dependents are deleted: marked, not gone.
        meta = json.loads(held.stdout)["metadata"]
        assert meta.get("deletionTimestamp")
        if "foregroundDeletion" not in meta.get("finalizers", []):
            # The collector already finished: the finalizer goes only once no dependent is left.
            assert not _items(cluster, "replicasets", "app=fg")
    wait_until(lambda: _gone(cluster, "deployment", "fg"), timeout=30, what="the owner to go")
    # The owner goes last: by then its dependents are gone too.
    assert not _items(cluster, "replicasets", "app=fg")
    assert all(p["metadata"].get("deletionTimestamp") for p in _items(cluster, "pods", "app=fg"))
    wait_until(lambda: not _items(cluster, "pods", "app=fg"), timeout=30, what="pods to go")


def test_orphan_leaves_the_dependents_running_without_the_owner(
    cluster: KajitoriCluster,
) -> None:
    _running_deployment(cluster, "orph")
    cluster.kubectl("delete", "deployment", "orph", "--cascade=orphan")
    assert _gone(cluster, "deployment", "orph")

    def orphaned() -> bool:
        sets = _items(cluster, "replicasets", "app=orph")
        return len(sets) == 1 and not sets[0]["metadata"].get("ownerReferences")

    wait_until(orphaned, timeout=30, what="the ReplicaSet to lose its owner reference")
    pods = _items(cluster, "pods", "app=orph")
    assert [p["status"]["phase"] for p in pods] == ["Running", "Running"]
    # The pods still belong to the ReplicaSet, which keeps them.
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)
