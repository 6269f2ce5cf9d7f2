"""Jobs and CronJobs end to end: ``kajitori up --nodes 2 --runtime simulated`` and the real kubectl.

Pods "run" in the simulated runtime: ``kajitori.io/simulate-runtime-seconds``
and ``kajitori.io/simulate-exit-code`` on the pod template decide how long
each container runs and how it exits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_until

Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """A cluster with two simulated nodes."""
    data_dir: Path = tmp_path_factory.mktemp("jobs")
    with KajitoriCluster(data_dir, extra_args=("--nodes=2", "--runtime=simulated")) as running:
        cluster_ready(running)
        yield running


def cluster_ready(cluster: KajitoriCluster) -> None:
    cluster.wait_for_namespace_defaults("default")

    def nodes_ready() -> bool:
        listed = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        ready = [
            n
            for n in listed
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (n.get("status") or {}).get("conditions") or ()
            )
        ]
        return len(ready) == 2

    wait_until(nodes_ready, timeout=30, what="two Ready nodes")


def job_manifest(
    name: str, *, exit_code: int, completions: int, parallelism: int, **spec: Any
) -> str:
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completions": completions,
            "parallelism": parallelism,
            **spec,
            "template": template(exit_code),
        },
    }
    return json.dumps(body)


def template(exit_code: int) -> Object:
    return {
        "metadata": {
            "annotations": {
                "kajitori.io/simulate-runtime-seconds": "1",
                "kajitori.io/simulate-exit-code": str(exit_code),
            }
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36"}],
        },
    }


def test_a_job_runs_to_completion(cluster: KajitoriCluster) -> None:
    """4 completions, 2 at a time, on two nodes: ``kubectl wait --for=condition=complete``."""
    manifest = job_manifest("pi", exit_code=0, completions=4, parallelism=2)
    cluster.kubectl("apply", "-f", "-", stdin=manifest)
    cluster.kubectl("wait", "--for=condition=complete", "job/pi", "--timeout=60s", timeout=70)
    job = cluster.get_json("job", "pi")
    status = job["status"]
    assert status["succeeded"] == 4
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    pods = cluster.get_json("pods", "-l", "job-name=pi")["items"]
    assert len(pods) == 4
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert all(
        "batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or [])
        for p in pods
    )
    row = cluster.kubectl("get", "job", "pi", "--no-headers").stdout.split()
    assert row[:3] == ["pi", "Complete", "4/4"]


def test_a_failing_job_stops_at_its_backoff_limit(cluster: KajitoriCluster) -> None:
    """Exit code 1 with backoffLimit 0: Failed, reason BackoffLimitExceeded, one failed pod."""
    manifest = job_manifest("doomed", exit_code=1, completions=1, parallelism=1, backoffLimit=0)
    cluster.kubectl("apply", "-f", "-", stdin=manifest)
    cluster.kubectl("wait", "--for=condition=failed", "job/doomed", "--timeout=60s", timeout=70)
    status = cluster.get_json("job", "doomed")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert status["failed"] == 1
    events = cluster.get_json("events", "--field-selector", "involvedObject.name=doomed")["items"]
    assert "BackoffLimitExceeded" in {e["reason"] for e in events}


def test_kubectl_create_job_from_a_cronjob(cluster: KajitoriCluster) -> None:
    """``kubectl create job --from=cronjob/x``: a Job from the template, owned by the CronJob."""
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": template(0)}},
        },
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(cronjob))
    cluster.kubectl("create", "job", "manual-run", "--from=cronjob/nightly")
    cluster.kubectl(
        "wait", "--for=condition=complete", "job/manual-run", "--timeout=60s", timeout=70
    )
    job = cluster.get_json("job", "manual-run")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("CronJob", "nightly")
    assert job["status"]["succeeded"] == 1


def test_a_job_past_its_deadline_is_failed_and_its_pods_stopped(cluster: KajitoriCluster) -> None:
    """activeDeadlineSeconds 2 on 300 s pods: DeadlineExceeded; the kubelet stops them, none remain."""
    body = json.loads(job_manifest("overdue", exit_code=0, completions=2, parallelism=2))
    body["spec"]["activeDeadlineSeconds"] = 2
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    annotations["kajitori.io/simulate-runtime-seconds"] = "300"
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    cluster.kubectl("wait", "--for=condition=failed", "job/overdue", "--timeout=60s", timeout=70)
    status = cluster.get_json("job", "overdue")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert status["failed"] == 2
    assert status.get("terminating", 0) == 0
    wait_until(
        lambda: cluster.get_json("pods", "-l", "job-name=overdue")["items"] == [],
        timeout=30,
        what="the overdue job's pods to be gone",
    )
