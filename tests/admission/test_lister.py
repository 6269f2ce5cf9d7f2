"""``admission.lister.StoreLister``: answers from its watch, never behind this server's writes.

Against a real SQLite-backed ``Store`` (with its watch cache), and through an
in-process API server for the plugins that read listers: a LimitRange, a
ServiceAccount and a PriorityClass written just before a pod create apply to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kajitori.admission.lister import StoreLister
from kajitori.client import rest
from kajitori.registry.core import limitranges
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
PRIORITY_CLASSES = rest.Resource("scheduling.k8s.io", "v1", "priorityclasses", False)


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return sqlite_store(limitranges.RESOURCE)


def _range(name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]},
    }


async def _until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_the_lister_answers_from_its_watch_and_never_behind_a_write(store: Store) -> None:
    ctx = RequestContext()
    await store.create("a", _range("old"), ctx)
    lister = StoreLister(lambda: store, name="test limitranges watch")
    assert lister.cached_list("a") is None  # not synced yet: the caller reads storage
    await _until(lambda: lister.cached_list("a") is not None)
    assert [r["metadata"]["name"] for r in lister.cached_list("a") or []] == ["old"]
    assert lister.cached_list("b") == []
    assert lister.cached_get("a", "old") is not None
    assert lister.cached_get("a", "nope") is None

    await store.create("a", _range("new"), ctx)
    # Written through this store: no answer from the lister until its watch shows the
    # write (on SQLite the watch may already have it when the create returns).
    listed = lister.cached_list("a")
    assert listed is None or len(listed) == 2
    await _until(lambda: lister.cached_list("a") is not None)
    assert sorted(r["metadata"]["name"] for r in lister.cached_list("a") or []) == ["new", "old"]

    await store.delete("a", "old", DeleteOptions(), ctx)
    assert lister.cached_get("a", "old") is None  # gone, or the lister is behind the delete
    await _until(lambda: lister.cached_get("a", "new") is not None)
    assert lister.cached_get("a", "old") is None
    await lister.stop()


def _pod(name: str, **spec: Any) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


async def test_objects_written_just_before_a_pod_apply_to_it(admin: rest.Client) -> None:
    ns = "lister-writes"
    await admin.create(rest.NAMESPACES, {"metadata": {"name": ns}})
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, account, namespace=ns)
    await admin.create(rest.PODS, _pod("first"), namespace=ns)  # the listers are running now
    for i in range(3):
        # Each written right before the create that needs it.
        await admin.create(rest.LIMITRANGES, _range(f"r{i}"), namespace=ns)
        builder = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa{i}"}}
        await admin.create(rest.SERVICEACCOUNTS, builder, namespace=ns)
        priority = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": f"lister-p{i}"},
            "value": 1000 + i,
        }
        await admin.create(PRIORITY_CLASSES, priority)
        pod = _pod(f"p{i}", serviceAccountName=f"sa{i}", priorityClassName=f"lister-p{i}")
        created = await admin.create(rest.PODS, pod, namespace=ns)
        spec = created["spec"]
        assert spec["containers"][0]["resources"]["limits"] == {"cpu": "1"}
        assert spec["serviceAccountName"] == f"sa{i}"
        assert spec["priority"] == 1000 + i
