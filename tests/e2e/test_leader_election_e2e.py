"""Standalone controller managers and schedulers elect one leader; the other takes over.

``kajitori apiserver`` runs alone; two ``kajitori controller-manager`` and two
``kajitori scheduler`` processes join it with the admin kubeconfig and short
lease timings. The first of each pair to start holds the Lease; killing it
with SIGKILL (no release) hands the Lease to the other within the lease
duration, and the survivor's controllers and scheduler then do the work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_until

LEASE_FLAGS = (
    "--leader-elect-lease-duration=2s",
    "--leader-elect-renew-deadline=1500ms",
    "--leader-elect-retry-period=0.2",
)


@pytest.fixture(scope="module")
def apiserver_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    with KajitoriCluster(tmp_path_factory.mktemp("le"), command="apiserver") as running:
        yield running


def _component(cluster: KajitoriCluster, *args: str) -> subprocess.Popen[str]:
    log_path = cluster.data_dir / f"{args[0]}-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kajitori",
                *args,
                "--kubeconfig",
                str(cluster.kubeconfig),
                *LEASE_FLAGS,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _lease(cluster: KajitoriCluster, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "lease", name, "-n", "kube-system", "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _holder(cluster: KajitoriCluster, name: str) -> str:
    lease = _lease(cluster, name)
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def _stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _takeover(cluster: KajitoriCluster, lease_name: str, *args: str) -> Iterator[tuple[str, str]]:
    """Start two candidates, SIGKILL the leader; yield (old, new holder) while the other runs."""
    first = _component(cluster, *args)
    second: subprocess.Popen[str] | None = None
    try:
        wait_until(lambda: bool(_holder(cluster, lease_name)), timeout=20, what="a leader")
        leader = _holder(cluster, lease_name)
        second = _component(cluster, *args)
        time.sleep(3.0)  # longer than the lease: the leader keeps renewing it
        assert _holder(cluster, lease_name) == leader
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        killed_at = time.monotonic()
        wait_until(
            lambda: _holder(cluster, lease_name) not in ("", leader),
            timeout=10,
            what="the standby to take the lease over",
        )
        # A 2 s lease and a 0.2 s retry period, with slack for a loaded machine.
        assert time.monotonic() - killed_at < 8.0
        lease = _lease(cluster, lease_name) or {}
        assert lease["spec"]["leaseTransitions"] >= 1
        yield leader, _holder(cluster, lease_name)
    finally:
        _stop(first, *(p for p in (second,) if p is not None))


def test_controller_manager_standby_takes_over_and_runs_the_controllers(
    apiserver_only: KajitoriCluster,
) -> None:
    cluster = apiserver_only
    args = ("controller-manager", "--controllers=replicaset,serviceaccount")
    with _takeover(cluster, "kube-controller-manager", *args) as (leader, new_leader):
        assert leader != new_leader
        cluster.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps(
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "rs-web"}},
                        "template": {
                            "metadata": {"labels": {"app": "rs-web"}},
                            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                        },
                    },
                }
            ),
        )
        wait_until(
            lambda: (
                len(cluster.kubectl("get", "pods", "-l", "app=rs-web", "-o", "name").stdout.split())
                == 2
            ),
            timeout=30,
            what="the new leader's replicaset controller to create pods",
        )


def test_scheduler_standby_takes_over(apiserver_only: KajitoriCluster) -> None:
    with _takeover(apiserver_only, "kube-scheduler", "scheduler") as (old, new):
        assert old != new
        # Upstream's identity: <hostname>_<uuid>.
        assert old.split("_")[0] == new.split("_")[0] == os.uname().nodename


def test_unknown_controller_is_refused(apiserver_only: KajitoriCluster) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kajitori",
            "controller-manager",
            "--kubeconfig",
            str(apiserver_only.kubeconfig),
            "--controllers=*,-nope",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert '"nope" is not in the list of known controllers' in result.stderr


def test_leader_released_on_clean_stop(apiserver_only: KajitoriCluster, tmp_path: Path) -> None:
    process = _component(apiserver_only, "scheduler")
    wait_until(
        lambda: (
            (_lease(apiserver_only, "kube-scheduler") or {}).get("spec", {}).get("holderIdentity")
            or ""
        ).startswith(os.uname().nodename),
        timeout=20,
        what="this scheduler to lead",
    )
    _stop(process)
    assert process.returncode == 0
    assert _holder(apiserver_only, "kube-scheduler") == ""
