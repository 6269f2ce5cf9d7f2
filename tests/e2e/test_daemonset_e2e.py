"""DaemonSets end to end: the study note's ``ssd-monitor`` and a rolling update, with the real kubectl.

``kajitori up --nodes 3 --runtime simulated``: three simulated kubelets run
the pods the scheduler binds, so a daemon pod goes from created (unbound,
pinned by node affinity) to bound to Running and Ready as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.study_note import SSD_MONITOR_DAEMONSET

from kajitori.testing.cluster import KajitoriCluster, wait_until

Object = dict[str, Any]
NODES = ("kajitori-worker", "kajitori-worker2", "kajitori-worker3")

NODE_AGENT = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
spec:
  selector:
    matchLabels: {app: node-agent}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: node-agent}
    spec:
      containers:
      - name: main
        image: busybox:1
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """Three simulated nodes."""
    data_dir: Path = tmp_path_factory.mktemp("daemonsets")
    with KajitoriCluster(data_dir, extra_args=("--nodes=3", "--runtime=simulated")) as running:
        yield running


def pods(cluster: KajitoriCluster, app: str) -> list[Object]:
    return list(cluster.get_json("pods", "-l", f"app={app}")["items"])


def ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def running_on(cluster: KajitoriCluster, app: str) -> list[str]:
    """Nodes of the app's Ready pods, sorted; [] also when any pod is still on its way."""
    found = pods(cluster, app)
    if not all(ready(p) and not p["metadata"].get("deletionTimestamp") for p in found):
        return ["<pending>"]
    return sorted(p["spec"]["nodeName"] for p in found)


def test_ssd_monitor_runs_only_on_nodes_labelled_disk_ssd(cluster: KajitoriCluster) -> None:
    """The note's apps/v1beta2 DaemonSet: nowhere at first, then on the labelled node, then gone again."""
    wait_until(lambda: len(cluster.get_json("nodes")["items"]) == 3, what="three nodes")
    applied = cluster.kubectl("apply", "-f", "-", stdin=SSD_MONITOR_DAEMONSET)
    assert "daemonset.apps/ssd-monitor created" in applied.stdout
    wait_until(
        lambda: (
            cluster.get_json("ds", "ssd-monitor").get("status", {}).get("observedGeneration") == 1
        ),
        what="status observed",
    )
    assert pods(cluster, "ssd-monitor") == []

    cluster.kubectl("label", "node", "kajitori-worker2", "disk=ssd")
    wait_until(
        lambda: running_on(cluster, "ssd-monitor") == ["kajitori-worker2"], what="on worker2"
    )
    [pod] = pods(cluster, "ssd-monitor")
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["kajitori-worker2"]}
            ]
        }
    ]
    wait_until(
        lambda: cluster.get_json("ds", "ssd-monitor")["status"].get("numberAvailable") == 1,
        what="available",
    )
    table = cluster.kubectl("get", "ds", "ssd-monitor").stdout.splitlines()
    assert table[1].split()[:7] == ["ssd-monitor", "1", "1", "1", "1", "1", "disk=ssd"]

    cluster.kubectl("label", "node", "kajitori-worker2", "disk-")
    wait_until(lambda: pods(cluster, "ssd-monitor") == [], timeout=40, what="pod removed")
    status = cluster.get_json("ds", "ssd-monitor")["status"]
    assert status.get("desiredNumberScheduled", 0) == 0
    assert status.get("numberMisscheduled", 0) == 0


def test_rolling_update_replaces_every_daemon_pod_and_records_history(
    cluster: KajitoriCluster,
) -> None:
    """kubectl set image → rollout status completes, all three pods run the new image, history has 2 revisions."""
    cluster.kubectl("apply", "-f", "-", stdin=NODE_AGENT)
    wait_until(lambda: running_on(cluster, "node-agent") == list(NODES), what="three agents")
    cluster.kubectl("set", "image", "ds/node-agent", "main=busybox:2")
    rollout = cluster.kubectl("rollout", "status", "ds/node-agent", "--timeout=90s")
    assert 'daemon set "node-agent" successfully rolled out' in rollout.stdout
    wait_until(lambda: running_on(cluster, "node-agent") == list(NODES), what="three new agents")
    found = pods(cluster, "node-agent")
    assert {p["spec"]["containers"][0]["image"] for p in found} == {"busybox:2"}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in found} == {"2"}
    history = cluster.kubectl("rollout", "history", "ds/node-agent").stdout
    revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
    assert revisions == ["1", "2"]
    status = cluster.get_json("ds", "node-agent")["status"]
    assert (status["updatedNumberScheduled"], status["numberAvailable"]) == (3, 3)


def test_rollout_undo_brings_back_the_old_template_as_a_new_revision(
    cluster: KajitoriCluster,
) -> None:
    """kubectl rollout undo: busybox:1 again, its revision renumbered to 3 rather than duplicated."""
    cluster.kubectl("rollout", "undo", "ds/node-agent")
    cluster.kubectl("rollout", "status", "ds/node-agent", "--timeout=90s")
    wait_until(lambda: running_on(cluster, "node-agent") == list(NODES), what="agents back")
    assert {p["spec"]["containers"][0]["image"] for p in pods(cluster, "node-agent")} == {
        "busybox:1"
    }
    history = cluster.kubectl("rollout", "history", "ds/node-agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    revisions = cluster.get_json("controllerrevisions", "-l", "app=node-agent")["items"]
    assert sorted(r["revision"] for r in revisions) == [2, 3]
