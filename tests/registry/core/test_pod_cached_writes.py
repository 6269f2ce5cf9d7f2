"""Bindings and status writes that start from the watch cache's decoded pod: pinned to the full path.

A real API server (``cmd.apiserver.APIServerProcess`` over SQLite in a
temporary directory, as ``kajitori up`` builds it) called through the
in-process client. The tests run many bindings and ``pods/status`` writes of
varied pods, with a watcher on the pods so that the watch cache decodes each
of them, and check against the path that decodes the stored bytes:

* a binding stores the bytes that decoding, binding and encoding the stored
  pod gives, answers conflicts as before, and never changes the objects the
  watch cache shares with its watchers;
* a status write whose spec equals the stored one decodes to the same object,
  errors and warnings as the full type check, shaping and pruning of it;
* a watch that began before the watch cache moves onto it without losing or
  repeating an event.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from tests.registry.core.decoding import decoded_both_ways

from kajitori.api import definitions, normalize, pruning, typecheck
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.registry.core import configmaps, pod_binding
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store, WatchEvent
from kajitori.server.handlers import resources
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
NS = "cached-writes"
TIMEOUT = 10.0
CTX = RequestContext()


@pytest.fixture
def server(apiserver: APIServerProcess) -> APIServerProcess:
    """The suite's in-process API server (tests/conftest.py), named as these tests use it."""
    return apiserver


def pod_store(server: APIServerProcess) -> Store:
    store = server.registry.lookup("", "v1", "pods")
    assert store is not None
    return store


class Watcher:
    """A watch of the namespace's pods through the watch cache; keeps each event's JSON as seen."""

    def __init__(self, store: Store) -> None:
        self.events: list[tuple[WatchEvent, bytes]] = []
        self._task = asyncio.ensure_future(self._run(store))

    async def _run(self, store: Store) -> None:
        revision = await store.backend.current_revision()
        async for event in store.watch(NS, ListOptions(resource_version=str(revision))):
            self.events.append((event, orjson.dumps(event.object)))

    async def close(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    def unchanged(self) -> bool:
        """Every event's object still encodes as it did when the watcher got it."""
        return all(orjson.dumps(event.object) == seen for event, seen in self.events)


def pod(index: int) -> Object:
    """Pods of varied shapes: annotations, gates, several containers, no volumes."""
    containers = [{"name": f"c{n}", "image": "nginx:1.27"} for n in range(1 + index % 3)]
    spec: Object = {"containers": containers, "terminationGracePeriodSeconds": index % 4}
    if index % 5 == 1:
        spec["schedulingGates"] = [{"name": "example.com/wait"}]
    if index % 7 == 2:
        spec["automountServiceAccountToken"] = False
    meta: Object = {"name": f"p{index}", "labels": {"i": str(index)}}
    if index % 2:
        meta["annotations"] = {"note": str(index)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def binding(obj: Object, node: str, index: int) -> Object:
    body: Object = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": obj["metadata"]["name"], "namespace": NS},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    if index % 3 == 0:
        body["metadata"]["annotations"] = {"scheduled-by": f"test-{index}"}
    return body


async def settled(store: Store, watcher: Watcher, count: int) -> None:
    async def wait() -> None:
        while len(watcher.events) < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), TIMEOUT)


@pytest.mark.usefixtures("module_namespace")
async def test_bindings_from_the_cached_pod_store_what_decoding_the_stored_pod_gives(
    server: APIServerProcess, admin: rest.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pod_store(server)
    watcher = Watcher(store)
    await asyncio.sleep(0.05)
    pods = [await admin.create(rest.PODS, pod(i), namespace=NS) for i in range(40)]
    await settled(store, watcher, len(pods))
    monkeypatch.setattr(pod_binding.times, "now_rfc3339", lambda: "2026-11-26T12:00:00Z")
    copies = 0
    original_copy = pod_binding._bindable_copy

    def counting_copy(obj: Object) -> Object:
        nonlocal copies
        copies += 1
        return original_copy(obj)

    monkeypatch.setattr(pod_binding, "_bindable_copy", counting_copy)
    for index, created in enumerate(pods):
        key = store.key(NS, created["metadata"]["name"])
        _, before = await store.backend.get(key)
        assert before is not None
        expected = store.decode(before)
        body = binding(created, f"node-{index % 3}", index)
        assert pod_binding._bind(expected, body) == ""
        await admin.create(rest.PODS, body, namespace=NS, subresource="binding")
        _, after = await store.backend.get(key)
        assert after is not None
        assert after.value == store.encode(expected, key)
        await settled(store, watcher, len(pods) + index + 1)

    assert copies == len(pods)  # every binding took the watch cache's object
    assert watcher.unchanged()
    # Each binding's event carries what storage holds, at its revision.
    for event, _ in watcher.events[len(pods) :]:
        assert event.type == "MODIFIED"
        _, stored = await store.backend.get(store.key(NS, event.object["metadata"]["name"]))
        assert stored is not None and stored.mod_revision == event.revision
        assert event.object == {**store.decode(stored), "kind": "Pod", "apiVersion": "v1"}

    # Binding again is upstream's 409 on pods/binding, from the cached pod too.
    with pytest.raises(rest.ApiError) as caught:
        await admin.create(
            rest.PODS, binding(pods[4], "elsewhere", 4), namespace=NS, subresource="binding"
        )
    assert caught.value.code == 409
    assert caught.value.message == (
        'Operation cannot be fulfilled on pods/binding "p4": '
        'pod p4 is already assigned to node "node-1"'
    )
    await watcher.close()


@pytest.mark.usefixtures("module_namespace")
async def test_binding_a_pod_being_deleted_is_a_conflict_from_the_cached_pod(
    server: APIServerProcess, admin: rest.Client
) -> None:
    store = pod_store(server)
    watcher = Watcher(store)
    await asyncio.sleep(0.05)
    held = pod(0)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    created = await admin.create(rest.PODS, held, namespace=NS)
    await admin.delete(rest.PODS, "p0", namespace=NS)
    await settled(store, watcher, 2)
    with pytest.raises(rest.ApiError) as caught:
        await admin.create(rest.PODS, binding(created, "n", 1), namespace=NS, subresource="binding")
    assert caught.value.code == 409
    assert caught.value.message.endswith("pod p0 is being deleted, cannot be assigned to a host")
    assert watcher.unchanged()
    await watcher.close()


def status_bodies(current: Object, index: int) -> list[tuple[Object, dict[str, str]]]:
    """Status writes of ``current`` (as read): valid, and with errors in and out of the spec."""
    running = copy.deepcopy(current)
    running["status"] = {
        "phase": "Running",
        "podIP": f"10.0.0.{index + 2}",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}],
        "startTime": "2026-11-26T12:00:00Z",
    }
    unknown = copy.deepcopy(running)
    unknown["status"]["bogus"] = {"x": 1}
    unknown["metadata"]["alsoBogus"] = True
    wrong_type = copy.deepcopy(running)
    wrong_type["status"]["phase"] = 5
    spec_changed = copy.deepcopy(running)
    spec_changed["spec"]["terminationGracePeriodSeconds"] = True  # == 1 in Python
    spec_unknown = copy.deepcopy(running)
    spec_unknown["spec"]["nope"] = "x"
    bad_quantity = copy.deepcopy(running)
    bad_quantity["status"]["containerStatuses"] = [
        {"name": "c0", "allocatedResources": {"cpu": "x"}}
    ]
    return [
        (running, {}),
        (unknown, {"fieldValidation": "Warn"}),
        (unknown, {"fieldValidation": "Strict"}),
        (unknown, {}),
        (wrong_type, {}),
        (spec_changed, {}),
        (spec_unknown, {"fieldValidation": "Strict"}),
        (bad_quantity, {}),
    ]


@pytest.mark.usefixtures("module_namespace")
async def test_status_writes_with_the_stored_spec_decode_as_the_full_path_does(
    server: APIServerProcess, admin: rest.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each status PUT is decoded both ways on the live server; answers must be equal."""
    store = pod_store(server)
    watcher = Watcher(store)
    await asyncio.sleep(0.05)
    compared: list[bool] = []  # per status PUT with a cached object: did the spec skip apply
    differences: list[Any] = []  # (the server would answer an assertion with a 500)
    decode = resources.decode_object

    async def both_ways(scope: Any, stored: resources.Cached | None = None) -> Object:
        if stored is None:
            return await decode(scope)
        slow = await decoded_both_ways(decode, scope, stored, differences)
        compared.append("spec" in resources._stored_parts(slow, stored))
        return slow

    monkeypatch.setattr(resources, "decode_object", both_ways)
    names = [
        (await admin.create(rest.PODS, pod(i), namespace=NS))["metadata"]["name"] for i in range(12)
    ]
    for index, name in enumerate(names):
        await admin.create(
            rest.PODS,
            binding({"metadata": {"name": name}}, "node-a", index),
            namespace=NS,
            subresource="binding",
        )
    await settled(store, watcher, 2 * len(names))
    answers: list[Any] = []
    for index, name in enumerate(names):
        current = await admin.get(rest.PODS, name, namespace=NS)
        # The stored spec passes the checks the skip leaves out, and shaping keeps it.
        spec = current["spec"]
        shaped = copy.deepcopy(current)
        normalize.go_shape(shaped)
        assert shaped["spec"] == spec
        schema = definitions.schema_for("", "v1", "Pod")
        assert typecheck.first_type_error(copy.deepcopy(current), schema, "Pod") is None
        assert pruning.prune_unknown(copy.deepcopy(current), schema) == []
        for body, params in status_bodies(current, index):
            body["metadata"].pop("resourceVersion", None)
            path = rest.PODS.path(namespace=NS, name=name, subresource="status")
            try:
                answer = await admin.request("PUT", path, body=body, params=params)
                answers.append(answer["status"].get("phase"))
            except rest.ApiError as exc:
                answers.append(exc.code)
            await asyncio.sleep(0)  # the cache takes the write before the next
    assert differences == []
    assert compared.count(True) >= len(names) * 2  # the skip did apply, and agreed
    assert 400 in answers and "Running" in answers
    assert 500 not in answers
    assert watcher.unchanged()
    await watcher.close()


@pytest.fixture
def configmap_store(
    sqlite_backend: SqliteBackend, sqlite_store: Callable[..., Store]
) -> tuple[SqliteBackend, Store]:
    """A ConfigMap store over its own SQLite backend, for the watch cache's own tests."""
    return sqlite_backend, sqlite_store(configmaps.RESOURCE)


async def test_a_watch_from_before_the_watch_cache_moves_onto_it_at_its_next_event(
    configmap_store: tuple[SqliteBackend, Store],
) -> None:
    """A reflector's list, a write elsewhere, then its watch: storage first, then the cache."""
    backend, store = configmap_store
    await store.create("ns", configmap("cm-0"), CTX)
    listed = await backend.current_revision()
    await backend.create("/registry/other/x", b"{}")  # moves the revision on
    cache = await store.running_watch_cache()
    assert cache is not None and cache.oldest_revision > listed
    watch = store.watch("ns", ListOptions(resource_version=str(listed)))
    first = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.05)
    assert cache.subscriber_count == 0  # the cache cannot serve it yet
    names = [f"cm-{i}" for i in range(1, 8)]
    written = []
    for name in names:
        written.append(await store.create("ns", configmap(name), CTX))
    await store.update("ns", "cm-3", configmap("cm-3", {"k": "changed"}), CTX)
    events = [await asyncio.wait_for(first, TIMEOUT)]
    events += [await asyncio.wait_for(anext(watch), TIMEOUT) for _ in range(len(names))]
    assert cache.subscriber_count == 1  # moved onto the cache
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        *(("ADDED", name) for name in names),
        ("MODIFIED", "cm-3"),
    ]
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions))
    assert events[0].revision == int(written[0]["metadata"]["resourceVersion"])
    await store.delete("ns", "cm-1", DeleteOptions(), CTX)
    gone = await asyncio.wait_for(anext(watch), TIMEOUT)
    assert (gone.type, gone.object["metadata"]["name"]) == ("DELETED", "cm-1")
    await watch.aclose()  # type: ignore[attr-defined]


def configmap(name: str, data: dict[str, str] | None = None) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns"},
        "data": data or {"k": "v"},
    }


async def test_the_cached_object_is_offered_only_while_it_reads_as_the_stored_one(
    configmap_store: tuple[SqliteBackend, Store],
) -> None:
    """Once the cache filled in a missing kind, its objects are no longer the stored bytes."""
    backend, store = configmap_store
    await backend.create("/registry/other/seed", b"{}")  # a revision above 0
    await store.running_watch_cache()
    watch = store.watch("ns", ListOptions(resource_version=str(await backend.current_revision())))
    first = asyncio.ensure_future(anext(watch))
    await store.create("ns", configmap("plain"), CTX)
    await asyncio.wait_for(first, TIMEOUT)
    cached = store.cached_for_update(store.key("ns", "plain"))
    assert cached is not None and cached[1] is not None
    assert cached[1] == store.decode(cached[0])

    bare = orjson.dumps({"metadata": {"name": "bare", "namespace": "ns"}, "data": {}})
    await backend.create(store.key("ns", "bare"), bare)  # as an old writer left it
    event = await asyncio.wait_for(anext(watch), TIMEOUT)
    assert event.object["kind"] == "ConfigMap"  # filled in for the watchers
    for name in ("bare", "plain"):
        cached = store.cached_for_update(store.key("ns", name))
        assert cached is not None and cached[1] is None  # decode it yourself
    await watch.aclose()  # type: ignore[attr-defined]
