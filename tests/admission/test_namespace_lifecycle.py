"""NamespaceLifecycle over the shared namespaces lister, and its force-live window.

The plugin reads namespaces through the lister PodSecurity, the webhooks and
the policies share (one watch); storage answers what the lister cannot (not
synced, behind this server's writes, a namespace it does not hold) and, for
30 seconds after a namespace's deletion or update started, the namespace's
state (upstream's force live lookup), even while the lister still shows it
Active. Creates on subresources (binding, token) in a terminating namespace
are refused as upstream refuses them, with the ``NamespaceTerminating`` cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kajitori.admission.lister import StoreLister
from kajitori.admission.plugins import namespace_lifecycle
from kajitori.admission.plugins.namespace_lifecycle import NamespaceLifecycle
from kajitori.admission.plugins.pod_security.admission import PodSecurity
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.machinery import errors

Object = dict[str, Any]
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c0"}}


async def wait_until(predicate: Callable[[], bool], *, timeout: float) -> None:
    """Poll ``predicate`` on the event loop until it holds; AssertionError after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _ns(name: str, phase: str = "Active") -> Object:
    return {"metadata": {"name": name}, "status": {"phase": phase}}


class _Lister:
    """A lister answering from a dict (None: "read storage"), as ``StoreLister`` does."""

    def __init__(self, namespaces: list[Object]) -> None:
        self.objects: dict[str, Object] | None = {n["metadata"]["name"]: n for n in namespaces}

    def cached_get(self, namespace: str, name: str) -> Object | None:
        assert namespace == ""
        return None if self.objects is None else self.objects.get(name)


class _Storage:
    def __init__(self, namespaces: list[Object]) -> None:
        self.objects = {n["metadata"]["name"]: n for n in namespaces}
        self.reads: list[str] = []

    async def get(self, name: str) -> Object:
        self.reads.append(name)
        if name not in self.objects:
            raise errors.not_found(errors.GroupResource("", "namespaces"), name)
        return self.objects[name]


def _plugin(lister: _Lister, storage: _Storage) -> NamespaceLifecycle:
    return NamespaceLifecycle(storage.get, lister)  # type: ignore[arg-type]


async def test_the_lister_answers_and_storage_only_what_it_cannot() -> None:
    storage, lister = _Storage([_ns("a")]), _Lister([_ns("a")])
    plugin = _plugin(lister, storage)
    for _ in range(3):
        assert not await plugin._terminating("a")
    assert storage.reads == []
    # Not held by the lister (created through another server, or missing): storage.
    with pytest.raises(errors.StatusError) as caught:
        await plugin._terminating("missing")
    assert caught.value.code == 404 and storage.reads == ["missing"]
    # Not synced, or behind this server's writes: storage.
    lister.objects = None
    storage.reads.clear()
    assert not await plugin._terminating("a")
    assert storage.reads == ["a"]


async def test_the_force_live_window_outlasts_a_stale_lister(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, lister = _Storage([_ns("a")]), _Lister([_ns("a")])
    plugin = _plugin(lister, storage)
    now = [1000.0]
    monkeypatch.setattr(namespace_lifecycle.time, "monotonic", lambda: now[0])
    # The deletion is written; the lister (a watch of another server, say) still says Active.
    storage.objects["a"] = _ns("a", "Terminating")
    plugin.force_live_lookup("a")
    now[0] += namespace_lifecycle.FORCE_LIVE_LOOKUP_SECONDS - 1
    assert await plugin._terminating("a")
    assert storage.reads == ["a"]
    # Past the window the lister is trusted again (its own view, stale or not).
    now[0] += 2
    storage.reads.clear()
    assert not await plugin._terminating("a")
    assert storage.reads == []
    assert not plugin.forced_live("a")


def _lifecycle(process: APIServerProcess) -> NamespaceLifecycle:
    assert process.registry is not None
    store = process.registry.lookup("", "v1", "configmaps")
    assert store is not None
    return next(p for p in store.admission.plugins if isinstance(p, NamespaceLifecycle))


async def test_the_plugin_reads_the_shared_namespaces_lister(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    plugin = _lifecycle(apiserver)
    assert apiserver.registry is not None
    store = apiserver.registry.lookup("", "v1", "configmaps")
    assert store is not None
    pod_security = next(p for p in store.admission.plugins if isinstance(p, PodSecurity))
    assert isinstance(plugin.namespaces, StoreLister)
    assert plugin.namespaces is pod_security.namespaces  # one watch for both
    reads: list[str] = []
    real_get = plugin.get_namespace

    async def counted(name: str) -> Object:
        reads.append(name)
        return await real_get(name)

    plugin.get_namespace = counted
    await admin.create(rest.CONFIGMAPS, CONFIGMAP, namespace="default")
    lister = plugin.namespaces
    await wait_until(lambda: lister.cached_get("", "default") is not None, timeout=10)
    reads.clear()
    for i in range(3):
        body = {**CONFIGMAP, "metadata": {"name": f"c{i + 1}"}}
        await admin.create(rest.CONFIGMAPS, body, namespace="default")
    assert reads == []


async def test_creates_right_after_a_namespace_delete_are_forbidden(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    plugin = _lifecycle(apiserver)
    await admin.create(rest.CONFIGMAPS, CONFIGMAP, namespace="default")
    # Created a moment ago: the lister is behind this server's write, storage answers.
    await admin.create(
        rest.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}
    )
    await admin.create(rest.CONFIGMAPS, CONFIGMAP, namespace="doomed")
    await admin.create(
        rest.SERVICEACCOUNTS,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
        namespace="doomed",
    )
    await admin.delete(rest.NAMESPACES, "doomed")  # no namespace controller: stays Terminating
    assert plugin.forced_live("doomed")
    with pytest.raises(rest.ApiError) as caught:
        await admin.create(
            rest.CONFIGMAPS, {**CONFIGMAP, "metadata": {"name": "c2"}}, namespace="doomed"
        )
    assert caught.value.code == 403
    assert caught.value.message == (
        'configmaps "c2" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated"
    )
    assert caught.value.status["details"]["causes"] == [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace doomed is being terminated",
            "field": "metadata.namespace",
        }
    ]
    # A create on a subresource is a create in the namespace too.
    token = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    with pytest.raises(rest.ApiError) as refused:
        await admin.request(
            "POST", "/api/v1/namespaces/doomed/serviceaccounts/sa/token", body=token
        )
    assert refused.value.code == 403
    assert refused.value.message == (
        'serviceaccounts "sa" is forbidden: unable to create new content in namespace '
        "doomed because it is being terminated"
    )
    with pytest.raises(rest.ApiError) as missing:
        await admin.create(rest.CONFIGMAPS, CONFIGMAP, namespace="nope")
    assert missing.value.code == 404
