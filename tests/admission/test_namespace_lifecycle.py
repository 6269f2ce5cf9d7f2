"""NamespaceLifecycle's namespace cache: watched namespaces answer creates, storage the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kajitori.admission.plugins import namespace_lifecycle
from kajitori.admission.plugins.namespace_lifecycle import NamespaceCache, NamespaceLifecycle
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.machinery import errors
from kajitori.registry.generic.store import WatchEvent

Object = dict[str, Any]


async def wait_until(predicate: Callable[[], bool], *, timeout: float) -> None:
    """Poll ``predicate`` on the event loop until it holds; AssertionError after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _ns(name: str, phase: str = "Active") -> Object:
    return {"metadata": {"name": name}, "status": {"phase": phase}}


class _Storage:
    """A namespace getter counting its reads, and a watch fed by the test."""

    def __init__(self, namespaces: list[Object]) -> None:
        self.objects = {ns["metadata"]["name"]: ns for ns in namespaces}
        self.reads: list[str] = []
        self.events: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        for ns in namespaces:
            self.events.put_nowait(WatchEvent("ADDED", ns))
        self.events.put_nowait(WatchEvent("BOOKMARK", {}, 0, {"initial_events_end": True}))

    async def get(self, name: str) -> Object:
        self.reads.append(name)
        if name not in self.objects:
            raise errors.not_found(errors.GroupResource("", "namespaces"), name)
        return self.objects[name]

    async def watch(self) -> AsyncIterator[WatchEvent]:
        while (event := await self.events.get()) is not None:
            yield event


async def test_watched_namespaces_answer_without_storage_reads() -> None:
    storage = _Storage([_ns("a")])
    cache = NamespaceCache(storage.get, storage.watch)
    assert (await cache.get("a"))["status"]["phase"] == "Active"  # before the sync: storage
    await wait_until(lambda: cache.synced, timeout=5)
    storage.reads.clear()
    for _ in range(3):
        assert (await cache.get("a"))["metadata"]["name"] == "a"
    assert storage.reads == []
    # Unknown to the watch: storage answers (a namespace created a moment ago, or none).
    with pytest.raises(errors.StatusError) as caught:
        await cache.get("missing")
    assert caught.value.code == 404
    assert storage.reads == ["missing"]
    await cache.stop()


async def test_watch_events_update_and_remove_namespaces() -> None:
    storage = _Storage([_ns("a")])
    cache = NamespaceCache(storage.get, storage.watch)
    await cache.get("a")
    await wait_until(lambda: cache.synced, timeout=5)
    storage.events.put_nowait(WatchEvent("MODIFIED", _ns("a", "Terminating")))
    await wait_until(lambda: cache._objects["a"]["status"]["phase"] == "Terminating", timeout=5)
    storage.events.put_nowait(WatchEvent("DELETED", _ns("a", "Terminating")))
    del storage.objects["a"]
    await wait_until(lambda: "a" not in cache._objects, timeout=5)
    with pytest.raises(errors.StatusError):
        await cache.get("a")
    await cache.stop()


async def test_forced_live_lookup_and_ended_watch_read_storage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = _Storage([_ns("a")])
    cache = NamespaceCache(storage.get, storage.watch)
    await cache.get("a")
    await wait_until(lambda: cache.synced, timeout=5)
    storage.objects["a"] = _ns("a", "Terminating")  # written; its event not yet delivered
    cache.force_live_lookup("a")
    storage.reads.clear()
    assert (await cache.get("a"))["status"]["phase"] == "Terminating"
    assert storage.reads == ["a"]
    # The watch ends: nothing cached is trusted until it has synced again.
    monkeypatch.setattr(namespace_lifecycle, "RESTART_INTERVAL_SECONDS", 3600.0)
    storage.events.put_nowait(None)
    await wait_until(lambda: not cache.synced and not cache._objects, timeout=5)
    storage.reads.clear()
    cache._force_live.clear()
    await cache.get("a")
    assert storage.reads == ["a"]
    await cache.stop()


def _lifecycle(process: APIServerProcess) -> NamespaceLifecycle:
    assert process.registry is not None
    store = process.registry.lookup("", "v1", "configmaps")
    assert store is not None
    return next(p for p in store.admission.plugins if isinstance(p, NamespaceLifecycle))


async def test_create_right_after_namespace_delete_is_forbidden(
    apiserver: APIServerProcess,
) -> None:
    assert apiserver.http is not None and apiserver.pki is not None
    client = rest.Client.in_process(
        apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem
    )
    plugin = _lifecycle(apiserver)
    assert plugin.cache is not None
    try:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c0"}}
        await client.create(rest.CONFIGMAPS, cm, namespace="default")
        await wait_until(lambda: plugin.cache is not None and plugin.cache.synced, timeout=10)
        # Created after the sync: not in the cache yet, storage answers.
        await client.create(
            rest.NAMESPACES,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
        )
        await client.create(rest.CONFIGMAPS, {**cm, "metadata": {"name": "c1"}}, namespace="doomed")
        await wait_until(lambda: "doomed" in plugin.cache._objects, timeout=10)  # type: ignore[union-attr]
        await client.delete(rest.NAMESPACES, "doomed")
        # Read from storage for a while: the watch shows the deletion a few loop turns later.
        assert plugin.cache._forced_live("doomed")
        with pytest.raises(rest.ApiError) as caught:
            await client.create(
                rest.CONFIGMAPS, {**cm, "metadata": {"name": "c2"}}, namespace="doomed"
            )
        assert caught.value.code == 403
        with pytest.raises(rest.ApiError) as missing:
            await client.create(
                rest.CONFIGMAPS, {**cm, "metadata": {"name": "c3"}}, namespace="nope"
            )
        assert missing.value.code == 404
    finally:
        await client.aclose()
