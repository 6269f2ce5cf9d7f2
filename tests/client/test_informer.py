"""Informers: list then watch, handlers, indices, re-list on 410 with tombstones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kajitori.client import informer, rest
from kajitori.client.transport import ASGIApp
from kajitori.cmd.apiserver import APIServerProcess


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "labels": labels}}


async def _eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def handler(self) -> informer.EventHandler:
        return informer.EventHandler(
            on_add=lambda o: self.log.append(("add", o["metadata"]["name"])),
            on_update=lambda _, o: self.log.append(("update", o["metadata"]["name"])),
            on_delete=self._deleted,
        )

    def _deleted(self, obj: Any) -> None:
        if isinstance(obj, informer.DeletedFinalStateUnknown):
            self.log.append(("tombstone", obj.obj["metadata"]["name"]))
        else:
            self.log.append(("delete", obj["metadata"]["name"]))


async def test_an_informer_lists_then_follows_changes_through_its_handlers(
    admin: rest.Client,
) -> None:
    """Existing objects arrive as adds, then creates, updates and deletes as they happen."""
    await admin.create(rest.CONFIGMAPS, _cm("before"))
    watched = informer.Informer(admin, rest.CONFIGMAPS, namespace="default")
    seen = Recorder()
    watched.add_event_handler(seen.handler())
    watched.start()
    try:
        await asyncio.wait_for(watched.wait_for_sync(), 3)
        assert watched.has_synced()
        assert ("add", "before") in seen.log
        await admin.create(rest.CONFIGMAPS, _cm("during"))
        await admin.patch(rest.CONFIGMAPS, "during", {"data": {"k": "v"}}, namespace="default")
        await admin.delete(rest.CONFIGMAPS, "before", namespace="default")
        await _eventually(lambda: ("delete", "before") in seen.log)
    finally:
        await watched.stop()
    tail = [e for e in seen.log if e[1] == "during"]
    assert tail == [("add", "during"), ("update", "during")]
    assert watched.indexer.get("default/before") is None
    assert watched.indexer.get("default/during")["data"] == {"k": "v"}  # type: ignore[index]


async def test_custom_indexers_and_the_namespace_index_answer_lookups(
    admin: rest.Client,
) -> None:
    """``by_index`` finds objects by namespace and by a label-derived index."""
    await admin.create(rest.CONFIGMAPS, _cm("a", app="web"))
    await admin.create(rest.CONFIGMAPS, _cm("b", app="db"))
    watched = informer.Informer(
        admin,
        rest.CONFIGMAPS,
        metadata_only=True,
        indexers={"app": lambda o: [(o["metadata"].get("labels") or {}).get("app", "")]},
    )
    watched.start()
    try:
        await asyncio.wait_for(watched.wait_for_sync(), 3)
    finally:
        await watched.stop()
    assert [o["metadata"]["name"] for o in watched.indexer.by_index("app", "web")] == ["a"]
    names = {o["metadata"]["name"] for o in watched.indexer.by_index("namespace", "default")}
    assert {"a", "b"} <= names
    assert watched.indexer.get("default/a")["kind"] == "PartialObjectMetadata"  # type: ignore[index]


def _gate_first_watch(app: ASGIApp, gate: asyncio.Event) -> ASGIApp:
    """Hold the first watch request until ``gate`` opens (to compact history meanwhile)."""
    state = {"held": False}

    async def gated(scope: Any, receive: Any, send: Any) -> None:
        if b"watch=true" in scope.get("query_string", b"") and not state["held"]:
            state["held"] = True
            await gate.wait()
        await app(scope, receive, send)

    return gated


async def test_a_compacted_resource_version_makes_the_informer_relist_with_tombstones(
    apiserver: APIServerProcess,
) -> None:
    """410 on watch → re-list: new objects appear, deletes missed meanwhile become tombstones."""
    assert apiserver.http is not None and apiserver.pki is not None
    assert apiserver.backend is not None
    gate = asyncio.Event()
    app = _gate_first_watch(apiserver.http.app, gate)
    client = rest.Client.in_process(app, client_cert_pem=apiserver.pki.admin.cert_pem)
    watched = informer.Informer(client, rest.CONFIGMAPS, namespace="default")
    seen = Recorder()
    watched.add_event_handler(seen.handler())
    try:
        await client.create(rest.CONFIGMAPS, _cm("doomed"))
        watched.start()
        await asyncio.wait_for(watched.wait_for_sync(), 3)
        await client.delete(rest.CONFIGMAPS, "doomed", namespace="default")
        await client.create(rest.CONFIGMAPS, _cm("newcomer"))
        await apiserver.backend.compact(await apiserver.backend.current_revision())
        gate.set()
        await _eventually(lambda: watched.relists >= 2 and ("add", "newcomer") in seen.log)
    finally:
        await watched.stop()
        await client.aclose()
    assert ("tombstone", "doomed") in seen.log
    assert watched.indexer.get("default/doomed") is None


async def test_a_watch_that_ends_cleanly_resumes_from_its_resource_version_without_a_relist(
    admin: rest.Client, monkeypatch: Any
) -> None:
    """As the reflector: a watch's timeout is followed by a watch from the last version seen."""
    monkeypatch.setattr(informer, "MIN_WATCH_TIMEOUT", 1)  # streams of 1-2 s
    watched = informer.Informer(admin, rest.CONFIGMAPS, namespace="default")
    seen = Recorder()
    watched.add_event_handler(seen.handler())
    watched.start()
    try:
        await asyncio.wait_for(watched.wait_for_sync(), 3)
        for index in range(3):
            await admin.create(rest.CONFIGMAPS, _cm(f"across-{index}"))
            await asyncio.sleep(1.2)  # at least one stream ends between these creates
        await _eventually(lambda: ("add", "across-2") in seen.log)
        assert watched.relists == 1
        assert [n for kind, n in seen.log if kind == "add"] == [f"across-{i}" for i in range(3)]
    finally:
        await watched.stop()


async def test_in_process_factories_share_one_informer_until_the_last_stops(
    admin: rest.Client, apiserver: APIServerProcess
) -> None:
    """Two components' factories over one app: one list and watch, handlers and stops their own."""
    assert apiserver.pki is not None
    scheduler_like = informer.InformerFactory(admin.as_identity(apiserver.pki.admin.cert_pem))
    controller_like = informer.InformerFactory(admin)
    first = scheduler_like.informer(rest.CONFIGMAPS, namespace="default")
    second = controller_like.informer(rest.CONFIGMAPS, namespace="default")
    assert first.indexer is second.indexer  # one cache for both
    own = informer.InformerFactory(admin, share=False).informer(
        rest.CONFIGMAPS, namespace="default"
    )
    assert own.indexer is not first.indexer
    one, two = Recorder(), Recorder()
    first.add_event_handler(one.handler())
    second.add_event_handler(two.handler())
    scheduler_like.start()
    controller_like.start()
    try:
        await asyncio.wait_for(controller_like.wait_for_sync(), 3)
        await admin.create(rest.CONFIGMAPS, _cm("shared"))
        await _eventually(lambda: ("add", "shared") in one.log and ("add", "shared") in two.log)
        assert first.relists == 1  # listed once, for both
        await scheduler_like.stop()  # the other holder keeps it running, without first's handler
        await admin.create(rest.CONFIGMAPS, _cm("after"))
        await _eventually(lambda: ("add", "after") in two.log)
        assert ("add", "after") not in one.log
        assert second.started
    finally:
        await controller_like.stop()
    assert not second.started  # the last holder stopped it
    again = informer.InformerFactory(admin).informer(rest.CONFIGMAPS, namespace="default")
    assert again.indexer is not second.indexer  # a fresh one for the next component


async def test_existing_finds_a_full_informer_made_here_or_by_a_sharing_factory(
    admin: rest.Client, apiserver: APIServerProcess
) -> None:
    """``existing`` never makes an informer: it answers one this factory or another
    in-process factory made (the garbage collector reuses it), and not metadata-only ones."""
    assert apiserver.pki is not None
    collector_like = informer.InformerFactory(admin)
    assert collector_like.existing(rest.PODS) is None
    assert collector_like.informers() == []
    collector_like.informer(rest.SECRETS, metadata_only=True)
    assert collector_like.existing(rest.SECRETS) is None
    own = collector_like.informer(rest.CONFIGMAPS)
    assert collector_like.existing(rest.CONFIGMAPS) is own

    scheduler_like = informer.InformerFactory(admin.as_identity(apiserver.pki.admin.cert_pem))
    theirs = scheduler_like.informer(rest.PODS)
    found = collector_like.existing(rest.PODS)
    assert found is not None and found.indexer is theirs.indexer
    unshared = informer.InformerFactory(admin, share=False)
    assert unshared.existing(rest.PODS) is None
    await scheduler_like.stop()
    await collector_like.stop()
