"""``python -m bench.pods`` runs end to end on a real node with a handful of pods.

Checks the report's shape, that every pod got Ready, that exec and the
followed log delivered what the containers produced, and that nothing was
left behind (runc containers, shims, pod directories, the node network) —
never a timing. ``--floor-only`` runs the bare wave floor alone (two pods,
one wave, both ways), whose own count of what is left must be empty too.
Needs root, runc, busybox-static and the CNI plugins.
"""

from __future__ import annotations

import json
import os
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
    command += ["--floor-waves", "1"]
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
    assert report["floor_wave"]["per_core"]["ready_ms"]["n"] == 2
    assert "pod start p50" in done.stdout


def test_the_bare_wave_floor_starts_its_pods_and_leaves_nothing(tmp_path: Path) -> None:
    """``--floor-only``: a wave of two bare pods both ways, counted, and nothing left on the host."""
    output = tmp_path / "floor.json"
    command = [sys.executable, "-m", "bench.pods", "--floor-only", "--parallel", "2"]
    done = subprocess.run(
        [*command, "--floor-waves", "1", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    floor = report["floor_wave"]
    assert report["floor_only"] is True and "start" not in report
    assert floor["plugins"][0] == "bridge"  # the kubelet's chain (no loopback: pinning does it)
    for name, at_once in (("all_at_once", 2), ("per_core", min(os.cpu_count() or 1, 2))):
        found = floor[name]
        assert (found["waves"], found["parallel"], found["at_once"]) == (1, 2, at_once)
        assert found["ready_ms"]["n"] == 2
        assert set(found["steps_p50_ms"]) == {
            "sandbox", "cni_add", "rootfs", "runc_create", "runc_start"
        }  # fmt: skip
        assert found["children_cpu_ms_per_start"] > 0
    assert floor["leftovers"] == [] and report["leftovers"] == []
    # Its node namespaces (with the bridge inside) and cgroups are gone from the host.
    assert floor["netns"] and not [n for n in floor["netns"] if Path(f"/run/netns/{n}").exists()]
    assert floor["cgroups"] and not [
        c for c in floor["cgroups"] for _ in Path("/sys/fs/cgroup").glob(f"*/{c.strip('/')}")
    ]
    assert "bare wave floor, 1 x 2" in done.stdout
