"""Checks the write path remembers per object shape (``machinery.shapes``) still see every object.

A create's managedFields come from a memo once its shape was seen; the
type check and unknown-field pruning of a request body skip the walk for a
shape that passed before. Each test compares against the full computation
and checks that another shape is still looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.client import rest
from kajitori.machinery import shapes
from kajitori.machinery.fieldmanager import managers
from kajitori.registry.core import configmaps
from kajitori.registry.generic import hooks
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import Store


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return sqlite_store(configmaps.RESOURCE, watch_cache=None)


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "data": data,
    }


def _expected_managed_fields(obj: dict[str, Any], manager: str) -> list[dict[str, Any]]:
    """What the full computation (no memo) gives the object as it was before storage."""
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "resourceVersion")
    }
    entries = managers.update(
        None,
        {**obj, "metadata": meta},
        [],
        manager=manager,
        api_version="v1",
        schema=definitions.schema_for("", "v1", "ConfigMap"),
        now=obj["metadata"]["managedFields"][0]["time"],
    )
    return managers.encode(entries)


async def test_creates_of_one_shape_get_the_fields_the_full_computation_gives(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hooks, "_CREATE_FIELDS", shapes.ShapeMemo())
    stored = []
    for i, manager in enumerate(["kubectl", "kubectl", "other"]):
        ctx = RequestContext(field_manager=manager)
        obj = await store.create("default", _configmap(f"c{i}", {"k": str(i)}), ctx)
        stored.append(obj)
        managed = obj["metadata"]["managedFields"]
        assert managed == _expected_managed_fields(obj, manager)
        assert managed[0]["time"] >= obj["metadata"]["creationTimestamp"]
        assert managed[0]["fieldsV1"] == {
            "f:data": {".": {}, "f:k": {}},
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        }
    # The memo's entries are not shared between objects.
    assert (
        stored[0]["metadata"]["managedFields"][0]["fieldsV1"]
        is not (stored[1]["metadata"]["managedFields"][0]["fieldsV1"])
    )
    # Another shape (another data key) owns its own fields.
    other = await store.create(
        "default", _configmap("d", {"k": "1", "z": "2"}), RequestContext(field_manager="kubectl")
    )
    assert other["metadata"]["managedFields"][0]["fieldsV1"]["f:data"] == {
        ".": {},
        "f:k": {},
        "f:z": {},
    }
    assert await store.get("default", "d") == other


async def test_requested_managed_fields_still_replace_the_computed_ones(store: Store) -> None:
    ctx = RequestContext(field_manager="kubectl")
    await store.create("default", _configmap("a", {"k": "1"}), ctx)  # the shape is known now
    obj = _configmap("b", {"k": "1"})
    obj["metadata"]["managedFields"] = [
        {
            "manager": "mine",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:note": {}}}},
        }
    ]
    created = await store.create("default", obj, ctx)
    # The request's entry keeps what the create did not change; the create's own
    # entry owns what it did: the memo is not used when the request brings entries.
    entries = {e["manager"]: e for e in created["metadata"]["managedFields"]}
    assert set(entries) == {"kubectl", "mine"}
    assert entries["mine"]["fieldsV1"] == {"f:metadata": {"f:annotations": {"f:note": {}}}}
    assert entries["kubectl"]["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}},
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    }


async def test_a_known_shape_does_not_hide_type_errors_or_unknown_fields(
    kajitori_cluster: Any,
) -> None:
    client = kajitori_cluster.rest_client()
    try:
        path = "/api/v1/namespaces/default/configmaps"
        for i in range(2):  # the shape is known from here on
            await client.request("POST", path, body=_configmap(f"shape-{i}", {"k": "v"}))

        with pytest.raises(rest.ApiError) as caught:
            await client.request("POST", path, body=_configmap("shape-int", {"k": 5}))  # type: ignore[dict-item]
        assert caught.value.code == 400
        assert "cannot unmarshal number into Go struct field ConfigMap.data" in caught.value.message

        unknown = _configmap("shape-unknown", {"k": "v"})
        unknown["data2"] = {"k": "v"}
        with pytest.raises(rest.ApiError) as caught:
            await client.request("POST", path, body=unknown, params={"fieldValidation": "Strict"})
        assert caught.value.code == 400
        assert 'unknown field "data2"' in caught.value.message
        # Ignore: the unknown field is dropped, not stored.
        await client.request("POST", path, body=unknown, params={"fieldValidation": "Ignore"})
        stored = await client.request("GET", f"{path}/shape-unknown")
        assert stored["data"] == {"k": "v"}
        assert "data2" not in stored
    finally:
        await client.aclose()
