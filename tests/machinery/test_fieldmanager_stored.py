"""Entries kept as read (``managers.update_stored``) give what decoding and encoding them gives.

The registry keeps a write's managedFields without decoding the entries it
does not touch: ``managers.read`` checks each entry (its digest when seen
before) and ``fieldpath.edited`` changes an entry's tree where its set
changes. These tests hold that path to the general one,
``encode(update(old, new, decode(raw)))``, byte for byte (key order
included): on chains of seeded random writes to pods and objects without a
schema by several managers through both ownership scopes, with entries read
back from JSON, sent out of upstream's order, or malformed. ``edited`` is held
to encoding the edited set on random sets, and ``check`` to ``from_fields_v1``
and the canonical form.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest
from tests.machinery.test_fieldmanager_diff import _edit, _pod, _running

from kajitori.api import definitions
from kajitori.machinery.fieldmanager import fieldpath, managers, typed

STATUS_ONLY = managers.Scope(only=(("f:status",),))
NOT_STATUS = managers.Scope(reset=(("f:status",),))
POD = definitions.schema_for("", "v1", "Pod")


def _ownable(obj: dict[str, Any], schema: Any) -> list[fieldpath.Path]:
    """Every path an update creating ``obj`` would own (leaves, items and granular maps)."""
    return sorted(typed.compare({}, typed.flatten(obj, schema)).added)


def _shuffled(tree: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same set in another key order (valid, not canonical when it differs)."""
    items = list(tree.items())
    rng.shuffle(items)
    return {k: _shuffled(v, rng) for k, v in items}


def _bytes(value: Any) -> bytes:
    return orjson.dumps(value)


# ----- fieldpath: check and edited -------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
def test_an_edited_tree_is_the_encoding_of_the_edited_set(seed: int) -> None:
    rng = random.Random(seed)
    obj = _running(_pod()) if seed % 2 else _pod()
    for _ in range(rng.randrange(0, 4)):
        _edit(obj, rng)
    paths = _ownable(obj, POD) or [("f:a",)]
    have = {p for p in paths if rng.random() < 0.5}
    add = {p for p in paths if rng.random() < 0.3}
    remove = {p for p in paths if rng.random() < 0.3} - add
    tree = fieldpath.to_fields_v1(frozenset(have))
    text = _bytes(tree)
    got = fieldpath.edited(tree, add, remove)
    assert _bytes(got) == _bytes(fieldpath.to_fields_v1(frozenset((have | add) - remove)))
    assert _bytes(tree) == text  # the tree read is never changed
    if (have | add) - remove == have:
        assert got is tree
    else:
        assert fieldpath.check(orjson.loads(_bytes(got))) is True


def test_check_tells_canonical_trees_from_others_and_refuses_malformed_ones() -> None:
    tree = fieldpath.to_fields_v1(frozenset(_ownable(_running(_pod()), POD)))
    assert fieldpath.check(orjson.loads(_bytes(tree))) is True
    odd = _shuffled(tree, random.Random(1))
    assert _bytes(odd) != _bytes(tree)
    for _ in range(2):  # the second answer is the remembered one
        assert fieldpath.check(copy.deepcopy(odd)) is False
    assert fieldpath.from_fields_v1(odd) == fieldpath.from_fields_v1(tree)
    lone_dot = {"f:a": {".": {}}}  # a member written the long way
    assert fieldpath.check(lone_dot) is False
    for bad in ({"f:a": {"x:b": {}}}, {".": {}}, {"k:[1]": {}}, []):
        for _ in range(2):
            with pytest.raises(fieldpath.FieldsV1Error):
                fieldpath.check(bad)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("x", id="not-a-list"),
        pytest.param([{"manager": "m", "fieldsType": "FieldsV2"}], id="fields-type"),
        pytest.param([{"manager": "m", "operation": "Apply"}] * 2, id="duplicate"),
        pytest.param([{"manager": "m", "fieldsV1": {"bad": {}}}], id="bad-fields"),
        pytest.param([{"manager": "m", "fieldsV1": {"f:a": {"f:b": 1}}}], id="bad-child"),
        pytest.param(["entry"], id="not-an-object"),
    ],
)
def test_read_refuses_what_decode_refuses(raw: Any) -> None:
    with pytest.raises(managers.ManagedFieldsError):
        managers.decode(raw)
    with pytest.raises(managers.ManagedFieldsError):
        managers.read(raw)


# ----- update_stored against update + encode ---------------------------------------

_WRITERS = [
    ("kubelet", STATUS_ONLY, "status"),
    ("controller", NOT_STATUS, ""),
    ("kubectl", NOT_STATUS, ""),
    ("everything", managers.WHOLE, ""),
]


def _general(
    old: dict[str, Any], new: dict[str, Any], raw: Any, writer: tuple[str, Any, str], **kw: Any
) -> list[dict[str, Any]]:
    manager, scope, subresource = writer
    entries = managers.decode(raw)
    updated = managers.update(
        old, new, entries, manager=manager, scope=scope, subresource=subresource, **kw
    )
    return managers.encode(updated)


def _stored(
    old: dict[str, Any], new: dict[str, Any], raw: Any, writer: tuple[str, Any, str], **kw: Any
) -> list[dict[str, Any]]:
    manager, scope, subresource = writer
    entries = managers.read(raw)
    return managers.update_stored(
        old, new, entries, manager=manager, scope=scope, subresource=subresource, **kw
    )


@pytest.mark.parametrize("seed", range(120))
def test_a_chain_of_writes_keeps_the_managed_fields_the_general_path_keeps(seed: int) -> None:
    rng = random.Random(seed)
    schema = None if seed % 5 == 0 else POD  # every fifth object has no schema
    obj = _pod()
    raw = managers.encode(
        managers.update(None, obj, [], manager="creator", api_version="v1", schema=schema, now="t0")
    )
    for step in range(6):
        new = _running(obj) if step == 0 else copy.deepcopy(obj)
        for _ in range(rng.randrange(0, 3)):
            _edit(new, rng)
        if not isinstance(new.get("metadata"), dict):
            new["metadata"] = {}
        if rng.random() < 0.2:  # a client sends the same entries in another key order
            raw = [{**e, "fieldsV1": _shuffled(e["fieldsV1"], rng)} for e in raw]
        writer = rng.choice(_WRITERS)
        kw = {"api_version": rng.choice(["v1", "v1beta1"]), "schema": schema, "now": f"t{step + 1}"}
        read_back = orjson.loads(_bytes(raw))  # as the next write reads them from storage
        expected = _general(obj, new, copy.deepcopy(read_back), writer, **kw)
        got = _stored(obj, new, read_back, writer, **kw)
        assert _bytes(got) == _bytes(expected)
        obj, raw = new, got


def test_a_status_write_leaves_the_creators_entry_as_it_was_read() -> None:
    """The creator's tree is the one read (not decoded and encoded again); the kubelet's is new."""
    old = _pod()
    raw = managers.encode(
        managers.update(
            None,
            old,
            [],
            manager="creator",
            api_version="v1",
            schema=POD,
            now="t0",
            scope=NOT_STATUS,
        )
    )
    read_back = orjson.loads(_bytes(raw))
    stored = managers.read(read_back)
    got = managers.update_stored(
        old,
        _running(old),
        stored,
        manager="kubelet",
        api_version="v1",
        schema=POD,
        now="t1",
        subresource="status",
        scope=STATUS_ONLY,
    )
    assert [e["manager"] for e in got] == ["creator", "kubelet"]
    assert got[0]["fieldsV1"] is read_back[0]["fieldsV1"]
    assert got[0]["time"] == "t0"
    assert "f:phase" in got[1]["fieldsV1"]["f:status"]


def test_a_write_changing_nothing_the_writer_owns_keeps_its_entry_and_time() -> None:
    old = _running(_pod())
    raw = managers.update_stored(
        None, old, [], manager="kubelet", api_version="v1", schema=POD, now="t0", scope=STATUS_ONLY
    )
    again = managers.update_stored(
        old,
        copy.deepcopy(old),
        managers.read(orjson.loads(_bytes(raw))),
        manager="kubelet",
        api_version="v1",
        schema=POD,
        now="t1",
        scope=STATUS_ONLY,
    )
    assert _bytes(again) == _bytes(raw)
    assert again[0]["time"] == "t0"


@pytest.mark.parametrize("seed", range(40))
def test_a_create_entry_is_canonical(seed: int) -> None:
    """What a create writes is read back unchecked: it must be ``to_fields_v1``'s form."""
    rng = random.Random(seed)
    obj = _pod()
    for _ in range(rng.randrange(0, 5)):
        _edit(obj, rng)
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    for scope in (managers.WHOLE, NOT_STATUS, STATUS_ONLY):
        tree = managers.created_fields_v1(obj, POD, scope)
        assert tree is not None
        fields = fieldpath.from_fields_v1(tree)
        assert _bytes(tree) == _bytes(fieldpath.to_fields_v1(fields))
