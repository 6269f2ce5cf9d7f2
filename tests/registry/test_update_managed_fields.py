"""An update's managedFields: taken where upstream takes them, before mutating admission.

Upstream's update and patch handlers run the field manager as a transformer
ahead of the mutating admission transformer (and ahead of the strategy's
PrepareForUpdate), so what admission adds or changes on an UPDATE is not the
request's manager's (decision 0070). The tests write through a registry
``Store`` whose admission chain holds a test-only plugin stamping a label,
an annotation and a data key on every UPDATE, and compare each entry with
the field manager's answer for the object as sent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kajitori.admission.chain import AdmissionChain, Plugin
from kajitori.api import definitions
from kajitori.machinery.fieldmanager import managers
from kajitori.registry.apps import deployments
from kajitori.registry.core import configmaps
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import Store

Object = dict[str, Any]
STAMP = "admission.test/stamped"


class _Stamper(Plugin):
    """Mutating admission that marks every UPDATE (label, annotation, one data key)."""

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "UPDATE":
            return
        meta = obj["metadata"]
        meta.setdefault("labels", {})[STAMP] = "yes"
        meta.setdefault("annotations", {})[STAMP] = ctx.field_manager
        if "data" in obj:
            obj["data"]["admitted"] = "1"


def _stamped_store(make: Callable[..., Store], info: Any) -> Store:
    store = make(info, watch_cache=None)
    store.admission = AdmissionChain([_Stamper()])
    return store


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return _stamped_store(sqlite_store, configmaps.RESOURCE)


def _configmap(name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "data": {"k": "1"},
    }


def _owned(obj: Object, manager: str) -> Object:
    entries = [e for e in obj["metadata"].get("managedFields", []) if e["manager"] == manager]
    assert len(entries) == 1, entries
    return entries[0]["fieldsV1"]


def _as_sent_answer(old: Object, sent: Object, manager: str) -> list[Object]:
    """The field manager's entries for ``sent`` against the live ``old`` (no admission)."""
    entries = managers.read(old["metadata"]["managedFields"])
    updated = managers.update(
        old,
        sent,
        [e.entry() for e in entries],
        manager=manager,
        api_version="v1",
        schema=definitions.schema_for("", "v1", "ConfigMap"),
        now="T",
    )
    return managers.encode(updated)


def _without_times(entries: list[Object]) -> list[Object]:
    """Entries by manager, without their times (which order them in storage)."""
    bare = [{k: v for k, v in e.items() if k != "time"} for e in entries]
    return sorted(bare, key=lambda e: e["manager"])


async def test_what_admission_adds_on_an_update_is_not_the_updaters(store: Store) -> None:
    created = await store.create("default", _configmap("a"), RequestContext(field_manager="maker"))
    sent = copy.deepcopy(created)
    sent["data"]["k"] = "2"
    sent["metadata"]["labels"]["tier"] = "front"
    updated, _ = await store.update(
        "default", "a", copy.deepcopy(sent), RequestContext(field_manager="editor")
    )
    # Admission's changes are stored ...
    meta = updated["metadata"]
    assert meta["labels"] == {"app": "web", "tier": "front", STAMP: "yes"}
    assert meta["annotations"] == {STAMP: "editor"}
    assert updated["data"] == {"k": "2", "admitted": "1"}
    # ... and owned by nobody: the editor owns what it changed, the maker the rest.
    editor = _owned(updated, "editor")
    assert editor == {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:tier": {}}}}
    maker = _owned(updated, "maker")
    assert maker == {"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
    # Exactly the field manager's answer for the object as sent, as upstream's handler.
    assert _without_times(meta["managedFields"]) == _without_times(
        _as_sent_answer(created, sent, "editor")
    )


async def test_sending_back_what_admission_added_takes_no_ownership_of_it(store: Store) -> None:
    created = await store.create("default", _configmap("b"), RequestContext(field_manager="maker"))
    first, _ = await store.update(
        "default", "b", copy.deepcopy(created), RequestContext(field_manager="editor")
    )
    # The first update changed nothing of its own: admission's stamp has no manager.
    assert [e["manager"] for e in first["metadata"]["managedFields"]] == ["maker"]
    # A client that read the stamped object and sends it back, with one change of its own.
    sent = copy.deepcopy(first)
    sent["data"]["k"] = "3"
    second, _ = await store.update("default", "b", sent, RequestContext(field_manager="editor"))
    assert _owned(second, "editor") == {"f:data": {"f:k": {}}}
    assert second["metadata"]["annotations"] == {STAMP: "editor"}


async def test_a_patch_is_tracked_before_admission_too(store: Store) -> None:
    await store.create("default", _configmap("c"), RequestContext(field_manager="maker"))

    async def patch(current: Object) -> Object:  # what the PATCH handler hands the store
        current["data"]["patched"] = "yes"
        return current

    patched, _ = await store.guaranteed_update(
        "default", "c", patch, RequestContext(field_manager="patcher")
    )
    assert patched["data"] == {"k": "1", "patched": "yes", "admitted": "1"}
    assert _owned(patched, "patcher") == {"f:data": {"f:patched": {}}}


async def test_status_scopes_are_kept_at_the_new_position(
    sqlite_store: Callable[..., Store],
) -> None:
    store = _stamped_store(sqlite_store, deployments.RESOURCE)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    created = await store.create("default", deployment, RequestContext(field_manager="maker"))
    # The main resource: a status change sent with a spec change is neither kept nor owned.
    sent = copy.deepcopy(created)
    sent["spec"]["replicas"] = 2
    sent["status"] = {"replicas": 7}
    updated, _ = await store.update("default", "d", sent, RequestContext(field_manager="scaler"))
    assert updated["spec"]["replicas"] == 2 and updated.get("status", {}).get("replicas") != 7
    assert _owned(updated, "scaler") == {"f:spec": {"f:replicas": {}}}
    # /status: only status is owned, a spec change sent with it is neither kept nor owned.
    sent = copy.deepcopy(updated)
    sent["spec"]["replicas"] = 5
    sent["status"] = {"replicas": 2, "observedGeneration": 2}
    status, _ = await store.update(
        "default", "d", sent, RequestContext(field_manager="ctrl"), subresource="status"
    )
    assert status["spec"]["replicas"] == 2 and status["status"]["replicas"] == 2
    ctrl = [e for e in status["metadata"]["managedFields"] if e["manager"] == "ctrl"]
    assert len(ctrl) == 1 and ctrl[0]["subresource"] == "status"
    assert ctrl[0]["fieldsV1"] == {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}
    # Admission stamped both writes; no entry owns the stamp.
    assert status["metadata"]["labels"] == {STAMP: "yes"}
    for entry in status["metadata"]["managedFields"]:
        assert STAMP not in str(entry["fieldsV1"])
