"""The status-write shortcuts of decision 0061 answer what the full paths answer.

* ``typed.diff`` remembers the diff of two lists by their texts: a list diff
  taken again from the memo, under another path, or after the memo is
  cleared, is ``typed.compare(flatten(old), flatten(new))`` for both objects.
  Atomic lists are compared whole without flattening them.
* ``fieldpath.to_fields_v1`` builds a trie and sorts node by node: on random
  sets it gives the tree the former path-sorting encoder gave (kept here as
  the reference), which decodes back to the set and is canonical.
* ``objectmeta.validate_object_meta_update`` skips the parts equal to the
  stored (valid) metadata's (decision 0070): on random edits of valid
  metadata (invalid texts included, drawn so that they recur) the errors are
  those of every validator run on every part, with no remembered texts and
  no per-entry shortcut for managedFields.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from kajitori.api import definitions
from kajitori.machinery import field, objectmeta, shapes
from kajitori.machinery.fieldmanager import fieldpath, typed

POD_SCHEMA = definitions.schema_for("", "v1", "Pod")
Object = dict[str, Any]


# ----- typed.diff: list diffs remembered ---------------------------------------------------


def _condition(rng: random.Random, kind: str) -> Object:
    condition: Object = {"type": kind, "status": rng.choice(["True", "False", True, 1])}
    if rng.random() < 0.5:
        condition["lastTransitionTime"] = rng.choice(["2026-01-01T00:00:00Z", None, 1, 1.0])
    if rng.random() < 0.4:
        condition["reason"] = rng.choice(["A", "B"])
    if rng.random() < 0.1:
        condition["extra"] = {"x": rng.choice([1, 1.0, True, [1, 2]])}
    return condition


def _conditions(rng: random.Random) -> list[Any]:
    kinds = rng.sample(
        ["Ready", "Initialized", "PodScheduled", "ContainersReady"], rng.randint(0, 4)
    )
    items: list[Any] = [_condition(rng, kind) for kind in kinds]
    if items and rng.random() < 0.1:
        items.append(copy.deepcopy(items[0]))  # a duplicate key: compared whole
    if items and rng.random() < 0.05:
        items[0] = {"status": "True"}  # no key: compared whole
    if rng.random() < 0.05:
        items.append("not an object")
    return items


def _status(rng: random.Random) -> Object:
    status: Object = {"phase": rng.choice(["Pending", "Running"]), "conditions": _conditions(rng)}
    if rng.random() < 0.7:
        # Atomic: compared whole (also 1 against 1.0, equal in value).
        status["containerStatuses"] = [
            {
                "name": "c",
                "ready": rng.choice([True, False]),
                "restartCount": rng.choice([0, 1, 1.0]),
            }
            for _ in range(rng.randint(0, 2))
        ]
    if rng.random() < 0.5:
        status["podIPs"] = [{"ip": ip} for ip in rng.sample(["10.0.0.1", "10.0.0.2", "::1"], 2)]
    return status


def _flat_answer(old: Any, new: Any) -> typed.Comparison:
    return typed.compare(typed.flatten(old, POD_SCHEMA), typed.flatten(new, POD_SCHEMA))


@pytest.mark.parametrize("seed", range(6))
def test_remembered_list_diffs_are_the_flat_comparison(seed: int) -> None:
    rng = random.Random(seed)
    # Few distinct statuses, so that most list pairs come back (memo hits).
    statuses = [_status(rng) for _ in range(6)]
    pairs = [(rng.choice(statuses), rng.choice(statuses)) for _ in range(60)]
    shapes.clear_json_memos()
    for old_status, new_status in pairs:
        old, new = {"status": old_status}, {"status": new_status}
        expected = _flat_answer(old, new)
        assert typed.diff(old, new, POD_SCHEMA) == expected
        assert typed.diff(old, new, POD_SCHEMA) == expected  # from the memo


def _ports(rng: random.Random) -> list[Any]:
    ports: list[Any] = [
        {"containerPort": port, "protocol": rng.choice(["TCP", "UDP"]), "name": rng.choice("ab")}
        for port in rng.sample([80, 81, 443, 8080], rng.randint(0, 4))
    ]
    if ports and rng.random() < 0.2:
        ports[0]["containerPort"] = 80.0  # equal to 80, another item
    return ports


@pytest.mark.parametrize("seed", range(4))
def test_one_schema_node_at_several_paths(seed: int) -> None:
    """Two containers' port lists share one schema node: each answer names its own path."""
    rng = random.Random(seed)
    lists = [_ports(rng) for _ in range(4)]
    shapes.clear_json_memos()
    for _ in range(40):
        before, after = rng.choice(lists), rng.choice(lists)
        old = {"spec": {"containers": [{"name": n, "ports": before} for n in ("a", "b")]}}
        new = {"spec": {"containers": [{"name": n, "ports": after} for n in ("a", "b")]}}
        assert typed.diff(old, new, POD_SCHEMA) == _flat_answer(old, new)


def test_a_remembered_list_diff_names_its_own_path() -> None:
    old = {"status": {"conditions": [{"type": "A", "status": "1"}, {"type": "B", "status": "1"}]}}
    new = {"status": {"conditions": [{"type": "A", "status": "2"}, {"type": "C", "status": "1"}]}}
    shapes.clear_json_memos()
    first = typed.diff(old, new, POD_SCHEMA)
    again = typed.diff(copy.deepcopy(old), copy.deepcopy(new), POD_SCHEMA)
    assert first == again == _flat_answer(old, new)
    assert ("f:status", "f:conditions", 'k:{"type":"A"}', "f:status") in again.modified
    assert ("f:status", "f:conditions", 'k:{"type":"C"}') in again.added
    assert ("f:status", "f:conditions", 'k:{"type":"B"}') in again.removed


@pytest.mark.parametrize(
    ("before", "after", "modified"),
    [
        ([{"name": "c", "restartCount": 1}], [{"name": "c", "restartCount": 1.0}], False),
        ([{"name": "c", "restartCount": 1}], [{"name": "c", "restartCount": 2}], True),
        ([{"name": "c"}], [{"name": "c"}, {"name": "d"}], True),
    ],
)
def test_atomic_lists_are_one_leaf(before: list[Any], after: list[Any], modified: bool) -> None:
    old, new = {"status": {"containerStatuses": before}}, {"status": {"containerStatuses": after}}
    found = typed.diff(old, new, POD_SCHEMA)
    assert found == _flat_answer(old, new)
    assert (("f:status", "f:containerStatuses") in found.modified) is modified


# ----- fieldpath.to_fields_v1 -----------------------------------------------------------------


def _reference_fields_v1(paths: frozenset[fieldpath.Path]) -> Object:
    """The former encoder: whole paths in upstream's order, each inserted in turn."""
    root: Object = {}
    childless: set[int] = set()
    for path in sorted(paths, key=lambda p: tuple(map(fieldpath.sort_key, p))):
        node = root
        for element in path:
            child = node.get(element)
            if child is None:
                if id(node) in childless:
                    node["."] = {}
                    childless.discard(id(node))
                child = node[element] = {}
            node = child
        if path:
            childless.add(id(node))
    return root


_ELEMENTS = (
    "f:a",
    "f:b",
    "f:status",
    "f:spec",
    'k:{"name":"x"}',
    'k:{"name":"y"}',
    'k:{"ip":"10.0.0.1"}',
    "v:1",
    'v:"a"',
    "i:2",
    "i:10",
)


def _random_set(rng: random.Random) -> frozenset[fieldpath.Path]:
    paths = set()
    for _ in range(rng.randint(0, 40)):
        paths.add(tuple(rng.choice(_ELEMENTS) for _ in range(rng.randint(0, 4))))
    return frozenset(paths)


@pytest.mark.parametrize("seed", range(4))
def test_to_fields_v1_is_the_canonical_tree(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        paths = _random_set(rng)
        tree = fieldpath._to_fields_v1(paths)
        reference = _reference_fields_v1(paths)
        assert orjson.dumps(tree) == orjson.dumps(reference)  # key order included
        assert fieldpath.from_fields_v1(tree) == paths - {()}
        assert fieldpath.check(tree) is True


# ----- objectmeta: the usual update told without paths -----------------------------------------


def _metadata() -> Object:
    return {
        "name": "web-1",
        "namespace": "default",
        "uid": "u-1",
        "resourceVersion": "7",
        "generation": 2,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"app": "web", "pod-template-hash": "abc"},
        "annotations": {"example.com/a": "b"},
        "finalizers": ["example.com/f"],
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": "rs-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": [
            {
                "manager": "kubelet",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {}},
                "subresource": "status",
            }
        ],
    }


_EDITS: list[tuple[str, Any, Any]] = [
    ("labels", "bad key!", "x"),
    ("labels", "ok", "bad value!"),
    ("labels", "ok", 5),
    ("labels", "x" * 70, "v"),
    ("annotations", "Bad Key!", "x"),
    ("annotations", "UPPER.example.com/x", "v"),
    ("annotations", "big", "x" * (256 * 1024)),
    ("finalizers", None, "unqualified"),
    ("finalizers", None, "kubernetes"),
    ("finalizers", None, "bad name!"),
    ("finalizers", None, 7),
    ("ownerReferences", "apiVersion", ""),
    ("ownerReferences", "apiVersion", "a/b/c"),
    ("ownerReferences", "apiVersion", "v1"),
    ("ownerReferences", "kind", "Event"),
    ("ownerReferences", "uid", ""),
    ("ownerReferences", "controller", 1),
    ("ownerReferences", "second", True),
    ("ownerReferences", "not-a-map", None),
    ("managedFields", "operation", "Patch"),
    ("managedFields", "operation", ""),
    ("managedFields", "fieldsType", "FieldsV2"),
    ("managedFields", "manager", "bad\x00manager"),
    ("managedFields", "manager", "m" * 129),
    ("managedFields", "subresource", "s" * 300),
    ("metadata", "name", "other"),
    ("metadata", "uid", "u-2"),
    ("metadata", "uid", 5),
    ("metadata", "creationTimestamp", "2026-01-01T00:00:00+00:00"),
    ("metadata", "creationTimestamp", "2026-01-02T00:00:00Z"),
    ("metadata", "deletionGracePeriodSeconds", 30),
    ("metadata", "generation", 1),
    ("metadata", "generation", -1),
    ("metadata", "generation", True),
    ("metadata", "resourceVersion", ""),
    ("metadata", "resourceVersion", 7),
    ("metadata", "labels", "not a map"),
    ("metadata", "annotations", ["not", "a", "map"]),
    ("old", "deletionTimestamp", "2026-01-01T00:00:00Z"),
]


def _apply(new: Object, old: Object, edit: tuple[str, Any, Any]) -> None:
    where, key, value = edit
    if where in ("labels", "annotations"):
        new.setdefault(where, {})[key] = value
    elif where == "finalizers":
        new["finalizers"] = [*new.get("finalizers", []), value]
    elif where == "ownerReferences":
        refs = new["ownerReferences"]
        if key == "second":
            refs.append({**refs[0], "name": "web-2", "uid": "rs-2"})
        elif key == "not-a-map":
            refs.append("not a map")
        else:
            refs[0][key] = value
    elif where == "managedFields":
        new["managedFields"][0][key] = value
    elif where == "old":
        old[key] = value
        if value is not None:
            new[key] = value
    else:
        new[key] = value


def _both_ways(
    new: Object, old: Object, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[str]]:
    path = field.Path("metadata")
    fast = [str(e) for e in objectmeta.validate_object_meta_update(new, old, path=path)]
    with monkeypatch.context() as patched:
        patched.setattr(objectmeta, "_plainly_valid_entry", lambda entry: False)
        for memo in ("_VALID_LABEL_KEYS", "_VALID_LABEL_VALUES", "_VALID_ANNOTATION_KEYS"):
            patched.setattr(objectmeta, memo, set())
        errs = objectmeta._validate_update(new, old, path, kube_finalizers=True, trust_stored=False)
        full = [str(e) for e in errs]
    return fast, full


@pytest.mark.parametrize("seed", range(4))
def test_metadata_update_errors_are_the_full_paths(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    plain = 0
    for _ in range(200):
        old = _metadata()
        new = copy.deepcopy(old)
        for edit in rng.sample(_EDITS, rng.choice([0, 0, 1, 1, 2])):
            _apply(new, old, edit)
        fast, full = _both_ways(new, old, monkeypatch)
        assert fast == full, (new, old)
        plain += not full
    assert plain > 20  # the shortcut's own case was met, not only errors


def test_a_part_equal_to_the_stored_one_only_in_python_is_validated() -> None:
    """``1 == True``: two references sent as ``controller: true`` are not the stored 1s."""
    old = _metadata()
    old["ownerReferences"][0]["controller"] = 1  # not a controller to the checks
    old["ownerReferences"].append({**old["ownerReferences"][0], "name": "b", "uid": "b"})
    path = field.Path("metadata")
    assert (
        objectmeta._validate_update(old, old, path, kube_finalizers=True, trust_stored=False) == []
    )
    new = copy.deepcopy(old)
    for ref in new["ownerReferences"]:
        ref["controller"] = True
    assert new == old  # Python's answer
    errs = objectmeta.validate_object_meta_update(new, old, path=path)
    assert [e.field for e in errs] == ["metadata.ownerReferences"]  # two controllers
    assert errs == objectmeta._validate_update(
        new, old, path, kube_finalizers=True, trust_stored=False
    )


def test_a_stored_part_sent_back_is_not_validated_again() -> None:
    """The premise, pinned so the saving is not lost: the stored part passed when written."""
    old = _metadata()
    old["labels"]["bad key!"] = "x"  # cannot be stored through the API
    path = field.Path("metadata")
    full = objectmeta._validate_update(old, old, path, kube_finalizers=True, trust_stored=False)
    assert [e.field for e in full] == ["metadata.labels"]
    assert objectmeta.validate_object_meta_update(copy.deepcopy(old), old, path=path) == []
