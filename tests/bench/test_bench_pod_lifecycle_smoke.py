"""``python -m bench.pod_lifecycle`` runs end to end with a handful of pods.

Only the report's shape is checked (every request kind has a figure for every
round and the median), never a timing. The benchmark itself fails if the
kubelet's writes did not leave every pod Running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KINDS = {
    "create_pod",
    "create_binding",
    "create_event",
    "update_status_creating",
    "update_status_running",
    "pod_lifecycle",
}

pytestmark = pytest.mark.slow


def test_pod_lifecycle_bench_reports_every_request_kind(tmp_path: Path) -> None:
    output = tmp_path / "lifecycle.json"
    command = [sys.executable, "-m", "bench.pod_lifecycle", "--pods", "6", "--rounds", "2"]
    done = subprocess.run(
        [*command, "--nodes", "2", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["benchmark"] == "pod_lifecycle"
    assert report["plan"]["pods"] == 6 and report["plan"]["rounds"] == 2
    assert set(report["median_cpu_us"]) == KINDS
    assert len(report["rounds"]) == 2
    for figures in report["rounds"]:
        assert KINDS | {"other_cpu_cores"} <= set(figures)
    assert {"cores", "python", "source"} <= set(report["machine"])
    assert "pod_lifecycle" in done.stdout
