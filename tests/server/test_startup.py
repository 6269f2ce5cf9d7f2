"""Start-up: the initial objects, and ``kajitori up``'s components joining a serving API server.

The bootstrap writes its objects concurrently, a wave of namespaces before
what lives in them; these tests check that every object still arrives, under
the server's real admission chain, and that a restart writes none again.
The server listens before those post-start hooks have run, so its health
endpoints must fail (as upstream's) until they have.
``kajitori up`` prints its ready line before the controller manager and the
scheduler have loaded; the server must answer at once, the controllers must
still start, and a stop that arrives while they load must end cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import ssl
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest

from kajitori.auth import bootstrap_policy
from kajitori.cli import main
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.registry.generic.store import ListOptions
from kajitori.server import bootstrap, local_path_storage
from kajitori.server.apis import APIRegistry
from kajitori.testing.cluster import KajitoriCluster

RBAC = "rbac.authorization.k8s.io"


def _expected() -> set[tuple[str, str, str, str]]:
    """(group, plural, namespace, name) of every object a fresh start must create."""
    expected = {("", "namespaces", "", name) for name in bootstrap.INITIAL_NAMESPACES}
    expected.add(("", "services", "default", "kubernetes"))
    for group, plural, namespace, obj in local_path_storage.objects():
        expected.add((group, plural, namespace, obj["metadata"]["name"]))
    for role in [*bootstrap_policy.cluster_roles(), *bootstrap_policy.controller_roles()]:
        expected.add((RBAC, "clusterroles", "", role["metadata"]["name"]))
    for binding in bootstrap_policy.cluster_role_bindings():
        expected.add((RBAC, "clusterrolebindings", "", binding["metadata"]["name"]))
    return expected


async def _stored(registry: APIRegistry) -> dict[tuple[str, str, str, str], str]:
    """The resourceVersion of every stored object of the kinds the bootstrap writes."""
    kinds = {(group, plural) for group, plural, _, _ in _expected()}
    versions = {}
    for group, plural in kinds:
        store = registry.lookup(group, "v1", plural)
        assert store is not None
        for obj in (await store.list("", ListOptions())).items:
            meta = obj["metadata"]
            key = (group, plural, meta.get("namespace", ""), meta["name"])
            versions[key] = meta["resourceVersion"]
    return versions


async def _start_and_read(config: APIServerConfig) -> dict[tuple[str, str, str, str], str]:
    process = APIServerProcess(config)
    await process.start()
    try:
        assert process.registry is not None
        return await _stored(process.registry)
    finally:
        await process.stop()


async def test_a_fresh_start_creates_every_initial_object_and_a_restart_rewrites_none(
    tmp_path: Path,
) -> None:
    """All namespaces, the kubernetes Service, local-path objects and the RBAC policy, once."""
    config = APIServerConfig(data_dir=tmp_path, port=0)
    first = await _start_and_read(config)
    missing = _expected() - first.keys()
    assert not missing
    second = await _start_and_read(config)
    assert {key: second[key] for key in first} == first


def _get(process: APIServerProcess, path: str) -> tuple[int, str]:
    """GET ``path`` as the admin, over HTTPS (blocking: call it from a thread)."""
    assert process.pki is not None and process.http is not None
    context = ssl.create_default_context(cafile=str(process.pki.ca_cert_path))
    context.load_cert_chain(str(process.pki.admin_cert_path), str(process.pki.admin_key_path))
    conn = http.client.HTTPSConnection("127.0.0.1", process.http.port, context=context, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def test_health_fails_until_the_post_start_hooks_have_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serving while the initial objects are written: 500s naming the unfinished hooks, then ok."""
    reached, release = asyncio.Event(), asyncio.Event()
    real = bootstrap.ensure_initial_objects

    async def held(*args: Any, **kwargs: Any) -> None:
        reached.set()
        await release.wait()
        await real(*args, **kwargs)

    monkeypatch.setattr(bootstrap, "ensure_initial_objects", held)
    process = APIServerProcess(APIServerConfig(data_dir=tmp_path, port=0))
    starting = asyncio.create_task(process.start())
    try:
        await asyncio.wait_for(reached.wait(), timeout=60)
        status, body = await asyncio.to_thread(_get, process, "/readyz")
        assert status == 500
        assert "[+]ping ok\n" in body
        assert "[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n" in body
        assert body.endswith("readyz check failed\n")
        assert (await asyncio.to_thread(_get, process, "/livez"))[0] == 500
        one = await asyncio.to_thread(_get, process, "/readyz/poststarthook/crd-informer-synced")
        assert one == (500, "internal server error: not finished\n")
        release.set()
        await starting
        assert await asyncio.to_thread(_get, process, "/readyz") == (200, "ok")
        assert await asyncio.to_thread(_get, process, "/healthz") == (200, "ok")
    finally:
        release.set()
        if not starting.done():
            starting.cancel()
        await process.stop()


async def test_a_component_that_fails_to_start_stops_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The background start's error stops ``up`` and comes back when it is awaited."""

    def broken(process: APIServerProcess, args: argparse.Namespace) -> Any:
        raise RuntimeError("controllers cannot start")

    monkeypatch.setattr(main, "_start_controllers", broken)
    stop = asyncio.Event()
    task = main._start_components(cast(APIServerProcess, None), argparse.Namespace(), stop)
    await asyncio.wait_for(stop.wait(), timeout=60)
    with pytest.raises(RuntimeError, match="controllers cannot start"):
        await task


def _healthz(cluster: KajitoriCluster) -> tuple[int, bytes]:
    pki = cluster.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    url = urlsplit(cluster.url)
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=30)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_up_answers_at_its_ready_line_and_its_controllers_start_after(tmp_path: Path) -> None:
    """Ready means ready: /readyz answers ok at once; the controllers then fill ``default``."""
    with KajitoriCluster(tmp_path) as cluster:
        assert _healthz(cluster) == (200, b"ok")
        cluster.wait_for_namespace_defaults("default")
        assert cluster.stop() == 0


def test_up_stops_cleanly_while_its_components_are_still_starting(tmp_path: Path) -> None:
    """SIGTERM right after the ready line: exit 0, nothing left half-started in the log."""
    cluster = KajitoriCluster(tmp_path).start()
    assert cluster.stop() == 0
    log = cluster.log_path.read_text()
    assert "Traceback" not in log


@pytest.mark.parametrize(("command", "loop_module"), [("apiserver", "uvloop"), ("up", "asyncio")])
def test_each_command_serves_on_its_event_loop(
    command: str, loop_module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``kajitori apiserver`` runs on uvloop (decision 0076); ``kajitori up`` on asyncio's loop."""
    seen: list[str] = []

    async def serve(args: argparse.Namespace) -> int:
        seen.append(type(asyncio.get_running_loop()).__module__.partition(".")[0])
        return 0

    monkeypatch.setattr(main, "_serve", serve)
    assert main.main([command, f"--data-dir={tmp_path}"]) == 0
    assert seen == [loop_module]
