"""What the garbage collector looks up, and when: upstream's graph builder rules.

The collector runs against the in-process API server as in ``kajitori up``;
its client's GETs are counted, so each test shows both what is collected and
which lookups it took: a dependent whose owner the graph already holds costs
none, an owner the graph has not seen is looked up (and its dependents
collected when it is gone), and a reference that does not match the owner
the graph holds is verified.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.controllers import garbage_collector

from .conftest import StartControllers

Object = dict[str, Any]


class Lookups:
    """The (plural, namespace, name) of every GET the collector's client sends."""

    def __init__(self, client: rest.Client) -> None:
        self.seen: list[tuple[str, str, str]] = []
        original = client.get

        async def get(resource: rest.Resource, name: str, **kwargs: Any) -> Object:
            self.seen.append((resource.plural, kwargs.get("namespace") or "", name))
            return await original(resource, name, **kwargs)

        client.get = get  # type: ignore[method-assign]

    def of(self, name: str) -> int:
        return sum(1 for _, _, looked_up in self.seen if looked_up == name)


@pytest.fixture
async def collector(
    start_controllers: StartControllers,
) -> AsyncIterator[tuple[garbage_collector.GarbageCollector, Lookups]]:
    running = await start_controllers("garbagecollector")
    gc = running.controllers["garbagecollector"]
    assert isinstance(gc, garbage_collector.GarbageCollector)
    lookups = Lookups(gc.client)
    await _until(gc.has_synced, "the collector's informers to sync")
    yield gc, lookups


async def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _until_async(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 15.0
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _settled(gc: garbage_collector.GarbageCollector) -> bool:
    return gc.attempt_to_delete.idle()


async def _configmap(
    admin: rest.Client, name: str, *, namespace: str = "default", owner: Object | None = None
) -> Object:
    metadata: Object = {"name": name}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
            }
        ]
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    return await admin.create(rest.CONFIGMAPS, body, namespace=namespace)


async def _exists(admin: rest.Client, name: str, namespace: str = "default") -> bool:
    try:
        await admin.get(rest.CONFIGMAPS, name, namespace=namespace)
    except rest.ApiError as exc:
        assert exc.not_found
        return False
    return True


async def _until_gone(admin: rest.Client, name: str, namespace: str = "default") -> None:
    async def gone() -> bool:
        return not await _exists(admin, name, namespace)

    await _until_async(gone, f"{namespace}/{name} to be collected")


def _observed(gc: garbage_collector.GarbageCollector, obj: Object) -> bool:
    node = gc.graph.nodes.get(obj["metadata"]["uid"])
    return node is not None and not node.virtual


async def _ghost_dependent(admin: rest.Client, gc: garbage_collector.GarbageCollector) -> None:
    """A dependent of an owner that never existed, collected: the queue has moved past
    everything queued before it."""
    ghost = {"metadata": {"name": "ghost", "uid": "no-such-uid"}}
    await _configmap(admin, "marker", owner=ghost)
    await _until_gone(admin, "marker")
    await _until(lambda: _settled(gc), "the collector's queue to empty")


async def test_a_dependent_of_an_owner_in_the_graph_costs_no_lookup(
    admin: rest.Client, collector: tuple[garbage_collector.GarbageCollector, Lookups]
) -> None:
    gc, lookups = collector
    owner = await _configmap(admin, "owner")
    await _until(lambda: _observed(gc, owner), "the owner in the graph")
    dependent = await _configmap(admin, "dependent", owner=owner)
    await _until(lambda: _observed(gc, dependent), "the dependent in the graph")
    await _ghost_dependent(admin, gc)
    assert lookups.of("owner") == 0
    assert lookups.of("dependent") == 0
    assert lookups.of("ghost") == 1  # the virtual owner's one lookup; then the absent cache
    assert await _exists(admin, "dependent")

    await admin.delete(rest.CONFIGMAPS, "owner", namespace="default")
    await _until_gone(admin, "dependent")


async def test_a_dependent_whose_owner_is_already_gone_is_collected(
    admin: rest.Client, collector: tuple[garbage_collector.GarbageCollector, Lookups]
) -> None:
    gc, lookups = collector
    owner = await _configmap(admin, "gone-owner")
    await _until(lambda: _observed(gc, owner), "the owner in the graph")
    await admin.delete(rest.CONFIGMAPS, "gone-owner", namespace="default")
    await _until(lambda: owner["metadata"]["uid"] not in gc.graph.nodes, "the owner's removal")

    await _configmap(admin, "late-dependent", owner=owner)
    await _until_gone(admin, "late-dependent")
    assert lookups.of("gone-owner") == 1  # its virtual node, found absent


async def test_an_owner_the_graph_has_not_seen_yet_keeps_its_dependent(
    admin: rest.Client, collector: tuple[garbage_collector.GarbageCollector, Lookups]
) -> None:
    """The owner's informer lags (simulated by taking it out of the graph): it is looked up,
    found, and the dependent kept until the owner is really deleted."""
    gc, lookups = collector
    owner = await _configmap(admin, "lagging-owner")
    await _until(lambda: _observed(gc, owner), "the owner in the graph")
    gc.graph.remove(owner["metadata"]["uid"])

    await _configmap(admin, "kept-dependent", owner=owner)
    await _until(lambda: lookups.of("lagging-owner") >= 2, "the owner to be looked up again")
    node = gc.graph.nodes[owner["metadata"]["uid"]]
    assert node.virtual
    assert await _exists(admin, "kept-dependent")

    owner["metadata"]["labels"] = {"touched": "yes"}
    await admin.update(rest.CONFIGMAPS, owner, namespace="default")
    await _until(lambda: _observed(gc, owner), "the owner observed again")
    await _ghost_dependent(admin, gc)
    assert await _exists(admin, "kept-dependent")

    await admin.delete(rest.CONFIGMAPS, "lagging-owner", namespace="default")
    await _until_gone(admin, "kept-dependent")


async def test_an_object_first_seen_without_owners_is_verified_when_it_gains_one(
    admin: rest.Client, collector: tuple[garbage_collector.GarbageCollector, Lookups]
) -> None:
    """Seen first with no owner (the graph only holds it), then updated to name an owner
    that never existed: the new reference is verified and the object collected; an update
    that names no owner again costs nothing."""
    gc, lookups = collector
    plain = await _configmap(admin, "plain")
    await _until(lambda: _observed(gc, plain), "the object in the graph")
    plain["metadata"]["labels"] = {"touched": "yes"}
    plain = await admin.update(rest.CONFIGMAPS, plain, namespace="default")
    await _ghost_dependent(admin, gc)  # the update is observed by now (one watch, in order)
    assert lookups.of("plain") == 0
    assert await _exists(admin, "plain")

    never = {"apiVersion": "v1", "kind": "ConfigMap", "name": "never", "uid": "never-uid"}
    plain["metadata"]["ownerReferences"] = [never]
    await admin.update(rest.CONFIGMAPS, plain, namespace="default")
    await _until_gone(admin, "plain")
    assert lookups.of("never") == 1


async def test_a_reference_to_an_owner_in_another_namespace_is_verified(
    admin: rest.Client, collector: tuple[garbage_collector.GarbageCollector, Lookups]
) -> None:
    """The owner's UID is known, but in another namespace: no owner exists where the
    dependent looks, so it is collected, with upstream's OwnerRefInvalidNamespace warning."""
    gc, lookups = collector
    await admin.create(rest.NAMESPACES, {"metadata": {"name": "elsewhere"}})
    owner = await _configmap(admin, "far-owner")
    await _until(lambda: _observed(gc, owner), "the owner in the graph")

    await _configmap(admin, "stray-dependent", namespace="elsewhere", owner=owner)
    await _until_gone(admin, "stray-dependent", "elsewhere")
    assert lookups.seen.count(("configmaps", "elsewhere", "far-owner")) == 1
    assert await _exists(admin, "far-owner")

    async def warned() -> bool:
        found = await admin.list(rest.EVENTS, namespace="elsewhere")
        return any(e.get("reason") == "OwnerRefInvalidNamespace" for e in found["items"])

    await _until_async(warned, "the OwnerRefInvalidNamespace event")


async def test_an_owner_served_under_two_groups_matches_references_to_either(
    admin: rest.Client, collector: tuple[garbage_collector.GarbageCollector, Lookups]
) -> None:
    """A ReplicaSet is also served as extensions/v1beta1 (both monitored): references by
    either apiVersion match it, so neither dependent is looked up."""
    gc, lookups = collector
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "both-groups"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "both-groups"}},
            "template": {
                "metadata": {"labels": {"app": "both-groups"}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            },
        },
    }
    owner = await admin.create(rest.REPLICASETS, body, namespace="default")
    uid = owner["metadata"]["uid"]

    def seen_under_both() -> bool:
        node = gc.graph.nodes.get(uid)
        return node is not None and {node.api_version, *node.aliases} == {
            "apps/v1",
            "extensions/v1beta1",
        }

    await _until(seen_under_both, "the ReplicaSet seen under both groups")
    for name, api_version in (("by-apps", "apps/v1"), ("by-extensions", "extensions/v1beta1")):
        ref = {"apiVersion": api_version, "kind": "ReplicaSet", "name": "both-groups", "uid": uid}
        dependent = {"apiVersion": "v1", "kind": "ConfigMap"}
        dependent["metadata"] = {"name": name, "ownerReferences": [ref]}
        created = await admin.create(rest.CONFIGMAPS, dependent, namespace="default")
        await _until(lambda c=created: _observed(gc, c), f"{name} in the graph")
    await _ghost_dependent(admin, gc)
    assert lookups.of("both-groups") == 0
    assert lookups.of("by-apps") == lookups.of("by-extensions") == 0

    await admin.delete(rest.REPLICASETS, "both-groups", namespace="default")
    await _until_gone(admin, "by-apps")
    await _until_gone(admin, "by-extensions")


async def test_the_collector_reuses_the_full_informers_other_controllers_hold(
    start_controllers: StartControllers,
) -> None:
    """With the ReplicaSet controller beside it the collector watches pods and ReplicaSets
    through that controller's informers (one watch each), and the rest metadata-only."""
    running = await start_controllers("replicaset", "garbagecollector")
    gc = running.controllers["garbagecollector"]
    assert isinstance(gc, garbage_collector.GarbageCollector)
    await _until(gc.has_synced, "the collector's informers to sync")
    by_plural = {(i.resource.group, i.resource.plural): i for i in gc.caches}
    assert not by_plural[("", "pods")].metadata_only
    assert not by_plural[("apps", "replicasets")].metadata_only
    assert by_plural[("", "configmaps")].metadata_only
    watched = [i for i in running.informers.informers() if i.resource.plural == "pods"]
    assert len(watched) == 1
