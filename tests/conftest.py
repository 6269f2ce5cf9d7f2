"""Shared fixtures: a real kajitori cluster (``kajitori up`` in a child process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kajitori.testing.cluster import KajitoriCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """One cluster per test module, on a free port with its own data directory."""
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    with KajitoriCluster(data_dir) as running:
        yield running
