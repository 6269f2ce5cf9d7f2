"""Shared fixtures: a real kajitori cluster (``kajitori up`` in a child process), and an
API server in the test's own event loop (for the in-process client transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.testing.cluster import KajitoriCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """One cluster per test module, on a free port with its own data directory."""
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    with KajitoriCluster(data_dir) as running:
        yield running


@pytest.fixture
async def apiserver(tmp_path: Path) -> AsyncIterator[APIServerProcess]:
    """A started API server (SQLite, port 0) in this process; stopped afterwards."""
    process = APIServerProcess(APIServerConfig(data_dir=tmp_path, port=0))
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def admin(apiserver: APIServerProcess) -> AsyncIterator[rest.Client]:
    """An in-process client acting as the cluster admin (directories may override it)."""
    assert apiserver.http is not None and apiserver.pki is not None
    client = rest.Client.in_process(
        apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def module_namespace(admin: rest.Client, request: pytest.FixtureRequest) -> str:
    """The test module's namespace ``NS`` with its ``default`` ServiceAccount, made through
    ``admin`` (an API server alone runs no controller that would make the account)."""
    namespace: str = request.module.NS
    await admin.create(
        rest.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    await admin.create(
        rest.SERVICEACCOUNTS,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        namespace=namespace,
    )
    return namespace
