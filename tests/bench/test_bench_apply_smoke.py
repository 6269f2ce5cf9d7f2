"""``python -m bench.apply`` runs end to end and writes a complete JSON report and table.

Only the report's shape is checked, never a timing: the figures depend on
the machine and on whoever else is using it. Cells are made tiny so the run
stays a few seconds of load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CONCURRENCY = [1, 16]
OPERATIONS = ["apply", "update", "cr_apply", "cr_update", "create_validated", "create_freeform"]
ROW = [
    "concurrency",
    "requests",
    "rps",
    "p50_ms",
    "p99_ms",
    "statuses",
    "server_cpu_us_per_request",
]
RATIOS = ["apply_vs_update", "cr_apply_vs_update", "validated_vs_freeform_create"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One tiny run shared by every test here: (report, printed output)."""
    output = tmp_path_factory.mktemp("bench") / "apply.json"
    command = [
        *(sys.executable, "-m", "bench.apply", "--seconds", "0.2", "--objects", "2"),
        *("--output", str(output)),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"wrote {output}" in done.stdout
    loaded: dict[str, Any] = json.loads(output.read_text())
    return loaded, done.stdout


def test_report_describes_the_run(run: tuple[dict[str, Any], str]) -> None:
    """The top level names the benchmark, machine and the plan with the CR's sizes."""
    report, _ = run
    assert report["benchmark"] == "apply"
    assert report["machine"]["cores"] >= 1
    plan = report["plan"]
    assert (plan["containers"], plan["cr_entries"]) == (50, 50)
    assert (plan["validated_fields"], plan["validated_rules"]) == (200, 10)
    assert plan["concurrency"] == CONCURRENCY


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_has_a_successful_row_per_concurrency(
    run: tuple[dict[str, Any], str], operation: str
) -> None:
    """Each cell ran at 1 and 16 with every figure, and every request succeeded."""
    rows = run[0]["operations"][operation]
    assert [row["concurrency"] for row in rows] == CONCURRENCY
    for row in rows:
        assert set(ROW) <= set(row)
        assert row["requests"] > 0
        assert set(row["statuses"]) <= {"200", "201"}


def test_ratios_compare_each_operation_with_its_floor(run: tuple[dict[str, Any], str]) -> None:
    """One positive ratio per comparison and concurrency, all printed under the table."""
    report, printed = run
    expected = {f"{name}_c{c}" for name in RATIOS for c in CONCURRENCY}
    assert set(report["ratios"]) == expected
    assert all(value > 0 for value in report["ratios"].values())
    for name in expected:
        assert f"{name}: " in printed
    for operation in OPERATIONS:
        assert f"\n{operation} " in printed
