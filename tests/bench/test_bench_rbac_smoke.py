"""``python -m bench.rbac`` runs end to end: a reader authorized by RBAC among many roles.

Only the report's shape and the fact that every measured request succeeded
(as the reader, through RBAC) are checked, never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_rbac_bench_reports_every_cell(tmp_path: Path) -> None:
    output = tmp_path / "rbac.json"
    command = [
        sys.executable,
        "-m",
        "bench.rbac",
        "--seconds",
        "0.2",
        "--roles",
        "30",
        "--rounds",
        "1",
    ]
    done = subprocess.run(
        [*command, "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["plan"]["roles"] == 30
    cells = {(r["operation"], r["user"], r["concurrency"]) for r in report["rows"]}
    assert cells == {
        (op, user, c) for op in ("get", "list") for user in ("admin", "reader") for c in (1, 16)
    }
    assert all(set(r["statuses"]) == {"200"} for r in report["rows"])
    assert set(report["ratios"]) == {
        f"reader_vs_admin_{op}_c{c}" for op in ("get", "list") for c in (1, 16)
    }
    assert "reader_vs_admin_get_c16" in done.stdout
