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
    assert set(phases) == {"startup", "rollout", "burst", "statefulset", "end"}
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
    assert "pods Running" in done.stdout
