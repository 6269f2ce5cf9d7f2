"""``Store.get_json``: a GET's encoded object, reused while the object is unchanged."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from kajitori.machinery import errors
from kajitori.registry.core import configmaps
from kajitori.registry.generic import store as generic_store
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, Store

CTX = RequestContext()


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return sqlite_store(configmaps.RESOURCE, watch_cache=None)


def _configmap(name: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": value},
    }


async def test_the_encoded_object_is_what_get_returns_and_follows_each_write(store: Store) -> None:
    await store.create("default", _configmap("a", "one"), CTX)
    first = await store.get_json("default", "a")
    assert orjson.loads(first) == await store.get("default", "a")
    assert await store.get_json("default", "a") is first  # unchanged: the same bytes

    await store.update("default", "a", _configmap("a", "two"), CTX)
    second = orjson.loads(await store.get_json("default", "a"))
    assert second == await store.get("default", "a")
    assert second["data"] == {"k": "two"}
    assert (
        second["metadata"]["resourceVersion"] != orjson.loads(first)["metadata"]["resourceVersion"]
    )

    await store.delete("default", "a", DeleteOptions(), CTX)
    with pytest.raises(errors.StatusError) as caught:
        await store.get_json("default", "a")
    assert caught.value.code == 404


async def test_the_cache_stays_within_its_byte_budget(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generic_store, "_ENCODED_CACHE_BYTES", 2000)
    for i in range(6):
        await store.create("default", _configmap(f"c{i}", "x" * 300), CTX)
        await store.get_json("default", f"c{i}")
    assert store._encoded_bytes <= 2000
    assert store._encoded_bytes == sum(len(data) for _, data in store._encoded.values())
    assert "/registry/configmaps/default/c5" in store._encoded  # the newest is kept


async def test_a_remembered_read_never_outlives_a_write(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GETs answered without a storage read (the backend's read generations) always show
    the newest acknowledged write, with writes racing the reads and the generations'
    map pruned every few writes."""
    import asyncio
    import random

    from kajitori.storage import sqlite

    monkeypatch.setattr(sqlite, "_READ_GENERATIONS_MAX", 3)
    backend = store.backend
    reads_from_storage = 0
    real_get = backend.get

    async def counting_get(key: str, **kwargs: object) -> object:
        nonlocal reads_from_storage
        reads_from_storage += 1
        return await real_get(key, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "get", counting_get)
    names = [f"cm-{i}" for i in range(4)]
    acknowledged: dict[str, str] = {}
    for name in names:
        await store.create("default", _configmap(name, "0"), CTX)
        acknowledged[name] = "0"
    rng = random.Random(3)

    async def writer(name: str) -> None:
        for step in range(1, 40):
            value = str(step)
            await store.update("default", name, _configmap(name, value), CTX)
            acknowledged[name] = value
            await asyncio.sleep(0)

    async def reader() -> None:
        for _ in range(400):
            name = rng.choice(names)
            seen_before = acknowledged[name]
            data = orjson.loads(await store.get_json("default", name))["data"]["k"]
            # Never older than what was acknowledged before the read began.
            assert int(data) >= int(seen_before)
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(n) for n in names), reader(), reader())
    for name in names:  # quiet now: the newest value, and the second read from memory
        assert orjson.loads(await store.get_json("default", name))["data"]["k"] == "39"
        before = reads_from_storage
        assert orjson.loads(await store.get_json("default", name))["data"]["k"] == "39"
        assert reads_from_storage == before


async def test_an_absence_is_remembered_until_the_key_is_written(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET of a name nothing holds reads storage once; the next one answers 404 from memory,
    and a create (or a create and delete) of that name is seen by the GET after it."""
    backend = store.backend
    reads_from_storage = 0
    real_get = backend.get

    async def counting_get(key: str, **kwargs: object) -> object:
        nonlocal reads_from_storage
        reads_from_storage += 1
        return await real_get(key, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "get", counting_get)

    async def status_of_get() -> int:
        try:
            await store.get_json("default", "later")
        except errors.StatusError as exc:
            return exc.code
        return 200

    assert [await status_of_get(), await status_of_get()] == [404, 404]
    assert reads_from_storage == 1
    await store.create("default", _configmap("later", "one"), CTX)
    assert await status_of_get() == 200
    await store.delete("default", "later", DeleteOptions(), CTX)  # reads the object too
    before = reads_from_storage
    assert [await status_of_get(), await status_of_get()] == [404, 404]
    assert reads_from_storage == before + 1
