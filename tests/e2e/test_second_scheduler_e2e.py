"""A second scheduler beside the default one: each takes only the pods that name it.

``kajitori up`` runs the default scheduler; a pod whose ``schedulerName`` is
``second-scheduler`` stays Pending and untouched (no condition, no event)
while a default-scheduler pod created after it is bound. ``kajitori
scheduler --config`` with a ``KubeSchedulerConfiguration`` naming that
profile then binds it and reports as that scheduler, as upstream's second
schedulers do (bench.scale's backlog phase relies on exactly this).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from kajitori.testing.cluster import KajitoriCluster, wait_until

Object = dict[str, Any]
NS = "second-scheduler"
NAME = "second-scheduler"


def _pod(name: str, scheduler_name: str | None = None) -> Object:
    spec: Object = {"containers": [{"name": "c", "image": "busybox"}]}
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": spec}  # fmt: skip


def _node(name: str) -> Object:
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def _get(cluster: KajitoriCluster, *args: str) -> Object:
    found: Object = json.loads(cluster.kubectl("get", *args, "-n", NS, "-o", "json").stdout)
    return found


def _events(cluster: KajitoriCluster, pod: str) -> list[Object]:
    selector = f"involvedObject.name={pod}"
    return list(_get(cluster, "events", "--field-selector", selector)["items"])


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "second-scheduler.yaml"
    path.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        f"profiles:\n- schedulerName: {NAME}\nleaderElection:\n  leaderElect: false\n"
    )
    return path


def test_a_pod_naming_a_second_scheduler_waits_for_it(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    cluster.kubectl("create", "namespace", NS)
    cluster.wait_for_namespace_defaults(NS)
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(_node("second-scheduler-node")))
    for pod in (_pod("theirs", NAME), _pod("ours")):
        cluster.kubectl("create", "-f", "-", stdin=json.dumps(pod))
    wait_until(lambda: bool(_get(cluster, "pod", "ours")["spec"].get("nodeName")), what="bound")
    # The default scheduler has had its turn at both pods: it left the other one alone.
    theirs = _get(cluster, "pod", "theirs")
    assert not theirs["spec"].get("nodeName")
    assert not (theirs.get("status") or {}).get("conditions")
    assert _events(cluster, "theirs") == []

    command = [sys.executable, "-m", "kajitori", "scheduler", "--kubeconfig",
               str(cluster.kubeconfig), "--config", str(_config(tmp_path))]  # fmt: skip
    with (tmp_path / "scheduler.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: bool(_get(cluster, "pod", "theirs")["spec"].get("nodeName")),
            timeout=30,
            what="bound by the second scheduler",
        )
        wait_until(lambda: bool(_events(cluster, "theirs")), what="Scheduled event")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
    event = _events(cluster, "theirs")[0]
    # An events.k8s.io Event: the core view names its reporter in reportingComponent.
    assert (event["reason"], event["reportingComponent"]) == ("Scheduled", NAME)
    assert code == 0, (tmp_path / "scheduler.log").read_text()[-2000:]


def test_a_bad_configuration_is_refused_before_starting(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                    "profiles:\n- schedulerName: a\n  plugins: {}\n")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "kajitori", "scheduler", "--kubeconfig", str(cluster.kubeconfig),
         "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "profiles[0].plugins: only upstream's default plugins are run" in done.stderr
