"""Deployments end to end with the real kubectl: create, set image, rollout status/history/undo,
scale, pause/resume, restart and delete, against ``kajitori up``.

No kubelet runs here, so a background thread stands in for one: it marks every
pod Running and Ready through ``pods/status``, as a kubelet would report.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster

Object = dict[str, Any]


@pytest.fixture(scope="module")
def kubelet(cluster: KajitoriCluster) -> Iterator[None]:
    """Marks pods in ``default`` Ready until the module ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            listed = cluster.kubectl("get", "pods", "-o", "json", check=False)
            if listed.returncode == 0:
                for pod in json.loads(listed.stdout)["items"]:
                    if not _ready(pod) and not pod["metadata"].get("deletionTimestamp"):
                        _make_ready(cluster, pod["metadata"]["name"])
            stop.wait(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _make_ready(cluster: KajitoriCluster, name: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        }
    }
    cluster.kubectl(
        "patch", "pod", name, "--subresource=status", "--type=merge", "-p", json.dumps(status),
        check=False,
    )  # fmt: skip


def _json(cluster: KajitoriCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.2)


def _rses(cluster: KajitoriCluster) -> list[Object]:
    items = _json(cluster, "get", "rs", "-l", "app=web")["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))


def _live_pods(cluster: KajitoriCluster) -> list[Object]:
    items = _json(cluster, "get", "pods", "-l", "app=web")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _rollout_status(cluster: KajitoriCluster) -> str:
    done = cluster.kubectl("rollout", "status", "deploy/web", "--timeout=60s", timeout=90)
    return done.stdout


def _image(obj: Object) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


REVISION = "deployment.kubernetes.io/revision"


def test_create_deployment_makes_a_replica_set_and_three_pods(
    cluster: KajitoriCluster, kubelet: None
) -> None:
    """``kubectl create deployment --replicas=3`` → one RS, 3 pods; rollout status completes."""
    cluster.kubectl("create", "deployment", "web", "--image=nginx:1", "--replicas=3")
    assert 'deployment "web" successfully rolled out' in _rollout_status(cluster)
    (rs,) = _rses(cluster)
    assert rs["metadata"]["name"].startswith("web-")
    assert rs["status"]["readyReplicas"] == 3
    assert len(_live_pods(cluster)) == 3
    table = cluster.kubectl("get", "deploy", "web").stdout
    assert table.split("\n")[1].split()[:4] == ["web", "3/3", "3", "3"]


def test_set_image_rolls_out_a_new_replica_set_and_history_lists_both(
    cluster: KajitoriCluster, kubelet: None
) -> None:
    """``kubectl set image`` → revision 2 with all replicas, the old RS at 0, history 1 and 2."""
    cluster.kubectl("set", "image", "deploy/web", "nginx=nginx:2")
    assert "successfully rolled out" in _rollout_status(cluster)
    old, new = _rses(cluster)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 3)
    assert _image(new) == "nginx:2"
    history = cluster.kubectl("rollout", "history", "deploy/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    detail = cluster.kubectl("rollout", "history", "deploy/web", "--revision=2").stdout
    assert "nginx:2" in detail


def test_rollout_undo_returns_to_the_previous_template(
    cluster: KajitoriCluster, kubelet: None
) -> None:
    """``kubectl rollout undo`` → the first RS is scaled back up and becomes revision 3."""
    first = _rses(cluster)[0]["metadata"]["name"]
    result = cluster.kubectl("rollout", "undo", "deploy/web")
    assert "rolled back" in result.stdout
    assert "successfully rolled out" in _rollout_status(cluster)
    deployment = _json(cluster, "get", "deploy", "web")
    assert _image(deployment) == "nginx:1"
    assert deployment["metadata"]["annotations"][REVISION] == "3"
    rses = _rses(cluster)
    assert rses[-1]["metadata"]["name"] == first
    assert rses[-1]["spec"]["replicas"] == 3
    assert rses[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"


def test_scale_changes_the_number_of_pods(cluster: KajitoriCluster, kubelet: None) -> None:
    """``kubectl scale --replicas=5`` → 5 pods and a complete rollout."""
    cluster.kubectl("scale", "deploy/web", "--replicas=5")
    _eventually(lambda: len(_live_pods(cluster)) == 5)
    assert "successfully rolled out" in _rollout_status(cluster)
    assert _json(cluster, "get", "deploy", "web")["status"]["availableReplicas"] == 5


def test_pause_holds_template_changes_until_resume(cluster: KajitoriCluster, kubelet: None) -> None:
    """While paused a new image creates no RS; ``rollout resume`` rolls it out."""
    cluster.kubectl("rollout", "pause", "deploy/web")
    cluster.kubectl("set", "image", "deploy/web", "nginx=nginx:3")

    def observed() -> bool:
        d = _json(cluster, "get", "deploy", "web")
        return bool(d["status"]["observedGeneration"] == d["metadata"]["generation"])

    _eventually(observed)
    assert len(_rses(cluster)) == 2
    undo = cluster.kubectl("rollout", "undo", "deploy/web", check=False)
    assert undo.returncode != 0
    assert "paused" in undo.stderr
    cluster.kubectl("rollout", "resume", "deploy/web")
    assert "successfully rolled out" in _rollout_status(cluster)
    assert _image(_rses(cluster)[-1]) == "nginx:3"


def test_rollout_restart_creates_a_new_replica_set_with_the_restart_annotation(
    cluster: KajitoriCluster, kubelet: None
) -> None:
    """``kubectl rollout restart`` stamps restartedAt on the template → a new revision."""
    before = {rs["metadata"]["name"] for rs in _rses(cluster)}
    cluster.kubectl("rollout", "restart", "deploy/web")
    assert "successfully rolled out" in _rollout_status(cluster)
    newest = _rses(cluster)[-1]
    assert newest["metadata"]["name"] not in before
    annotations = newest["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_deleting_the_deployment_removes_its_replica_sets_and_pods(
    cluster: KajitoriCluster, kubelet: None
) -> None:
    """``kubectl delete deployment`` → the garbage collector removes the RSes and pods."""
    cluster.kubectl("delete", "deployment", "web")
    _eventually(lambda: not _rses(cluster) and not _live_pods(cluster))
