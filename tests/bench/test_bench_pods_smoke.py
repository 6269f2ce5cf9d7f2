"""``python -m bench.pods`` runs end to end on a real node with a handful of pods.

Checks the report's shape, that every pod got Ready, that exec and the
followed log delivered what the containers produced, and that nothing was
left behind (runc containers, shims, pod directories, the node network) —
never a timing. Needs root, runc, busybox-static and the CNI plugins.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kajitori.kubelet.runtimes.oci import busybox, runtime

REPO = Path(__file__).resolve().parents[2]
REASON = runtime.check_host()
if REASON is None and not busybox.BUSYBOX.exists():
    REASON = "busybox-static is not installed (/bin/busybox)"
if REASON is None and not Path("/usr/lib/cni/bridge").exists():
    REASON = "the CNI plugins are not installed (containernetworking-plugins)"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def test_pods_bench_starts_execs_streams_and_cleans_up(tmp_path: Path) -> None:
    output = tmp_path / "pods.json"
    command = [sys.executable, "-m", "bench.pods", "--pods", "3", "--parallel", "2"]
    command += ["--sequential", "1", "--execs", "2", "--log-mib", "1", "--floor-runs", "2"]
    done = subprocess.run(
        [*command, "--output", str(output)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["benchmark"] == "pods"
    assert report["start"]["create_to_ready_ms"]["n"] == 3
    assert report["start_sequential_ms"]["n"] == 1
    assert report["exec_ms"]["n"] == 2 and report["floor_runc_exec_ms"]["n"] == 2
    assert report["logs"]["bytes"] == report["logs"]["expected_bytes"] > 0
    assert report["cni"]["add_ms"]["n"] == report["cni"]["del_ms"]["n"] > 0
    assert report["memory"]["pods_running"] == 3 and report["memory"]["shims"] == 3
    assert report["delete"]["pods"] == 4  # the three and the logger
    assert report["leftovers"] == []
    assert "pod start p50" in done.stdout
