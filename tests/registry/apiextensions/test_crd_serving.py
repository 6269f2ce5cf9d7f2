"""CRDs in-process: establishing, serving custom resources, conversion and cleanup."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kajitori.machinery import errors
from kajitori.registry import install
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store
from kajitori.server import crds, openapi
from kajitori.server.apis import APIRegistry
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
CTX = RequestContext(user=UserInfo("admin", ("system:masters",)))

WIDGETS: Object = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {"rule": "self.size <= 10", "message": "size is at most 10"}
                                ],
                                "properties": {
                                    "size": {"type": "integer", "default": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                            },
                        },
                    }
                },
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            },
        ],
    },
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[APIRegistry, crds.CRDController]]:
    """A registry on SQLite with a running CRD controller and OpenAPI documents."""
    backend = SqliteBackend(tmp_path / "db.sqlite")
    await backend.start()
    registry = APIRegistry(install.all_resources(), backend)
    docs = openapi.OpenAPIV3(registry.resources())
    controller = crds.CRDController(registry, docs)
    controller.start()
    await asyncio.wait_for(controller.wait_synced(), 10)
    try:
        yield registry, controller
    finally:
        await controller.stop()
        for store in list(registry.stores.values()):
            await store.stop_watch_cache()
        await backend.close()


def _crd_store(registry: APIRegistry) -> Store:
    store = registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert store is not None
    return store


async def _wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _establish(registry: APIRegistry, crd: Object) -> Store:
    await _crd_store(registry).create("", copy.deepcopy(crd), CTX)
    spec = crd["spec"]
    plural = spec["names"]["plural"]
    store = await _wait_for(lambda: registry.lookup(spec["group"], "v1", plural))
    assert isinstance(store, Store)
    return store


async def test_an_established_crd_is_served_with_its_conditions(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """NamesAccepted and Established become True and both versions appear in discovery."""
    registry, _ = served
    await _establish(registry, WIDGETS)
    crd = await _crd_store(registry).get("", "widgets.example.com")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in crd["status"]["conditions"]}
    assert conditions == {
        "NamesAccepted": ("True", "NoConflicts"),
        "Established": ("True", "InitialNamesAccepted"),
    }
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert registry.api_group("example.com")["preferredVersion"]["version"] == "v1"
    resources = registry.api_resource_list("example.com", "v1")["resources"]
    assert [(r["name"], r.get("shortNames")) for r in resources] == [
        ("widgets", ["wd"]),
        ("widgets/status", None),
    ]


async def test_custom_resources_are_defaulted_pruned_and_validated(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """Defaults fill absent fields; bad values and CEL failures are 422s with field paths."""
    registry, _ = served
    store = await _establish(registry, WIDGETS)
    created = await store.create(
        "default",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}, "spec": {}},
        CTX,
    )
    assert created["spec"] == {"size": 1}
    assert created["metadata"]["generation"] == 1
    bad = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "b"},
        "spec": {"size": 11, "color": "pink"},
    }
    with pytest.raises(errors.StatusError) as caught:
        await store.create("default", bad, CTX)
    assert caught.value.code == 422
    assert caught.value.message.endswith(
        '"b" is invalid: [spec.color: Unsupported value: "pink": '
        'supported values: "red", "blue", spec: Invalid value: "object": size is at most 10]'
    )


async def test_status_is_written_only_through_the_subresource(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """The main endpoint keeps the stored status; /status keeps the spec and the generation."""
    registry, _ = served
    store = await _establish(registry, WIDGETS)
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {}}
    created = await store.create("default", {**obj, "status": {"ready": True}}, CTX)
    assert "status" not in created
    with_status = {**copy.deepcopy(created), "status": {"ready": True}, "spec": {"size": 5}}
    updated, _ = await store.update("default", "s", with_status, CTX, subresource="status")
    assert (updated["status"], updated["spec"], updated["metadata"]["generation"]) == (
        {"ready": True},
        {"size": 1},
        1,
    )
    spec_change = {**copy.deepcopy(updated), "spec": {"size": 3}, "status": {}}
    updated, _ = await store.update("default", "s", spec_change, CTX)
    assert (updated["status"], updated["metadata"]["generation"]) == ({"ready": True}, 2)


async def test_every_served_version_reads_the_same_objects(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """Conversion None: a v1beta1 read shows the v1 object with apiVersion v1beta1."""
    registry, _ = served
    store = await _establish(registry, WIDGETS)
    await store.create(
        "default",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "m"}, "spec": {}},
        CTX,
    )
    beta = registry.lookup("example.com", "v1beta1", "widgets")
    assert beta is not None
    read = await beta.get("default", "m")
    assert (read["apiVersion"], read["spec"]) == ("example.com/v1beta1", {"size": 1})
    raw = await registry.backend.get("/registry/example.com/widgets/default/m")
    assert raw[1] is not None
    assert orjson.loads(raw[1].value)["apiVersion"] == "example.com/v1"


async def test_a_taken_plural_is_not_accepted(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """A second CRD with the same plural in the group gets PluralConflict and is not served."""
    registry, controller = served
    await _establish(registry, WIDGETS)
    other = copy.deepcopy(WIDGETS)
    other["metadata"]["name"] = "widgets.example.com"
    other["spec"]["names"] = {"plural": "gadgets", "kind": "Widget"}
    other["metadata"]["name"] = "gadgets.example.com"
    await _crd_store(registry).create("", other, CTX)

    def names_accepted() -> Any:
        crd = controller.objects.get("gadgets.example.com", {})
        for condition in (crd.get("status") or {}).get("conditions", []):
            if condition["type"] == "NamesAccepted":
                return condition
        return None

    condition = await _wait_for(names_accepted)
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "KindConflict",
        '"Widget" is already in use',
    )
    assert registry.lookup("example.com", "v1", "gadgets") is None


async def test_deleting_a_crd_deletes_its_objects_first(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """The CRD is marked Terminating, its objects go, then the CRD and its endpoints."""
    registry, _ = served
    store = await _establish(registry, WIDGETS)
    for name in ("x", "y"):
        obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}}
        await store.create("default", obj, CTX)
    result = await _crd_store(registry).delete("", "widgets.example.com", DeleteOptions(), CTX)
    assert result.obj["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert {c["type"] for c in result.obj["status"]["conditions"]} >= {"Terminating"}
    await _wait_for(lambda: registry.lookup("example.com", "v1", "widgets") is None)
    listed = await _crd_store(registry).list("", ListOptions())
    assert listed.items == []
    _, count = await registry.backend.count("/registry/example.com/widgets/")
    assert count == 0


async def test_a_terminating_crd_refuses_creates_until_its_objects_are_gone(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """An object held by a finalizer keeps the CRD terminating; creates are then 405s."""
    registry, _ = served
    store = await _establish(registry, WIDGETS)
    held = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {},
    }
    await store.create("default", held, CTX)
    await _crd_store(registry).delete("", "widgets.example.com", DeleteOptions(), CTX)
    await _wait_for(lambda: getattr(store.info.strategy, "terminating", False))
    fresh = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "new"}}
    with pytest.raises(errors.StatusError) as caught:
        await store.create("default", fresh, CTX)
    assert (caught.value.code, caught.value.message) == (
        405,
        "create not allowed while custom resource definition is terminating",
    )
    marked: list[Object] = []

    async def poll_marked() -> None:
        while not marked:
            current = await store.get("default", "held")
            if current["metadata"].get("deletionTimestamp"):
                marked.append(current)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll_marked(), 5)
    current = marked[0]
    assert registry.lookup("example.com", "v1", "widgets") is store
    current["metadata"]["finalizers"] = []
    await store.update("default", "held", current, CTX)
    await _wait_for(lambda: registry.lookup("example.com", "v1", "widgets") is None)


async def test_stored_crds_are_served_again_after_a_restart(tmp_path: Path) -> None:
    """A new controller over the same storage serves established CRDs before it reports synced."""
    backend = SqliteBackend(tmp_path / "db.sqlite")
    await backend.start()
    try:
        first = APIRegistry(install.all_resources(), backend)
        controller = crds.CRDController(first)
        controller.start()
        await asyncio.wait_for(controller.wait_synced(), 10)
        await _establish(first, WIDGETS)
        await controller.stop()
        second = APIRegistry(install.all_resources(), backend)
        docs = openapi.OpenAPIV3(second.resources())
        restarted = crds.CRDController(second, docs)
        restarted.start()
        await asyncio.wait_for(restarted.wait_synced(), 10)
        assert second.lookup("example.com", "v1", "widgets") is not None
        document = docs.document("apis/example.com/v1")
        assert document is not None
        schemas = orjson.loads(document)["components"]["schemas"]
        assert "com.example.v1.Widget" in schemas
        assert "apis/example.com/v1" in docs.index()["paths"]
        await restarted.stop()
        for store in [*first.stores.values(), *second.stores.values()]:
            await store.stop_watch_cache()
    finally:
        await backend.close()


async def test_changing_a_crd_changes_what_is_served(
    served: tuple[APIRegistry, crds.CRDController],
) -> None:
    """Unserving a version removes its endpoint; the other keeps serving the same objects."""
    registry, _ = served
    await _establish(registry, WIDGETS)
    crd = await _crd_store(registry).get("", "widgets.example.com")
    crd["spec"]["versions"][1]["served"] = False
    await _crd_store(registry).update("", "widgets.example.com", crd, CTX)
    await _wait_for(lambda: registry.lookup("example.com", "v1beta1", "widgets") is None)
    assert registry.lookup("example.com", "v1", "widgets") is not None
    assert registry.group_versions()["example.com"] == ["v1"]
