"""The study note's StatefulSet ``kubia`` on ``kajitori up --nodes 2 --runtime simulated``, with kubectl.

The manifest is the note's (apps/v1beta1, no selector, 2 replicas, a
``data`` claim template) behind a headless Service. The simulated kubelets
run the pods, so readiness is real: ordered creation is observed with
``kubectl get pods -w``. Claims stay Pending (no provisioner here); pods are
scheduled regardless.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.study_note import KUBIA_HEADLESS_SERVICE, KUBIA_STATEFULSET

from kajitori.testing.cluster import KajitoriCluster, wait_for

Object = dict[str, Any]

# The note's StatefulSet behind the headless Service its serviceName names.
KUBIA = KUBIA_HEADLESS_SERVICE + "---\n" + KUBIA_STATEFULSET


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """Two simulated nodes."""
    data_dir: Path = tmp_path_factory.mktemp("statefulset")
    with KajitoriCluster(data_dir, extra_args=("--nodes=2", "--runtime=simulated")) as running:
        yield running


class PodWatch:
    """``kubectl get pods -w -o json --output-watch-events`` in the background, events parsed."""

    def __init__(self, cluster: KajitoriCluster, selector: str) -> None:
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        self.process = subprocess.Popen(
            ["kubectl", "get", "pods", "-l", selector, "-w", "-o", "json", "--output-watch-events"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.events: list[tuple[str, str, bool]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self.process.stdout:
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                continue
            buffer = buffer.lstrip()[end:]
            pod = event["object"]
            self.events.append((event["type"], pod["metadata"]["name"], _ready(pod)))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._thread.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def pods(cluster: KajitoriCluster) -> dict[str, Object]:
    return {p["metadata"]["name"]: p for p in cluster.get_json("pods", "-l", "app=kubia")["items"]}


def ready_pods(cluster: KajitoriCluster) -> list[str]:
    return sorted(
        name
        for name, pod in pods(cluster).items()
        if _ready(pod) and not pod["metadata"].get("deletionTimestamp")
    )


def claims(cluster: KajitoriCluster) -> dict[str, Object]:
    return {c["metadata"]["name"]: c for c in cluster.get_json("pvc")["items"]}


def test_kubia_pods_start_in_order_with_their_claims(cluster: KajitoriCluster) -> None:
    """Watched: kubia-1 is ADDED only after kubia-0 is Ready; data-kubia-0/1 exist."""
    watch = PodWatch(cluster, "app=kubia")
    try:
        time.sleep(0.5)  # let the watch start before anything exists
        cluster.kubectl("apply", "-f", "-", stdin=KUBIA)
        wait_for(lambda: ready_pods(cluster) == ["kubia-0", "kubia-1"], timeout=40)
    finally:
        watch.stop()
    added = [
        i for i, (kind, name, _) in enumerate(watch.events) if (kind, name) == ("ADDED", "kubia-1")
    ]
    ready0 = [i for i, (_, name, ready) in enumerate(watch.events) if name == "kubia-0" and ready]
    assert added and ready0 and ready0[0] < added[0], watch.events
    assert sorted(claims(cluster)) == ["data-kubia-0", "data-kubia-1"]
    for ordinal in (0, 1):
        pod = pods(cluster)[f"kubia-{ordinal}"]
        assert pod["spec"]["hostname"] == f"kubia-{ordinal}"
        assert pod["spec"]["subdomain"] == "kubia"
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"kubia-{ordinal}"
        assert labels["apps.kubernetes.io/pod-index"] == str(ordinal)
        [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == "data"]
        assert volume["persistentVolumeClaim"]["claimName"] == f"data-kubia-{ordinal}"
    sts = cluster.get_json("statefulset", "kubia")
    assert sts["status"]["readyReplicas"] == 2
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert labels["controller-revision-hash"] == sts["status"]["updateRevision"]
    described = cluster.kubectl("describe", "statefulset", "kubia").stdout
    assert "create Pod kubia-0 in StatefulSet kubia successful" in described
    assert "create Claim data-kubia-1 Pod kubia-1 in StatefulSet kubia success" in described


def test_scale_down_removes_kubia_1_and_keeps_its_claim_which_scale_up_reuses(
    cluster: KajitoriCluster,
) -> None:
    """replicas 1: kubia-1 goes, data-kubia-1 stays; replicas 2: kubia-1 mounts it again."""
    uid = claims(cluster)["data-kubia-1"]["metadata"]["uid"]
    cluster.kubectl("scale", "statefulset", "kubia", "--replicas=1")
    wait_for(lambda: sorted(pods(cluster)) == ["kubia-0"], timeout=40)
    assert claims(cluster)["data-kubia-1"]["metadata"]["uid"] == uid
    described = cluster.kubectl("describe", "statefulset", "kubia").stdout
    assert "delete Pod kubia-1 in StatefulSet kubia successful" in described
    cluster.kubectl("scale", "statefulset", "kubia", "--replicas=2")
    wait_for(lambda: ready_pods(cluster) == ["kubia-0", "kubia-1"], timeout=40)
    [volume] = [v for v in pods(cluster)["kubia-1"]["spec"]["volumes"] if v["name"] == "data"]
    assert volume["persistentVolumeClaim"]["claimName"] == "data-kubia-1"
    assert claims(cluster)["data-kubia-1"]["metadata"]["uid"] == uid


def test_a_deleted_kubia_0_comes_back_with_the_same_name_and_claim(
    cluster: KajitoriCluster,
) -> None:
    """kubectl delete pod kubia-0: a new pod (new uid) named kubia-0 mounting data-kubia-0."""
    old = pods(cluster)["kubia-0"]["metadata"]["uid"]
    cluster.kubectl("delete", "pod", "kubia-0", "--wait=false")

    def recreated() -> Object | None:
        pod = pods(cluster).get("kubia-0")
        fresh = pod is not None and pod["metadata"]["uid"] != old and _ready(pod)
        return pod if fresh else None

    pod = wait_for(recreated, timeout=40)
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == "data"]
    assert volume["persistentVolumeClaim"]["claimName"] == "data-kubia-0"
    assert sorted(claims(cluster)) == ["data-kubia-0", "data-kubia-1"]


def test_a_partitioned_rolling_update_replaces_only_kubia_1(cluster: KajitoriCluster) -> None:
    """RollingUpdate with partition 1 and a new image: kubia-1 updated, kubia-0 untouched."""
    patch = {
        "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}
    }
    cluster.kubectl("patch", "statefulset", "kubia", "-p", json.dumps(patch))
    before = cluster.get_json("statefulset", "kubia")["status"]["updateRevision"]
    cluster.kubectl("set", "image", "statefulset/kubia", "kubia=luksa/kubia-pet:v2")

    def rolled() -> Object | None:
        found = cluster.get_json("statefulset", "kubia")
        status = found.get("status") or {}
        done = status.get("updatedReplicas") == 1 and status.get("readyReplicas") == 2
        return found if done and status.get("updateRevision") != before else None

    sts = wait_for(rolled, timeout=40)
    status = sts["status"]
    current = pods(cluster)
    assert current["kubia-1"]["spec"]["containers"][0]["image"] == "luksa/kubia-pet:v2"
    assert current["kubia-0"]["spec"]["containers"][0]["image"] == "luksa/kubia-pet"
    assert (
        current["kubia-1"]["metadata"]["labels"]["controller-revision-hash"]
        == status["updateRevision"]
    )
    assert current["kubia-0"]["metadata"]["labels"]["controller-revision-hash"] == before
    assert status["currentRevision"] == before
    revisions = cluster.get_json("controllerrevisions", "-l", "app=kubia")["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
