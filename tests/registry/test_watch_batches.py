"""``Store.watch_batches``: a watch's events in lists of those ready together, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kajitori.registry.core import configmaps
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions, Store

CTX = RequestContext()


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return sqlite_store(configmaps.RESOURCE)


def _configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}


async def test_events_queued_together_arrive_as_one_ordered_batch(store: Store) -> None:
    await store.create("default", _configmap("before"), CTX)
    batches = store.watch_batches("default", ListOptions())
    initial = await anext(batches)  # resourceVersion unset: the current state first
    assert [(e.type, e.object["metadata"]["name"]) for e in initial] == [("ADDED", "before")]

    await asyncio.gather(*(store.create("default", _configmap(f"c{i}"), CTX) for i in range(5)))
    await asyncio.sleep(0.2)  # the watch cache has queued all five for this watcher
    received: list[tuple[str, str, int]] = []
    sizes = []
    while len(received) < 5:
        batch = await asyncio.wait_for(anext(batches), timeout=10)
        sizes.append(len(batch))
        received.extend((e.type, e.object["metadata"]["name"], e.revision) for e in batch)
    await batches.aclose()  # type: ignore[attr-defined]
    assert sorted(name for _, name, _ in received) == [f"c{i}" for i in range(5)]
    assert {t for t, _, _ in received} == {"ADDED"}
    revisions = [r for _, _, r in received]
    assert revisions == sorted(revisions) and len(set(revisions)) == 5
    assert sizes == [5]  # everything queued comes in one step, not one step per event


async def test_watch_keeps_its_one_event_per_step_form(store: Store) -> None:
    events = store.watch("default", ListOptions())
    await asyncio.gather(*(store.create("default", _configmap(f"e{i}"), CTX) for i in range(3)))
    names = []
    for _ in range(3):
        event = await asyncio.wait_for(anext(events), timeout=10)  # type: ignore[call-overload]
        names.append(event.object["metadata"]["name"])
    await events.aclose()  # type: ignore[attr-defined]
    assert sorted(names) == ["e0", "e1", "e2"]
