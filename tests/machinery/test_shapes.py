"""``machinery.shapes``: which objects share a shape, and the memo keyed by it."""

from __future__ import annotations

from kajitori.machinery import shapes


def _configmap(name: str, value: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": {"app": "x"}}, "data": {"k": value}}


def test_objects_differing_only_in_values_share_a_shape() -> None:
    assert shapes.signature(_configmap("a", "one")) == shapes.signature(_configmap("b", "two"))


def test_keys_nesting_scalar_types_and_key_order_make_the_shape() -> None:
    base = shapes.signature({"a": "x", "b": {"c": 1}})
    assert base is not None
    assert shapes.signature({"a": "x", "b": {"d": 1}}) != base  # another key
    assert shapes.signature({"a": "x", "b": {"c": "1"}}) != base  # another scalar type
    assert shapes.signature({"a": "x", "b": {"c": True}}) != base  # bool is not int
    assert shapes.signature({"a": "x", "b": {"c": None}}) != base
    assert shapes.signature({"a": "x", "b": {"c": 1.5}}) != base
    assert shapes.signature({"a": "x", "b": {}}) != base  # an empty map is a leaf
    assert shapes.signature({"b": {"c": 1}, "a": "x"}) != base  # order: first problem first
    assert shapes.signature({"a": "x", "b": {"c": 7}}) == base  # another int32 value


def test_lists_and_values_outside_int32_have_no_shape() -> None:
    assert shapes.signature({"a": {"b": [1]}}) is None
    assert shapes.signature({"a": 1 << 31}) is None
    assert shapes.signature({"a": -(1 << 31)}) is not None


def test_the_memo_answers_per_schema_and_shape_and_starts_over_when_full() -> None:
    memo = shapes.ShapeMemo(limit=2)
    schema, other = object(), object()
    shape = shapes.signature({"a": "x"})
    assert memo.get(schema, shape) is None
    memo.put(schema, shape, True)
    assert memo.get(schema, shape) is True
    assert memo.get(other, shape) is None  # another schema
    memo.put(schema, None, True)  # no shape: nothing remembered
    assert memo.get(schema, None) is None
    memo.put(other, shape, "b")
    memo.put(schema, shapes.signature({"b": "x"}), "c")  # third entry: the memo starts over
    assert memo.get(schema, shape) is None
    assert memo.get(schema, shapes.signature({"b": "x"})) == "c"
