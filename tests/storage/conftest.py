"""The ``backend`` fixture: every storage backend, fresh for each test.

``sqlite`` is a new database file under the test's ``tmp_path``. ``etcd`` is
one real etcd per test session (started by ``kajitori.testing.etcd_server``)
with a fresh key prefix per test, so tests never see each other's keys; the
tests therefore never assume revisions start at 1. The etcd parameter is
skipped, with the reason, where no etcd binary or no etcd backend exists.
"""

from __future__ import annotations

import importlib
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kajitori.storage import interface, sqlite

# The suite lives outside a test_*.py file; have pytest rewrite its asserts too.
pytest.register_assert_rewrite(__name__.rpartition(".")[0] + ".conformance")


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One etcd for the whole session (starting one per test costs seconds)."""
    try:
        etcd_server: Any = importlib.import_module("kajitori.testing.etcd_server")
    except ImportError as exc:
        pytest.skip(f"kajitori.testing.etcd_server is not available: {exc}")
    if not etcd_server.etcd_available():
        pytest.skip("no etcd binary (install Debian's etcd-server)")
    data_dir: pathlib.Path = tmp_path_factory.mktemp("etcd")
    with etcd_server.EtcdServer(data_dir) as server:
        yield server.endpoint


async def _etcd_backend(endpoint: str) -> interface.Backend:
    try:
        etcd: Any = importlib.import_module("kajitori.storage.etcd")
    except ImportError as exc:
        pytest.skip(f"kajitori.storage.etcd is not available: {exc}")
    backend: interface.Backend = etcd.EtcdBackend(endpoint, prefix=f"/test-{uuid.uuid4().hex}")
    return backend


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> AsyncIterator[interface.Backend]:
    """A started, empty backend of each kind; closed after the test."""
    store: interface.Backend
    if request.param == "sqlite":
        store = sqlite.SqliteBackend(tmp_path / "kajitori.db")
    else:
        store = await _etcd_backend(request.getfixturevalue("etcd_endpoint"))
    await store.start()
    try:
        yield store
    finally:
        await store.close()
