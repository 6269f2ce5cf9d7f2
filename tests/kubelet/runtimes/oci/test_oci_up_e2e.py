"""``kajitori up --nodes 1 --runtime oci`` through the real kubectl: a busybox pod runs under runc."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers

from kajitori.kubelet.runtimes.oci import mounts
from kajitori.testing import node_network
from kajitori.testing.cluster import KajitoriCluster, wait_until

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  nodeName: kajitori-worker
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "echo hello from $(hostname); trap 'exit 0' TERM; while true; do sleep 0.1; done"]
"""


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KajitoriCluster]:
    monkeypatch.setenv("KAJITORI_OCI_ROOT", str(tmp_path / "oci"))
    monkeypatch.setenv("KAJITORI_OCI_IMAGES", "busybox")  # no registry here
    # A node network of its own (decision 0031): other tests run clusters at the same time.
    network = node_network.up_args(node_network.cluster_name(), node_network.free_node_cidr())
    args = ("--nodes=1", "--runtime=oci", *network)
    with KajitoriCluster(tmp_path / "data", extra_args=args) as running:
        yield running


def get_pod(cluster: KajitoriCluster) -> Object | None:
    result = cluster.kubectl("get", "pod", "hello", "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_a_pod_runs_in_a_runc_container_and_goes_away_cleanly(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """Running with a runc:// container ID and its log on disk; deletion leaves no mount or file."""
    cluster.wait_for_namespace_defaults("default")
    cluster.kubectl("apply", "-f", "-", stdin=POD)

    def running() -> bool:
        pod = get_pod(cluster)
        return bool(pod and pod.get("status", {}).get("phase") == "Running")

    wait_until(running, timeout=30, what="pod Running")
    pod = get_pod(cluster)
    assert pod is not None
    uid = pod["metadata"]["uid"]
    (status,) = pod["status"]["containerStatuses"]
    assert status["containerID"].startswith("runc://") and status["ready"] is True
    log = tmp_path / "oci" / "kajitori-worker" / "logs" / f"default_hello_{uid}" / "c" / "0.log"
    wait_until(lambda: log.exists() and "hello from hello" in log.read_text(), what="log line")
    cluster.kubectl("delete", "pod", "hello", "--wait=false")
    wait_until(lambda: get_pod(cluster) is None, timeout=20, what="pod deleted")
    wait_until(
        lambda: not (tmp_path / "oci" / "kajitori-worker" / "pods" / uid).exists(),
        timeout=10,
        what="pod removed",
    )
    assert mounts.mounts_under(tmp_path / "oci") == []
