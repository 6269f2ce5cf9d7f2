"""``python -m bench.store_inprocess`` runs end to end on each backend and prints both rows.

Only the output's shape is checked, never a timing; the cells are tiny.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kajitori.testing.etcd_server import etcd_available

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^  (create|get) +[\d.]+ µs of CPU \(min [\d.]+; main thread [\d.]+, other threads [\d.]+\)$"
)


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_store_inprocess_prints_create_and_get_rows(backend: str) -> None:
    if backend == "etcd" and not etcd_available():
        pytest.skip("no etcd binary")
    result = subprocess.run(
        [sys.executable, "-m", "bench.store_inprocess", "--backend", backend,
         "--rounds", "2", "--writes", "40", "--concurrency", "8"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{backend}, c=8, watch cache on, 2 rounds:"
    rows = [match.group(1) for line in lines[1:] if (match := ROW.match(line))]
    assert rows == ["create", "get"]
