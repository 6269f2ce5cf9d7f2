"""The field ownership engine: FieldsV1, schema-driven field sets, update and apply rules."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.machinery.fieldmanager import fieldpath, managers, typed

DEPLOYMENT = definitions.schema_for("apps", "v1", "Deployment")
CONFIGMAP = definitions.schema_for("", "v1", "ConfigMap")
POD = definitions.schema_for("", "v1", "Pod")


def cm(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}


def dep(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": list(containers)}}},
    }


def apply_cm(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    entries: list[managers.Entry],
    manager: str = "kubectl",
    *,
    force: bool = False,
) -> tuple[dict[str, Any], list[managers.Entry]]:
    return managers.apply(
        live,
        config,
        entries,
        manager=manager,
        force=force,
        api_version="v1",
        schema=CONFIGMAP,
        now="2026-01-01T00:00:00Z",
    )


def owned(entries: list[managers.Entry]) -> dict[str, Any]:
    return {e.manager: fieldpath.to_fields_v1(e.fields) for e in entries}


# ----- FieldsV1 -------------------------------------------------------------------


def test_fields_v1_marks_members_with_children_by_a_dot_and_orders_elements() -> None:
    """Fields sort before keys, values and indexes; a member with children gets ".": {}."""
    paths = {
        ("f:spec", "f:containers", 'k:{"name":"a"}'),
        ("f:spec", "f:containers", 'k:{"name":"a"}', "f:image"),
        ("f:metadata", "f:finalizers", 'v:"x"'),
        ("f:spec", "f:replicas"),
    }
    encoded = fieldpath.to_fields_v1(paths)
    assert list(encoded) == ["f:metadata", "f:spec"]
    assert encoded["f:spec"] == {
        "f:containers": {'k:{"name":"a"}': {".": {}, "f:image": {}}},
        "f:replicas": {},
    }
    assert fieldpath.from_fields_v1(encoded) == frozenset(paths)


@pytest.mark.parametrize(
    "tree",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"x:name": {}}, id="unknown-element-kind"),
        pytest.param({"f:a": 1}, id="non-object-child"),
        pytest.param({"k:[1]": {}}, id="key-not-an-object"),
        pytest.param({"i:x": {}}, id="bad-index"),
        pytest.param({".": {}}, id="dot-at-root"),
    ],
)
def test_malformed_fields_v1_is_refused(tree: Any) -> None:
    """Invalid FieldsV1 raises rather than being half-read."""
    with pytest.raises(fieldpath.FieldsV1Error):
        fieldpath.from_fields_v1(tree)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param(("f:data", "f:key"), ".data.key", id="fields"),
        pytest.param(
            ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:name"),
            '.spec.ports[port=80,protocol="TCP"].name',
            id="keys",
        ),
        pytest.param(
            ("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]', id="value"
        ),
        pytest.param(("f:args", "i:2"), ".args[2]", id="index"),
    ],
)
def test_paths_render_as_upstream_prints_them_in_conflicts(path: fieldpath.Path, text: str) -> None:
    """Conflict messages name fields in smd's path syntax."""
    assert fieldpath.render(path) == text


# ----- structural markers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(POD.field("spec").field("containers"), ("map", ("name",)), id="list-map-keys"),
        pytest.param(
            POD.field("spec").field("containers").items().field("ports"),
            ("map", ("containerPort", "protocol")),
            id="compound-keys",
        ),
        pytest.param(POD.field("metadata").field("finalizers"), ("set", ()), id="set"),
        pytest.param(
            POD.field("spec").field("containers").items().field("args"), ("atomic", ()), id="atomic"
        ),
    ],
)
def test_list_kinds_come_from_the_schema(
    schema: Any, expected: tuple[str, tuple[str, ...]]
) -> None:
    """x-kubernetes-list-type decides; patch merge keys are the fallback."""
    assert typed.list_kind(schema) == expected


def test_patch_merge_key_makes_a_list_associative_without_a_list_type() -> None:
    """Upstream's schema conversion: merge strategy + merge key → map keyed by it."""
    from kajitori.machinery.schema import SchemaNode

    node = SchemaNode(
        {
            "type": "array",
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "ip",
        },
        {},
    )
    assert typed.list_kind(node) == ("map", ("ip",))


def test_a_field_set_owns_leaves_and_list_items_but_not_maps_or_structs() -> None:
    """Apply sets: list items carry ".", maps and structs are only containers."""
    flat = typed.flatten(
        dep({"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}), DEPLOYMENT
    )
    encoded = fieldpath.to_fields_v1(typed.field_set(flat))
    containers = encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {
        'k:{"name":"web"}': {
            ".": {},
            "f:image": {},
            "f:name": {},
            "f:ports": {
                'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}
            },
        }
    }


def test_duplicate_keys_in_an_applied_configuration_are_refused() -> None:
    """Two containers named alike cannot be owned apart."""
    with pytest.raises(typed.TypedError, match=r'duplicate entries for key \[name="a"\]'):
        typed.flatten(dep({"name": "a"}, {"name": "a"}), DEPLOYMENT, strict=True)


# ----- update ---------------------------------------------------------------------


def test_an_update_owns_what_it_changed_and_takes_it_from_others() -> None:
    """Changed fields move to the writer; a new map is owned with its "." marker."""
    _, entries = apply_cm(None, cm(a="1", b="1"), [])
    old = cm(a="1", b="1")
    new = cm(a="2", b="1") | {"metadata": {"name": "c", "labels": {"x": "y"}}}
    result = managers.update(
        old, new, entries, manager="kubectl-edit", api_version="v1", schema=CONFIGMAP, now="T"
    )
    assert owned(result) == {
        "kubectl": {"f:data": {"f:b": {}}},
        "kubectl-edit": {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}},
    }


def test_an_update_removing_a_field_drops_it_from_every_manager() -> None:
    """Nobody owns a field that no longer exists."""
    _, entries = apply_cm(None, cm(a="1", b="1"), [])
    result = managers.update(
        cm(a="1", b="1"),
        cm(a="1"),
        entries,
        manager="x",
        api_version="v1",
        schema=CONFIGMAP,
        now="T",
    )
    assert owned(result) == {"kubectl": {"f:data": {"f:a": {}}}}


def test_a_no_op_update_keeps_the_entry_time() -> None:
    """Time moves only when the manager changed something."""
    first = managers.update(
        None, cm(a="1"), [], manager="m", api_version="v1", schema=CONFIGMAP, now="T1"
    )
    again = managers.update(
        cm(a="1"), cm(a="1"), first, manager="m", api_version="v1", schema=CONFIGMAP, now="T2"
    )
    assert [e.time for e in again] == ["T1"]


def test_server_owned_metadata_is_never_tracked() -> None:
    """name, uid, resourceVersion and the like belong to nobody."""
    new = cm(a="1")
    new["metadata"] |= {"uid": "u", "resourceVersion": "5", "generation": 1}
    result = managers.update(
        None, new, [], manager="m", api_version="v1", schema=CONFIGMAP, now="T"
    )
    assert owned(result) == {"m": {"f:data": {".": {}, "f:a": {}}}}


# ----- apply ----------------------------------------------------------------------


def test_one_conflict_is_reported_inline() -> None:
    """Upstream's single-conflict message names manager, version and field."""
    entries = managers.update(
        None,
        cm(key="1"),
        [],
        manager="kubectl-client-side-apply",
        api_version="v1",
        schema=CONFIGMAP,
        now="T",
    )
    with pytest.raises(managers.ApplyConflict) as caught:
        apply_cm(cm(key="1"), cm(key="2"), entries)
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.key'
    )


def test_several_conflicts_are_grouped_by_sorted_manager() -> None:
    """Each manager gets a heading line and one "- path" line per field."""
    _, entries = apply_cm(None, cm(a="1", b="1"), [], "zeta")
    entries = managers.update(
        cm(a="1", b="1"),
        cm(a="1", b="1", c="1"),
        entries,
        manager="alpha",
        api_version="v1",
        schema=CONFIGMAP,
        now="T",
    )
    with pytest.raises(managers.ApplyConflict) as caught:
        apply_cm(cm(a="1", b="1", c="1"), cm(a="2", b="2", c="2"), entries, "me")
    assert str(caught.value) == (
        "Apply failed with 3 conflicts: "
        'conflicts with "alpha" using v1:\n- .data.c\n'
        'conflicts with "zeta":\n- .data.a\n- .data.b'
    )


def test_forcing_moves_ownership_and_applying_an_equal_value_shares_it() -> None:
    """force takes changed fields; an unchanged value stays co-owned without conflict."""
    _, entries = apply_cm(None, cm(a="1", b="1"), [], "first")
    merged, result = apply_cm(cm(a="1", b="1"), cm(a="2", b="1"), entries, "second", force=True)
    assert merged["data"] == {"a": "2", "b": "1"}
    assert owned(result) == {
        "first": {"f:data": {"f:b": {}}},
        "second": {"f:data": {"f:a": {}, "f:b": {}}},
    }


def test_fields_an_applier_stops_applying_are_removed_unless_someone_else_owns_them() -> None:
    """Dropped keys go; a key another manager also owns stays."""
    _, entries = apply_cm(None, cm(mine="1", shared="s"), [], "me")
    _, entries = apply_cm(cm(mine="1", shared="s"), cm(shared="s"), entries, "other")
    merged, result = apply_cm(cm(mine="1", shared="s"), cm(), entries, "me")
    assert merged["data"] == {"shared": "s"}
    assert owned(result)["other"] == {"f:data": {"f:shared": {}}}


def test_the_first_apply_to_an_untracked_object_conflicts_with_before_first_apply() -> None:
    """Fields of an object without managedFields belong to before-first-apply."""
    with pytest.raises(managers.ApplyConflict, match=r'"before-first-apply" using v1: \.data\.a'):
        apply_cm(cm(a="1"), cm(a="2"), [])


def test_kubectl_may_take_fields_client_side_apply_last_applied() -> None:
    """The last-applied annotation lets manager kubectl take those fields without a conflict."""
    live = cm(a="1")
    live["metadata"]["annotations"] = {
        managers.LAST_APPLIED: '{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"1"}}'
    }
    entries = managers.update(
        None,
        live,
        [],
        manager="kubectl-client-side-apply",
        api_version="v1",
        schema=CONFIGMAP,
        now="T",
    )
    merged, _ = apply_cm(live, cm(a="2"), entries, "kubectl")
    assert merged["data"] == {"a": "2"}
    assert '"a":"2"' in merged["metadata"]["annotations"][managers.LAST_APPLIED]
    with pytest.raises(managers.ApplyConflict):
        apply_cm(live, cm(a="2"), entries, "someone-else")


def test_two_appliers_merge_containers_by_name() -> None:
    """An associative list keeps both managers' items, merged field by field."""
    schema_kw: dict[str, Any] = {"api_version": "apps/v1", "schema": DEPLOYMENT, "now": "T"}
    first, entries = managers.apply(
        None, dep({"name": "web", "image": "a"}), [], manager="m1", force=False, **schema_kw
    )
    merged, entries = managers.apply(
        first,
        dep({"name": "side", "image": "b"}, {"name": "web", "image": "a"}),
        entries,
        manager="m2",
        force=False,
        **schema_kw,
    )
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
    again, _ = managers.apply(
        merged, dep({"name": "web", "image": "a"}), entries, manager="m2", force=False, **schema_kw
    )
    assert [c["name"] for c in again["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_entries_round_trip_through_the_wire_form_in_upstreams_order() -> None:
    """Appliers come before updaters; decode(encode(x)) is x."""
    _, entries = apply_cm(None, cm(a="1"), [], "z-applier")
    entries = managers.update(
        cm(a="1"),
        cm(a="1", b="2"),
        entries,
        manager="a-updater",
        api_version="v1",
        schema=CONFIGMAP,
        now="2020-01-01T00:00:00Z",
    )
    wire = managers.encode(entries)
    assert [(w["manager"], w["operation"]) for w in wire] == [
        ("z-applier", "Apply"),
        ("a-updater", "Update"),
    ]
    assert wire[1] == {
        "manager": "a-updater",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2020-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:b": {}}},
    }
    assert sorted(managers.decode(wire), key=lambda e: e.manager) == sorted(
        entries, key=lambda e: e.manager
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("x", id="not-a-list"),
        pytest.param(
            [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV2"}], id="fields-type"
        ),
        pytest.param(
            [{"manager": "m", "operation": "Apply"}, {"manager": "m", "operation": "Apply"}],
            id="duplicate",
        ),
        pytest.param([{"manager": "m", "fieldsV1": {"bad": {}}}], id="bad-fields"),
    ],
)
def test_undecodable_managed_fields_are_refused(raw: Any) -> None:
    """The caller then falls back to the stored entries, as upstream."""
    with pytest.raises(managers.ManagedFieldsError):
        managers.decode(raw)


def test_an_update_adding_an_associative_list_owns_the_list_and_each_item() -> None:
    """Newly set status conditions: the list and every item carry "." (as upstream shows)."""
    old = dep({"name": "web"})
    new = dep({"name": "web"}) | {
        "status": {"conditions": [{"type": "Available", "status": "True"}]}
    }
    result = managers.update(
        old, new, [], manager="ctrl", api_version="apps/v1", schema=DEPLOYMENT, now="T"
    )
    assert owned(result)["ctrl"] == {
        "f:status": {
            "f:conditions": {
                ".": {},
                'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}},
            }
        }
    }
