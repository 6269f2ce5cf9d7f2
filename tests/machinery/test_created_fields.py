"""A create's managedFields from one walk (``managers.created_fields_v1``) equal the general path's.

The general path flattens the object, compares it with nothing and encodes
the field set; the create path builds the FieldsV1 tree in one walk. Each
case compares the two on objects with every kind of list (map lists with
defaulted keys, sets, atomic lists, duplicates, items that are not objects),
empty and atomic values, stray managedFields and the three ownership scopes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.machinery.fieldmanager import managers

STATUS_ONLY = managers.Scope(only=(("f:status",),))
NOT_STATUS = managers.Scope(reset=(("f:status",),))
SCOPES = [managers.WHOLE, STATUS_ONLY, NOT_STATUS]


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": "default",
            "labels": {"app": "web"},
            "annotations": {},
            "finalizers": ["a/b", "c/d"],
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1"}
            ],
            "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "args": ["sleep", "1"],
                    "ports": [{"containerPort": 80}, {"containerPort": 81, "protocol": "UDP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {}}],
                    "resources": {"requests": {"cpu": "10m"}},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                }
            ],
            "initContainers": [],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"},
            "terminationGracePeriodSeconds": 0,
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None}],
            "podIPs": [{"ip": "10.0.0.1"}],
        },
    }


def _variants() -> list[tuple[str, str, dict[str, Any]]]:
    pod = _pod()
    duplicate = copy.deepcopy(pod)
    duplicate["spec"]["containers"].append(copy.deepcopy(duplicate["spec"]["containers"][0]))
    keyless = copy.deepcopy(pod)
    keyless["spec"]["containers"][0]["env"].append({"value": "no name"})
    not_objects = copy.deepcopy(pod)
    not_objects["spec"]["volumes"] = ["v", "w"]
    odd_meta = copy.deepcopy(pod)
    odd_meta["metadata"]["name"] = {"nested": "x"}
    odd_meta["metadata"]["uid"] = {}
    only_meta = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod["spec"]},
        },
        "status": {},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}], "selector": {}},
    }
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "n"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"x": "y"}},
        "data": {"a": "1", "b": ""},
        "binaryData": {},
    }
    return [
        ("", "Pod", pod),
        ("", "Pod", duplicate),
        ("", "Pod", keyless),
        ("", "Pod", not_objects),
        ("", "Pod", odd_meta),
        ("", "Pod", only_meta),
        ("apps", "Deployment", deployment),
        ("", "Service", service),
        ("", "Namespace", namespace),
        ("", "ConfigMap", configmap),
        ("", "NoSuchKind", copy.deepcopy(pod)),  # no schema: free-form
    ]


def _general(obj: dict[str, Any], schema: Any, scope: managers.Scope) -> dict[str, Any]:
    entries = managers.update(
        None,
        obj,
        [],
        manager="m",
        api_version="v1",
        schema=schema,
        now="2026-01-01T00:00:00Z",
        scope=scope,
    )
    encoded = managers.encode(entries)
    return encoded[0]["fieldsV1"] if encoded else {}


@pytest.mark.parametrize("scope", SCOPES, ids=["whole", "status-only", "not-status"])
@pytest.mark.parametrize("case", range(len(_variants())))
def test_one_walk_gives_the_general_paths_fields(case: int, scope: managers.Scope) -> None:
    group, kind, obj = _variants()[case]
    version = "apps/v1" if group else "v1"
    schema = definitions.schema_for(group, version.split("/")[-1], kind)
    expected = _general(copy.deepcopy(obj), schema, scope)
    before = copy.deepcopy(obj)
    got = managers.created_fields_v1(obj, schema, scope)
    assert obj == before  # the object is not changed
    assert got == expected
    # Key order is part of the encoding (upstream's element order, "." first).
    assert list(_keys(got)) == list(_keys(expected))


def _keys(tree: dict[str, Any], prefix: str = "") -> Any:
    for key, value in tree.items():
        yield prefix + key
        yield from _keys(value, prefix + key + "/")


def test_the_pods_create_entry_owns_lists_by_key_and_not_the_stripped_metadata() -> None:
    schema = definitions.schema_for("", "v1", "Pod")
    fields = managers.created_fields_v1(_pod(), schema)
    assert fields is not None
    containers = fields["f:spec"]["f:containers"]
    assert list(containers) == [".", 'k:{"name":"app"}']
    ports = containers['k:{"name":"app"}']["f:ports"]
    # protocol is part of the key even where the object leaves it to its default
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in ports
    assert "f:name" not in fields["f:metadata"]
    assert "f:managedFields" not in fields["f:metadata"]
    assert fields["f:spec"]["f:tolerations"] == {}  # an atomic list is owned whole


def test_scopes_it_does_not_cover_take_the_general_path() -> None:
    deep = managers.Scope(only=(("f:status", "f:phase"),))
    assert managers.created_fields_v1(_pod(), None, deep) is None


def test_field_sets_decode_and_encode_the_same_when_remembered() -> None:
    from kajitori.machinery.fieldmanager import fieldpath

    tree = {"f:a": {".": {}, "f:b": {}}, "f:c": {'k:{"name":"x"}': {".": {}, "f:v": {}}}}
    first = fieldpath.from_fields_v1(tree)
    assert fieldpath.from_fields_v1(copy.deepcopy(tree)) == first  # remembered
    encoded = fieldpath.to_fields_v1(first)
    again = fieldpath.to_fields_v1(frozenset(first))
    assert encoded == again == tree
    again["f:a"]["f:z"] = {}  # each call hands out its own object
    assert fieldpath.to_fields_v1(first) == tree
    assert fieldpath.from_fields_v1(fieldpath.to_fields_v1(first)) == first
    with pytest.raises(fieldpath.FieldsV1Error):
        fieldpath.from_fields_v1({"x:bad": {}})
    with pytest.raises(fieldpath.FieldsV1Error):
        fieldpath.from_fields_v1({"x:bad": {}})  # errors are not remembered as answers


@pytest.mark.parametrize(
    "tree",
    [
        {"f:b": {}, "f:a": {}},  # out of order
        {"f:a": {".": {}}},  # a "." with nothing beside it
        {"f:a": {"f:b": {}, ".": {}}},  # "." not first
        {"f:a": {"i:10": {}, "i:9": {}}},  # indexes in numeric order
    ],
)
def test_a_set_read_from_an_odd_encoding_is_written_canonically(tree: dict[str, Any]) -> None:
    from kajitori.machinery.fieldmanager import fieldpath

    fields = fieldpath.from_fields_v1(tree)
    expected = fieldpath._to_fields_v1(fields)
    assert list(_keys(expected)) != list(_keys(tree))
    assert fieldpath.to_fields_v1(frozenset(fields)) == expected
    assert list(_keys(fieldpath.to_fields_v1(fields))) == list(_keys(expected))
