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


def test_a_json_memo_keeps_the_recently_used_across_a_turnover() -> None:
    for digest in (False, True):
        memo = shapes.JsonMemo(limit=2, digest=digest)
        a, b, c, d = (shapes.JsonMemo.key({"v": n}) for n in range(4))
        assert a is not None and b is not None and c is not None and d is not None
        memo.put(a, "A")
        memo.put(b, "B")
        assert memo.get(a) == "A"
        memo.put(c, "C")  # full: a and b become the old generation
        assert memo.get(a) == "A"  # found there, moved back
        memo.put(d, "D")  # full again (c, a): b was never used again and is gone
        assert memo.get(b) is None
        assert (memo.get(a), memo.get(c), memo.get(d)) == ("A", "C", "D")
        assert memo.get(shapes.JsonMemo.key({"v": 9}) or b"") is None
        memo.clear()
        assert memo.get(a) is None


def test_json_memo_keys_are_exact_texts_and_unchanged_is_an_answer() -> None:
    memo = shapes.JsonMemo(digest=True)
    texts = [shapes.JsonMemo.key(v) for v in ({"a": 1}, {"a": 1.0}, {"a": True}, {"a": "1"})]
    for i, text in enumerate(texts):
        assert text is not None
        memo.put(text, i)
    assert [memo.get(t) for t in texts if t is not None] == [0, 1, 2, 3]
    assert shapes.JsonMemo.key({"a": 1 << 70}) is None  # not plain JSON: never remembered
    unchanged = shapes.JsonMemo.key({"b": 2})
    assert unchanged is not None
    memo.put(unchanged, shapes.UNCHANGED)
    assert memo.get(unchanged) is shapes.UNCHANGED
    shapes.clear_json_memos()
    assert memo.get(unchanged) is None
