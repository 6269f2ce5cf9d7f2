"""``python -m bench.scale`` runs end to end on a tiny simulated cluster.

Only the report's shape and the fact that every pod of every phase got to
Running (and the StatefulSet to Ready) are checked, never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_scale_bench_runs_every_phase(tmp_path: Path) -> None:
    output = tmp_path / "scale.json"
    command = [sys.executable, "-m", "bench.scale", "--nodes", "20", "--pods", "200"]
    command += ["--deployments", "4", "--burst", "40", "--statefulset", "3", "--timeout", "120"]
    done = subprocess.run(
        [*command, "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["benchmark"] == "scale"
    assert report["plan"]["nodes"] == 20 and report["plan"]["pods"] == 200
    phases = report["phases"]
    assert set(phases) == {"startup", "rollout", "burst", "backlog", "statefulset", "end"}
    assert phases["startup"]["nodes_ready"] == 20
    assert phases["rollout"]["pods_running"] == 200
    assert phases["rollout"]["pods_bound"] == 200
    assert phases["rollout"]["pods_created"] == 200
    assert phases["burst"]["pods_running"] == 40
    assert phases["statefulset"]["replicas"] == 3
    for figure in ("rss_mib", "hwm_mib"):
        assert phases["rollout"][figure] > 0 and phases["end"][figure] > 0
    assert {"bind_rate", "max_unbound_backlog", "all_running_s"} <= set(phases["rollout"])
    assert {"create_rate", "bind_rate", "bind_vs_create"} <= set(phases["burst"])
    # The backlog (as many pods as the burst) waited for the second scheduler, which bound all.
    backlog = phases["backlog"]
    assert backlog["pods"] == backlog["pods_bound"] == backlog["pods_running"] == 40
    assert backlog["scheduler_cpu_s_total"] > 0 and backlog["scheduled_events"] > 0
    assert {"bind_rate", "scheduler_cpu_ms_per_pod", "cluster_cpu_ms_per_pod"} <= set(backlog)
    # From the server's /metrics: every pod was created and bound through the API once.
    per_pod = phases["rollout"]["api_requests_per_pod"]
    assert per_pod["POST pods"] >= 1.0 and per_pod["POST pods/binding"] >= 1.0
    assert "pods Running" in done.stdout
    # A controller handler that raises is only logged: the run must have logged no error.
    assert phases["end"]["server_log_errors"] == {"count": 0, "first": ""}


def test_scale_bench_split_runs_every_phase(tmp_path: Path) -> None:
    """``--split``: API server, controller manager, scheduler and kubelets as four processes."""
    output = tmp_path / "scale-split.json"
    command = [sys.executable, "-m", "bench.scale", "--split", "--nodes", "5", "--pods", "30"]
    command += ["--deployments", "2", "--burst", "10", "--statefulset", "2", "--timeout", "120"]
    done = subprocess.run(
        [*command, "--output", str(output)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["plan"]["split"] is True
    phases = report["phases"]
    assert phases["startup"]["nodes_ready"] == 5
    assert phases["rollout"]["pods_running"] == 30
    assert phases["burst"]["pods_running"] == 10
    assert phases["backlog"]["pods_running"] == 10
    processes = {"apiserver", "controller-manager", "scheduler", "kubelet"}
    for phase in ("rollout", "burst"):
        spent = phases[phase]["cpu_s_by_process"]
        assert set(spent) == processes
        # Counted over the phase and a little around it: at least the phase's summed CPU.
        assert sum(spent.values()) >= phases[phase]["server_cpu_s"] - 0.1
    assert set(phases["end"]["rss_mib_by_process"]) == processes
    assert phases["end"]["rss_mib"] >= max(phases["end"]["rss_mib_by_process"].values())
    assert phases["end"]["server_log_errors"] == {"count": 0, "first": ""}
