"""Status PUTs that carry the stored metadata and spec decode as the full path does (decision 0061).

A real API server (the suite's in-process ``apiserver``, SQLite in a
temporary directory) with a watcher on the pods, so that the watch cache
decodes each of them. Every ``pods/status`` PUT is decoded twice on the live
server, with the cached value (the shortcut) and without it (type check, Go
shaping and pruning of the whole body), and the objects, errors and warnings
must be equal. The bodies keep the ``resourceVersion`` they read, so the
stored-bytes comparison (``resources._leading_parts``) applies, and vary the
metadata and spec where ``==`` and the JSON text disagree (1 against true,
1.0 against 1, key order), where the checks fail, and where fields are
unknown. For every such PUT the parts it leaves unwalked must be exactly
those whose text equals the cached object's.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import pytest
from tests.registry.core.decoding import decoded_both_ways

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.registry.generic.store import ListOptions, Store
from kajitori.server.handlers import resources

Object = dict[str, Any]
NS = "status-cost"
TIMEOUT = 10.0


pytestmark = pytest.mark.usefixtures("module_namespace")


class Watcher:
    """A watch of the namespace's pods: the watch cache decodes every event for it."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self._task = asyncio.ensure_future(self._run(store))

    async def _run(self, store: Store) -> None:
        revision = await store.backend.current_revision()
        async for _ in store.watch(NS, ListOptions(resource_version=str(revision))):
            self.count += 1

    async def seen(self, count: int) -> None:
        async def wait() -> None:
            while self.count < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(wait(), TIMEOUT)

    async def close(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def pod(index: int) -> Object:
    meta: Object = {
        "name": f"p{index}",
        "labels": {"app": "web", "i": str(index)},
        "annotations": {"example.com/a": "1", "example.com/b": "2"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": "6d3c6a52-0000-4000-8000-000000000001",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if index % 2:
        meta["finalizers"] = ["example.com/hold"]
    containers = [{"name": f"c{n}", "image": "nginx:1.27"} for n in range(1 + index % 2)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": containers}}


def _with_status(current: Object, index: int, phase: str) -> Object:
    body = copy.deepcopy(current)
    body["status"] = {
        "phase": phase,
        "podIP": f"10.0.1.{index + 2}",
        "podIPs": [{"ip": f"10.0.1.{index + 2}"}],
        "conditions": [
            {"type": "Ready", "status": "True", "lastProbeTime": None},
            {"type": "Initialized", "status": "True", "lastProbeTime": None},
        ],
        "startTime": "2026-11-26T12:00:00Z",
    }
    return body


def variants(current: Object, index: int) -> list[tuple[Object, dict[str, str]]]:
    """Status bodies of ``current`` as read: plain, and with metadata or spec changed."""
    plain = _with_status(current, index, "Running")
    out: list[tuple[Object, dict[str, str]]] = [(plain, {})]

    def edited(change: Any, params: dict[str, str] | None = None) -> None:
        body = copy.deepcopy(plain)
        change(body)
        out.append((body, params or {}))

    meta = "metadata"
    edited(lambda b: b[meta]["labels"].update({"new": "label"}))
    edited(lambda b: b[meta]["labels"].update({"bad": 5}))
    edited(lambda b: b[meta]["ownerReferences"][0].update({"controller": 1}))  # == True
    edited(lambda b: b[meta].update({"generation": 1.0}))  # == 1
    edited(lambda b: b.update({meta: dict(reversed(list(b[meta].items())))}))  # key order
    edited(lambda b: b[meta].update({"annotations": {"example.com/b": "2", "example.com/a": "1"}}))
    edited(lambda b: b[meta]["managedFields"][0].update({"time": "2026-11-26T12:00:00+00:00"}))
    edited(lambda b: b[meta]["managedFields"][0].update({"time": 5}))
    edited(lambda b: b[meta].update({"alsoBogus": True}), {"fieldValidation": "Strict"})
    edited(lambda b: b[meta].update({"alsoBogus": True}), {"fieldValidation": "Warn"})
    edited(lambda b: b[meta].update({"resourceVersion": "1"}))  # stale: a conflict
    edited(lambda b: b[meta].pop("resourceVersion"))
    edited(lambda b: b["spec"].update({"terminationGracePeriodSeconds": True}))  # == 1
    edited(
        lambda b: b["spec"]["containers"][0].update({"nope": "x"}), {"fieldValidation": "Strict"}
    )
    edited(lambda b: b["status"].update({"phase": 5}))
    return out


async def caught_up(store: Store, key: str) -> None:
    """Until the watch cache holds, decoded, the value storage holds at ``key``."""

    async def wait() -> None:
        while True:
            _, stored = await store.backend.get(key)
            cached = store.cached_for_update(key)
            if stored is not None and cached is not None and cached[1] is not None:
                if cached[0].mod_revision == stored.mod_revision:
                    return
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), TIMEOUT)


def _text_equal_parts(body: Object, cached: Object) -> set[str]:
    """The parts the shortcut may leave unwalked, by comparing decoded texts (the slow way)."""
    return {
        key
        for key in ("metadata", "spec")
        if type(body.get(key)) is dict
        and body[key]
        and orjson.dumps(body[key]) == orjson.dumps(cached.get(key))
    }


async def test_status_puts_with_stored_parts_decode_as_the_full_path(
    apiserver: APIServerProcess, admin: rest.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apiserver.registry is not None
    store = apiserver.registry.lookup("", "v1", "pods")
    assert store is not None
    watcher = Watcher(store)
    await asyncio.sleep(0.05)
    differences: list[Any] = []  # (the server would answer an assertion with a 500)
    from_bytes: list[tuple[set[str], bool]] = []  # parts kept; the spec placed in the bytes?
    decode = resources.decode_object

    async def both_ways(scope: Any, stored: Any = None) -> Object:
        if stored is None:
            return await decode(scope)
        body = orjson.loads(await scope.request.body())
        resources.check_kind(scope, body)
        kept = set(resources._stored_parts(body, stored))
        if kept != _text_equal_parts(body, stored[1]):
            differences.append(("kept", kept, body))
        _, compared = resources._leading_parts(body, stored[1], stored[0])
        from_bytes.append((kept, "spec" in compared))
        return await decoded_both_ways(decode, scope, stored, differences)

    monkeypatch.setattr(resources, "decode_object", both_ways)
    names = [
        (await admin.create(rest.PODS, pod(i), namespace=NS))["metadata"]["name"] for i in range(6)
    ]
    await watcher.seen(len(names))
    answers: list[Any] = []
    for index, name in enumerate(names):
        path = rest.PODS.path(namespace=NS, name=name, subresource="status")
        # A first write with the stored pod as read, then each variant of the written one.
        current = await admin.get(rest.PODS, name, namespace=NS)
        await admin.request("PUT", path, body=_with_status(current, index, "Pending"))
        for number in range(len(variants(current, index))):
            # Each variant of the pod as now stored, once the watch cache holds it too.
            await caught_up(store, store.key(NS, name))
            current = await admin.get(rest.PODS, name, namespace=NS)
            body, params = variants(current, index)[number]
            try:
                answer = await admin.request("PUT", path, body=body, params=params)
                answers.append(answer["status"].get("phase"))
            except rest.ApiError as exc:
                answers.append(exc.code)
    await watcher.close()
    assert differences == []
    # The bytes placed both parts for plain bodies, and the spec after other metadata.
    assert from_bytes.count(({"metadata", "spec"}, True)) >= 2 * len(names)
    assert ({"spec"}, False) in from_bytes
    assert {400, 409, "Running"} <= set(answers)
    assert 500 not in answers
