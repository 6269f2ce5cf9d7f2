"""The generic Store after compaction: 410 Expired for lists, continue tokens and watches.

A real ``Store`` over a real ``SqliteBackend`` in a temporary directory, with
history forgotten by the real ``Compactor`` (``tick()`` instead of its
five-minute timer), so the errors come from the same code the server runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kajitori.machinery import errors
from kajitori.registry.core import configmaps
from kajitori.registry.generic import store as generic_store
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions, Store
from kajitori.storage.compactor import Compactor

CTX = RequestContext()


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return sqlite_store(configmaps.RESOURCE)


async def create(store: Store, name: str) -> dict[str, Any]:
    return await store.create("default", {"metadata": {"name": name}, "data": {}}, CTX)


async def compact_everything(store: Store) -> int:
    """Two compactor ticks with no retention: history up to the first tick's revision goes."""
    compactor = Compactor(store.backend, keep_revisions=0)
    assert await compactor.tick() is None  # the first tick only notes the revision
    noted = await store.backend.current_revision()
    await create(store, "tick")
    assert await compactor.tick() == noted
    return noted


async def test_continue_token_older_than_compaction_is_expired(store: Store) -> None:
    """Page two of a list whose snapshot was compacted is 410 Expired with upstream's text."""
    for i in range(3):
        await create(store, f"cm-{i}")
    first = await store.list("default", ListOptions(limit=1))
    assert first.continue_token
    await create(store, "later")
    await compact_everything(store)

    with pytest.raises(errors.StatusError) as info:
        await store.list("default", ListOptions(limit=1, continue_token=first.continue_token))
    assert (info.value.code, info.value.reason) == (410, "Expired")
    assert info.value.message == generic_store.CONTINUE_EXPIRED_MESSAGE


async def test_made_up_continue_token_below_compaction_is_expired(store: Store) -> None:
    """A well-formed token naming a compacted revision is Expired, not BadRequest."""
    await create(store, "a")
    await create(store, "b")
    compacted = await compact_everything(store)
    token = generic_store.encode_continue("a", compacted - 1)
    with pytest.raises(errors.StatusError) as info:
        await store.list("default", ListOptions(limit=1, continue_token=token))
    assert (info.value.code, info.value.reason) == (410, "Expired")


async def test_exact_list_at_compacted_revision_is_expired(store: Store) -> None:
    """resourceVersionMatch=Exact below the compacted revision: upstream's list message."""
    created = await create(store, "a")
    await create(store, "b")
    await compact_everything(store)
    opts = ListOptions(
        resource_version=created["metadata"]["resourceVersion"], resource_version_match="Exact"
    )
    with pytest.raises(errors.StatusError) as info:
        await store.list("default", opts)
    assert (info.value.code, info.value.reason) == (410, "Expired")
    assert info.value.message == "The resourceVersion for the provided list is too old."


async def test_watch_from_compacted_revision_raises_too_old(store: Store) -> None:
    """A watch starting below the compacted revision fails with 'too old resource version'."""
    created = await create(store, "a")
    await create(store, "b")
    compacted = await compact_everything(store)
    rv = int(created["metadata"]["resourceVersion"])
    events = store.watch("default", ListOptions(resource_version=str(rv)))
    with pytest.raises(errors.StatusError) as info:
        await events.__anext__()
    await events.aclose()  # type: ignore[attr-defined]
    assert (info.value.code, info.value.reason) == (410, "Expired")
    assert info.value.message == f"too old resource version: {rv} ({compacted})"


async def test_list_at_the_compacted_revision_itself_still_works(store: Store) -> None:
    """Compaction keeps the compacted revision readable: only older ones are gone."""
    await create(store, "a")
    compacted = await compact_everything(store)
    opts = ListOptions(resource_version=str(compacted), resource_version_match="Exact")
    listed = await store.list("default", opts)
    assert [o["metadata"]["name"] for o in listed.items] == ["a"]
    assert listed.resource_version == str(compacted)
