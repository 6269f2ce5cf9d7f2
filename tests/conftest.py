"""Shared fixtures: a real kajitori cluster (``kajitori up`` in a child process), an
API server in the test's own event loop (for the in-process client transport), and
registry ``Store``s over a SQLite backend of the test's own (no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.registry import resource
from kajitori.registry.generic import cacher
from kajitori.registry.generic.store import Store
from kajitori.server import bootstrap
from kajitori.storage.sqlite import SqliteBackend
from kajitori.testing.cluster import KajitoriCluster

# sqlite_store's factory: (resource, watch_cache=...) -> a Store over sqlite_backend.
MakeStore = Callable[..., Store]


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
    ``admin`` (an API server alone runs no controller that would make the account; it does
    make upstream's initial namespaces, such as ``default``, itself)."""
    namespace: str = request.module.NS
    if namespace not in bootstrap.INITIAL_NAMESPACES:
        await admin.create(
            rest.NAMESPACES,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
    await admin.create(
        rest.SERVICEACCOUNTS,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        namespace=namespace,
    )
    return namespace


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    """A started SQLite backend in the test's temporary directory; closed afterwards."""
    backend = SqliteBackend(tmp_path / "kajitori.db")
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def sqlite_store(sqlite_backend: SqliteBackend) -> AsyncIterator[MakeStore]:
    """``sqlite_store(configmaps.RESOURCE, watch_cache=None)``: a registry ``Store`` over
    ``sqlite_backend`` (the watch cache as the server sizes it unless told); the watch
    caches of every store made are stopped before the backend closes."""
    made: list[Store] = []

    def make(
        info: resource.ResourceInfo,
        *,
        watch_cache: cacher.Options | None = cacher.DEFAULT_OPTIONS,
    ) -> Store:
        made.append(Store(info, sqlite_backend, watch_cache=watch_cache))
        return made[-1]

    try:
        yield make
    finally:
        for store in made:
            await store.stop_watch_cache()
