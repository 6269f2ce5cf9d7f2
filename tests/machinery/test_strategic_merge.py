"""Strategic merge patch driven by the upstream 1.37 OpenAPI patch metadata."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.machinery import patching


def _deployment(*containers: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
        "spec": {
            "replicas": 2,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {"spec": {"containers": list(containers), **pod_spec}},
        },
    }


def _pod_spec(patch: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": patch}}}


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


APP = {
    "name": "app",
    "image": "v1",
    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
}
SIDECAR = {"name": "sidecar", "image": "proxy:1", "ports": [{"containerPort": 8080}]}


def _apply(doc: dict[str, Any], patch: dict[str, Any], kind: str = "Deployment") -> dict[str, Any]:
    group, version = ("apps", "v1") if kind == "Deployment" else ("", "v1")
    schema = definitions.schema_for(group, version, kind)
    before = copy.deepcopy((doc, patch))
    result = patching.apply_strategic_merge_patch(doc, patch, schema)
    assert (doc, patch) == before, "inputs must not be mutated"
    return result


def test_container_is_patched_by_name_and_others_are_kept() -> None:
    """``kubectl patch -p containers:[{name: app, image: v2}]`` changes only that container."""
    result = _apply(
        _deployment(APP, SIDECAR), _pod_spec({"containers": [{"name": "app", "image": "v2"}]})
    )
    assert _containers(result) == [{**APP, "image": "v2"}, SIDECAR]


def test_new_container_without_order_directive_is_placed_first() -> None:
    """An item the server lacks goes before the remaining server-only items, as upstream."""
    result = _apply(
        _deployment(APP, SIDECAR), _pod_spec({"containers": [{"name": "init", "image": "x"}]})
    )
    assert [c["name"] for c in _containers(result)] == ["init", "app", "sidecar"]


def test_patch_delete_directive_removes_a_container() -> None:
    """A list element with ``$patch: delete`` drops the element with that merge key."""
    result = _apply(
        _deployment(APP, SIDECAR),
        _pod_spec({"containers": [{"name": "sidecar", "$patch": "delete"}]}),
    )
    assert _containers(result) == [APP]


def test_set_element_order_reorders_and_keeps_server_only_items() -> None:
    """``$setElementOrder`` orders named items; a server-only item stays ahead of later ones."""
    extra = {"name": "extra", "image": "e"}
    patch = _pod_spec(
        {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}, {"name": "app"}],
            "containers": [{"name": "new", "image": "n"}],
        }
    )
    result = _apply(_deployment(APP, extra, SIDECAR), patch)
    assert [c["name"] for c in _containers(result)] == ["extra", "sidecar", "new", "app"]


def test_kubectl_apply_style_patch_deletes_and_adds_in_one_go() -> None:
    """Delete + add + order in one patch lands the new item where upstream puts it."""
    extra = {"name": "extra", "image": "e"}
    patch = _pod_spec(
        {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "n"}, {"name": "app", "$patch": "delete"}],
        }
    )
    result = _apply(_deployment(APP, SIDECAR, extra), patch)
    assert [c["name"] for c in _containers(result)] == ["sidecar", "extra", "new"]


ENV_AND_PORT_CASES = [
    pytest.param(
        {"containers": [{"name": "app", "env": [{"name": "B", "value": "two"}]}]},
        [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}],
        "env",
        id="env-merged-by-name",
    ),
    pytest.param(
        {"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]},
        [{"name": "B", "value": "2"}],
        "env",
        id="env-delete-by-name",
    ),
    pytest.param(
        {"containers": [{"name": "sidecar", "ports": [{"containerPort": 8080, "name": "http"}]}]},
        [{"containerPort": 8080, "name": "http"}],
        "ports",
        id="ports-merged-by-containerPort",
    ),
]


@pytest.mark.parametrize(("pod_patch", "expected", "field"), ENV_AND_PORT_CASES)
def test_nested_lists_merge_by_their_merge_key(
    pod_patch: dict[str, Any], expected: list[Any], field: str
) -> None:
    """env merges by name and ports by containerPort inside the matched container."""
    result = _apply(_deployment(APP, SIDECAR), _pod_spec(pod_patch))
    target = next(c for c in _containers(result) if field in c)
    assert target[field] == expected


def test_volumes_merge_by_name() -> None:
    """Pod volumes (strategy merge,retainKeys) merge by name."""
    volumes = [{"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "cm"}}]
    patch = _pod_spec({"volumes": [{"name": "b", "configMap": {"name": "cm2"}}]})
    result = _apply(_deployment(APP, volumes=volumes), patch)
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "a", "emptyDir": {}},
        {"name": "b", "configMap": {"name": "cm2"}},
    ]


def test_tolerations_without_strategy_are_replaced() -> None:
    """A list without a patch strategy is replaced wholesale."""
    tolerations = [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]
    patch = _pod_spec({"tolerations": [{"key": "c", "operator": "Exists"}]})
    result = _apply(_deployment(APP, tolerations=tolerations), patch)
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "c", "operator": "Exists"}]


FINALIZER_CASES = [
    pytest.param({"finalizers": ["c", "a", "c"]}, ["c", "a", "b"], id="merged-as-a-set"),
    pytest.param(
        {"$deleteFromPrimitiveList/finalizers": ["a", "zz"]}, ["b"], id="delete-from-primitive-list"
    ),
    pytest.param(
        {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]},
        ["b", "c", "a"],
        id="set-element-order",
    ),
    pytest.param({"finalizers": None}, None, id="null-deletes-the-field"),
]


@pytest.mark.parametrize(("meta_patch", "expected"), FINALIZER_CASES)
def test_finalizers_merge_as_a_set(meta_patch: dict[str, Any], expected: Any) -> None:
    """metadata.finalizers has strategy merge in upstream's schema: a set of strings."""
    doc = _deployment(APP)
    doc["metadata"]["finalizers"] = ["a", "b"]
    result = _apply(doc, {"metadata": meta_patch})
    assert result["metadata"].get("finalizers") == expected


def test_retain_keys_clears_rolling_update_when_switching_to_recreate() -> None:
    """``$retainKeys`` on the Deployment strategy drops keys it does not list."""
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    result = _apply(_deployment(APP), patch)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_patch_key_missing_from_retain_keys_is_a_bad_request() -> None:
    """A non-null key absent from ``$retainKeys`` is refused with 400."""
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}
    with pytest.raises(patching.PatchError) as caught:
        _apply(_deployment(APP), patch)
    assert (caught.value.code, caught.value.message) == (400, "invalid patch format of retainKeys")


def test_null_deletes_a_label_and_other_labels_stay() -> None:
    """Maps merge key by key; ``null`` deletes."""
    result = _apply(_deployment(APP), {"metadata": {"labels": {"tier": None, "track": "canary"}}})
    assert result["metadata"]["labels"] == {"app": "web", "track": "canary"}


MAP_DIRECTIVE_CASES = [
    pytest.param(
        {"$patch": "replace", "only": "this"}, {"only": "this"}, id="replace-replaces-the-map"
    ),
    pytest.param({"$patch": "delete"}, {}, id="delete-empties-the-map"),
]


@pytest.mark.parametrize(("labels_patch", "expected"), MAP_DIRECTIVE_CASES)
def test_patch_directive_in_a_map(labels_patch: dict[str, Any], expected: Any) -> None:
    """``$patch`` inside a map replaces or empties that map."""
    result = _apply(_deployment(APP), {"metadata": {"labels": labels_patch}})
    assert result["metadata"]["labels"] == expected


def test_list_replace_directive_makes_the_patch_the_list() -> None:
    """A ``$patch: replace`` element makes the other elements the whole list."""
    patch = _pod_spec({"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]})
    result = _apply(_deployment(APP, SIDECAR), patch)
    assert _containers(result) == [{"name": "only", "image": "o"}]


def test_nulls_in_added_values_are_dropped() -> None:
    """A value added where nothing was loses its null members, recursively."""
    patch = {"spec": {"template": {"metadata": {"annotations": {"a": "1", "b": None}}}}}
    result = _apply(_deployment(APP), patch)
    assert result["spec"]["template"]["metadata"] == {"annotations": {"a": "1"}}


SMP_ERRORS = [
    pytest.param(
        _pod_spec({"containers": [{"image": "v2"}]}),
        500,
        "map: map[image:v2] does not contain declared merge key: name",
        id="missing-merge-key",
    ),
    pytest.param(
        {"metadata": {"labels": {"$patch": "merge"}}},
        500,
        "unknown patch type: merge in map: map[$patch:merge]",
        id="merge-directive-in-map",
    ),
    pytest.param(
        _pod_spec({"containers": [{"name": "app", "$patch": "frob"}]}),
        500,
        "unknown patch type: frob in map: map[$patch:frob name:app]",
        id="unknown-directive-in-list",
    ),
    pytest.param(
        _pod_spec({"containers": [{"name": "app", "$patch": "merge"}]}),
        500,
        "merging lists cannot yet be specified in the patch",
        id="merge-directive-in-list",
    ),
    pytest.param(
        {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
        400,
        "invalid patch format of primitive list",
        id="bad-delete-list-key",
    ),
    pytest.param(
        {"metadata": {"$setElementOrder/finalizers": ["x"], "finalizers": ["a", "b"]}},
        500,
        "The order in patch list:\n[a b]\n doesn't match $setElementOrder list:\n[x]\n",
        id="order-does-not-cover-patch-items",
    ),
]


@pytest.mark.parametrize(("patch", "code", "message"), SMP_ERRORS)
def test_invalid_strategic_patch_raises_upstream_error(
    patch: dict[str, Any], code: int, message: str
) -> None:
    """Bad directives and missing merge keys fail with upstream's text and status."""
    doc = _deployment(APP, SIDECAR)
    doc["metadata"]["finalizers"] = ["a"]
    with pytest.raises(patching.PatchError) as caught:
        _apply(doc, patch)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_plain_error_renders_as_reasonless_500() -> None:
    """Upstream returns strategic merge errors raw: a 500 whose message is the error."""
    error = patching.PatchError("map: map[image:v2] does not contain declared merge key: name")
    status = error.to_status_error()
    assert (status.code, status.reason, status.message) == (500, "", error.message)


def test_list_of_lists_is_unprocessable() -> None:
    """Merging lists of lists is refused with 422, as upstream does."""
    doc = {"metadata": {"finalizers": [["a"]]}}
    with pytest.raises(patching.PatchError) as caught:
        _apply(doc, {"metadata": {"finalizers": [["b"]]}})
    assert (caught.value.code, caught.value.message) == (422, "lists of lists are not supported")


def test_without_schema_lists_are_replaced_and_maps_merge() -> None:
    """With no schema (None) the patch behaves as a JSON merge patch."""
    doc = {"spec": {"items": [1, 2], "keep": True, "drop": 1}}
    patch = {"spec": {"items": [3], "drop": None}}
    result = patching.apply_strategic_merge_patch(doc, patch, None)
    assert result == {"spec": {"items": [3], "keep": True}}


def test_service_ports_merge_by_port() -> None:
    """Service spec.ports merge by ``port``, per the core/v1 schema."""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]},
    }
    result = _apply(svc, {"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}, kind="Service")
    assert result["spec"]["ports"] == [
        {"port": 80, "targetPort": 8080},
        {"port": 443, "targetPort": 9443},
    ]


def test_field_metadata_is_remembered_per_schema_node_field_and_listness() -> None:
    """``field_meta`` answers as a fresh lookup does, for each (node, field, list or not)."""
    from kajitori.machinery.patching import strategic

    pod = definitions.schema_for("", "v1", "Pod")
    status = strategic.field_meta(pod, "status", is_list=False).schema
    spec = strategic.field_meta(pod, "spec", is_list=False).schema
    cases = [
        (status, "conditions", True),
        (status, "conditions", False),
        (status, "containerStatuses", True),
        (status, "podIPs", True),
        (spec, "containers", True),
        (spec, "tolerations", True),
        (spec, "nodeSelector", False),
        (pod, "metadata", False),
        (None, "anything", True),
    ]
    for schema, key, is_list in cases * 2:
        remembered = strategic.field_meta(schema, key, is_list=is_list)
        fresh = strategic._field_meta(schema, key, is_list=is_list)
        assert (remembered.schema, remembered.strategy, remembered.merge_key) == (
            fresh.schema,
            fresh.strategy,
            fresh.merge_key,
        ), (key, is_list)
    conditions = strategic.field_meta(status, "conditions", is_list=True)
    assert (conditions.strategy, conditions.merge_key) == ("merge", "type")
    # The list's element schema, not the list's own.
    assert conditions.schema is not strategic.field_meta(status, "conditions", is_list=False).schema
