"""``kubectl drain`` on ``kajitori up --nodes 2 --runtime simulated``: evictions honour PDBs.

kubectl drain cordons the node, finds the eviction API in discovery
(``pods/eviction``, policy/v1) and evicts each pod, retrying every 5 s
while a PodDisruptionBudget answers 429. The disruption controller keeps
the budgets' status, the ReplicaSet controller replaces evicted pods on the
other node.
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
    data_dir: Path = tmp_path_factory.mktemp("drain")
    with KajitoriCluster(data_dir, extra_args=("--nodes=2", "--runtime=simulated")) as running:
        running.wait_for_namespace_defaults("default")
        yield running


def _pods(cluster: KajitoriCluster, app: str) -> list[Object]:
    listed = json.loads(cluster.kubectl("get", "pods", "-l", f"app={app}", "-o", "json").stdout)
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _pdb_allowed(cluster: KajitoriCluster, name: str) -> int | None:
    pdb = json.loads(cluster.kubectl("get", "pdb", name, "-o", "json").stdout)
    status = pdb.get("status") or {}
    if status.get("observedGeneration") != pdb["metadata"]["generation"]:
        return None
    return int(status.get("disruptionsAllowed") or 0)


def _deploy(cluster: KajitoriCluster, app: str, replicas: int, min_available: int) -> None:
    cluster.kubectl(
        "create", "deployment", app, "--image=nginx", f"--replicas={replicas}", "--port=80"
    )
    cluster.kubectl(
        "create",
        "poddisruptionbudget",
        app,
        f"--selector=app={app}",
        f"--min-available={min_available}",
    )
    wait_until(
        lambda: len([p for p in _pods(cluster, app) if _ready(p)]) == replicas,
        timeout=40,
        what=f"{replicas} ready {app} pods",
    )


def test_drain_evicts_pods_within_the_budget_and_they_move_to_the_other_node(
    cluster: KajitoriCluster,
) -> None:
    """2 replicas, minAvailable 1: drain worker → every web pod ends up Ready on worker2."""
    _deploy(cluster, "web", 2, 1)
    wait_until(lambda: _pdb_allowed(cluster, "web") == 1, timeout=20, what="pdb allows 1")
    drained = cluster.kubectl(
        "drain",
        NODES[0],
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=90s",
        timeout=120,
    )
    assert f"node/{NODES[0]} drained" in drained.stdout
    node = json.loads(cluster.kubectl("get", "node", NODES[0], "-o", "json").stdout)
    assert node["spec"].get("unschedulable") is True

    def moved() -> bool:
        pods = _pods(cluster, "web")
        return len(pods) == 2 and all(
            _ready(p) and p["spec"].get("nodeName") == NODES[1] for p in pods
        )

    wait_until(moved, timeout=40, what="web pods Ready on the other node")
    wait_until(lambda: _pdb_allowed(cluster, "web") == 1, timeout=20, what="pdb recovered")
    table = cluster.kubectl("get", "pdb", "web").stdout
    assert table.split("\n")[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    cluster.kubectl("uncordon", NODES[0])


def test_drain_stops_at_a_budget_that_allows_no_disruption(cluster: KajitoriCluster) -> None:
    """minAvailable = replicas: eviction answers 429 and drain times out naming the budget."""
    _deploy(cluster, "db", 1, 1)
    wait_until(lambda: _pdb_allowed(cluster, "db") == 0, timeout=20, what="pdb allows 0")
    node = _pods(cluster, "db")[0]["spec"]["nodeName"]
    result = cluster.kubectl(
        "drain",
        node,
        "--ignore-daemonsets",
        "--timeout=8s",
        "--pod-selector=app=db",
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in result.stderr
    pods = _pods(cluster, "db")
    assert len(pods) == 1 and pods[0]["spec"]["nodeName"] == node
    cluster.kubectl("uncordon", node)
