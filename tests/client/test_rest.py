"""The REST client against a real ``kajitori up`` over HTTPS (kubeconfig credentials)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kajitori.client import kubeconfig, rest
from kajitori.testing.cluster import KajitoriCluster


@pytest.fixture
async def client(cluster: KajitoriCluster) -> AsyncIterator[rest.Client]:
    """A client built from the cluster's kubeconfig."""
    api = rest.Client.from_kubeconfig(kubeconfig.load_kubeconfig(cluster.kubeconfig))
    try:
        yield api
    finally:
        await api.aclose()


async def test_create_get_update_and_delete_round_trip(client: rest.Client) -> None:
    """The basic verbs work and a deleted object is a 404 ApiError with a Status."""
    created = await client.create(
        rest.CONFIGMAPS, {"metadata": {"name": "rt", "namespace": "default"}, "data": {"a": "1"}}
    )
    created["data"]["a"] = "2"
    updated = await client.update(rest.CONFIGMAPS, created)
    assert updated["data"] == {"a": "2"}
    assert (await client.get(rest.CONFIGMAPS, "rt", namespace="default"))["data"] == {"a": "2"}
    await client.delete(rest.CONFIGMAPS, "rt", namespace="default")
    with pytest.raises(rest.ApiError) as caught:
        await client.get(rest.CONFIGMAPS, "rt", namespace="default")
    assert (caught.value.code, caught.value.reason) == (404, "NotFound")
    assert caught.value.status["details"]["name"] == "rt"


async def test_a_stale_update_is_a_conflict(client: rest.Client) -> None:
    """``update`` carries resourceVersion, so a lost race raises 409."""
    first = await client.create(rest.SECRETS, {"metadata": {"name": "cas", "namespace": "default"}})
    await client.update(rest.SECRETS, {**first, "stringData": {"x": "y"}})
    with pytest.raises(rest.ApiError) as caught:
        await client.update(rest.SECRETS, {**first, "stringData": {"x": "z"}})
    assert rest.is_conflict(caught.value)


@pytest.mark.parametrize(
    ("patch_type", "patch", "expected"),
    [
        pytest.param("merge", {"data": {"b": "2", "a": None}}, {"b": "2"}, id="merge"),
        pytest.param("strategic", {"data": {"b": "2"}}, {"a": "1", "b": "2"}, id="strategic"),
        pytest.param(
            "json", [{"op": "replace", "path": "/data/a", "value": "9"}], {"a": "9"}, id="json"
        ),
    ],
)
async def test_the_three_patch_types(
    client: rest.Client, patch_type: rest.PatchType, patch: object, expected: dict[str, str]
) -> None:
    """Each patch type is sent with its content type and applied by the server."""
    name = f"patch-{patch_type}"
    await client.create(
        rest.CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}, "data": {"a": "1"}}
    )
    patched = await client.patch(
        rest.CONFIGMAPS, name, patch, namespace="default", patch_type=patch_type
    )
    assert patched["data"] == expected


async def test_list_all_follows_continue_tokens(client: rest.Client) -> None:
    """Pages of ``limit`` objects are merged into one list."""
    for i in range(5):
        await client.create(
            rest.CONFIGMAPS,
            {"metadata": {"name": f"page-{i}", "namespace": "default", "labels": {"p": "y"}}},
        )
    one = await client.list(rest.CONFIGMAPS, namespace="default", label_selector="p=y", limit=2)
    assert len(one["items"]) == 2 and one["metadata"]["continue"]
    every = await client.list_all(
        rest.CONFIGMAPS, namespace="default", label_selector="p=y", limit=2
    )
    assert sorted(o["metadata"]["name"] for o in every["items"]) == [f"page-{i}" for i in range(5)]


async def test_watch_streams_events_over_https(client: rest.Client) -> None:
    """A watch from a list's resourceVersion sees later writes as they happen."""
    rv = (await client.list(rest.SECRETS, namespace="default"))["metadata"]["resourceVersion"]
    events = client.watch(rest.SECRETS, namespace="default", resource_version=rv)
    nxt = asyncio.ensure_future(events.__anext__())
    await client.create(rest.SECRETS, {"metadata": {"name": "watched", "namespace": "default"}})
    event = await asyncio.wait_for(nxt, 5)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "watched")
    await events.aclose()  # type: ignore[attr-defined]


async def test_discovery_and_status_subresource(client: rest.Client) -> None:
    """Discovery lists namespaced configmaps with their verbs; status updates go to /status."""
    found = {(r.group, r.plural): r for r in await client.discover()}
    configmaps = found[("", "configmaps")]
    assert configmaps.namespaced and {"list", "watch", "deletecollection"} <= configmaps.verbs
    assert found[("apps", "deployments")].kind == "Deployment"
    namespace = await client.get(rest.NAMESPACES, "default")
    namespace["status"]["conditions"] = []
    assert (await client.update_status(rest.NAMESPACES, namespace))["status"]["phase"] == "Active"


async def test_delete_collection_removes_what_the_selector_matches(client: rest.Client) -> None:
    """``delete_collection`` with a label selector leaves other objects alone."""
    for name, tier in (("dc-a", "x"), ("dc-b", "x"), ("dc-c", "y")):
        await client.create(
            rest.CONFIGMAPS,
            {"metadata": {"name": name, "namespace": "default", "labels": {"tier": tier}}},
        )
    await client.delete_collection(rest.CONFIGMAPS, namespace="default", label_selector="tier=x")
    left = await client.list(rest.CONFIGMAPS, namespace="default", label_selector="tier")
    assert [o["metadata"]["name"] for o in left["items"]] == ["dc-c"]
