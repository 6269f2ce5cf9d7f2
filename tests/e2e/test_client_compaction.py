"""Compaction and watch timing end to end, against an API server in this process.

Expired continue tokens, 410 for a compacted watch resourceVersion and
bookmarks all need control the command line does not give (compaction runs
every 5 minutes; bookmarks come every 60 s). So this module runs the same
``APIServerProcess`` that ``kajitori up`` builds, on an event loop in a
background thread, and forces compaction through its storage backend as the
compactor would. Clients still talk HTTPS to it: the official Python client
and httpx.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from kubernetes import client, config, watch
from tests.e2e.https import https_client

from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.server.handlers import watch as watch_handler

T = TypeVar("T")
NS = "compaction"


class InProcessServer:
    """An APIServerProcess on its own event loop thread."""

    def __init__(self, data_dir: Path) -> None:
        self.process = APIServerProcess(APIServerConfig(data_dir=data_dir, port=0))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> None:
        self.thread.start()
        self.run(self.process.start())

    def stop(self) -> None:
        self.run(self.process.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def compact_to_now(self) -> int:
        """Forget all history before the current revision (what a compactor tick does later)."""
        backend = self.process.backend
        assert backend is not None
        revision = self.run(backend.current_revision())
        self.run(backend.compact(revision))
        return revision


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    running = InProcessServer(tmp_path_factory.mktemp("inproc"))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def core(server: InProcessServer) -> Iterator[client.CoreV1Api]:
    api_client = config.new_client_from_config(
        config_file=str(server.process.config.kubeconfig_path)
    )
    api = client.CoreV1Api(api_client)
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    yield api
    api_client.close()


@pytest.fixture(scope="module")
def http(server: InProcessServer) -> Iterator[httpx.Client]:
    with https_client(server.process.config.kubeconfig_path) as c:
        yield c


def configmap(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"batch": "c"}))


_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the "
    "provided token results in an inconsistent list - objects that were created, modified, "
    "or deleted between the time the first chunk was returned and now may show up in the list."
)


def test_continue_token_from_before_compaction_is_410_expired(
    server: InProcessServer, core: client.CoreV1Api
) -> None:
    """A continue token whose snapshot was compacted away is 410 Expired with upstream's text."""
    for i in range(5):
        core.create_namespaced_config_map(NS, configmap(f"page-{i}"))
    first = core.list_namespaced_config_map(NS, limit=2)
    core.create_namespaced_config_map(NS, configmap("after-first-page"))
    server.compact_to_now()

    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map(NS, limit=2, _continue=first.metadata.var_continue)
    status = json.loads(info.value.body)
    assert info.value.status == 410
    assert status["reason"] == "Expired"
    assert status["message"] == _CONTINUE_EXPIRED


def test_list_at_compacted_exact_resource_version_is_410(
    server: InProcessServer, core: client.CoreV1Api
) -> None:
    """resourceVersionMatch=Exact at a compacted revision is 410 Expired."""
    old = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, configmap("bump-exact"))
    server.compact_to_now()
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map(NS, resource_version=old, resource_version_match="Exact")
    status = json.loads(info.value.body)
    assert (info.value.status, status["reason"]) == (410, "Expired")
    assert status["message"] == "The resourceVersion for the provided list is too old."


def test_watch_from_compacted_resource_version_is_an_error_event(
    server: InProcessServer, core: client.CoreV1Api, http: httpx.Client
) -> None:
    """Watching from before the compacted revision yields one ERROR event: 410 Expired."""
    old = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, configmap("bump-watch"))
    compacted = server.compact_to_now()

    params = {"watch": "true", "resourceVersion": old, "timeoutSeconds": "5"}
    with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as r:
        assert r.status_code == 200
        events = [json.loads(line) for line in r.iter_lines() if line]
    [event] = events
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"] == f"too old resource version: {old} ({compacted})"

    # The official client relists once on 410 and then gives up with an ApiException.
    with pytest.raises(client.ApiException) as info:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, NS, resource_version=old, timeout_seconds=5
        ):
            pass
    assert info.value.status == 410


def test_bookmarks_carry_the_latest_resource_version(
    core: client.CoreV1Api, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With allowWatchBookmarks a quiet watch gets BOOKMARKs at the last delivered version."""
    monkeypatch.setattr(watch_handler, "BOOKMARK_INTERVAL", 0.2)
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    created = core.create_namespaced_config_map(NS, configmap("bookmarked"))
    params = {
        "watch": "true",
        "resourceVersion": start,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
    }
    with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as r:
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert events[0]["type"] == "ADDED"
    bookmarks = [e for e in events[1:] if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert all(e["type"] == "BOOKMARK" for e in events[1:])
    for bookmark in bookmarks:
        obj = bookmark["object"]
        assert (obj["kind"], obj["apiVersion"]) == ("ConfigMap", "v1")
        assert obj["metadata"]["resourceVersion"] == created.metadata.resource_version


def test_bookmarks_are_not_sent_unless_asked(
    core: client.CoreV1Api, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without allowWatchBookmarks the stream has only real events."""
    monkeypatch.setattr(watch_handler, "BOOKMARK_INTERVAL", 0.2)
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, configmap("unbookmarked"))
    params = {"watch": "true", "resourceVersion": start, "timeoutSeconds": "1"}
    with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as r:
        events = [json.loads(line)["type"] for line in r.iter_lines() if line]
    assert events == ["ADDED"]
