"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) as kube-apiserver applies them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.machinery import patching

# --- RFC 6902 -------------------------------------------------------------------------

JSON_PATCH_CASES = [
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
        id="rfc6902-a1-add-member",
    ),
    pytest.param(
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
        id="rfc6902-a2-add-array-element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
        id="rfc6902-a3-remove-member",
    ),
    pytest.param(
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
        id="rfc6902-a4-remove-array-element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
        id="rfc6902-a5-replace",
    ),
    pytest.param(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        id="rfc6902-a6-move",
    ),
    pytest.param(
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
        id="rfc6902-a7-move-array-element",
    ),
    pytest.param(
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
        id="rfc6902-a8-test-success",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
        id="rfc6902-a10-add-nested-member",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
        id="rfc6902-a11-ignore-unknown-members",
    ),
    pytest.param(
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}, {"op": "add", "path": "/~1", "value": 1}],
        {"/": 1, "~1": 10},
        id="rfc6902-a14-escapes",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
        id="rfc6902-a16-append-array-value",
    ),
    pytest.param(
        {"foo": {"bar": 1}},
        [
            {"op": "copy", "from": "/foo", "path": "/baz"},
            {"op": "add", "path": "/baz/bar", "value": 2},
        ],
        {"foo": {"bar": 1}, "baz": {"bar": 2}},
        id="copy-is-deep",
    ),
    pytest.param(
        {"a": 1},
        [{"op": "replace", "path": "/missing", "value": 2}],
        {"a": 1, "missing": 2},
        id="v4-replace-of-missing-member-adds-it",
    ),
    pytest.param(
        {"a": 1},
        [{"op": "copy", "from": "/missing", "path": "/b"}],
        {"a": 1, "b": None},
        id="v4-copy-from-missing-member-copies-null",
    ),
    pytest.param(
        {"a": None},
        [{"op": "test", "path": "/a", "value": None}, {"op": "test", "path": "/gone"}],
        {"a": None},
        id="v4-test-null-matches-null-or-missing",
    ),
    pytest.param(
        {"a": [1, 2, 3]},
        [{"op": "remove", "path": "/a/-1"}, {"op": "add", "path": "/a/-1", "value": 9}],
        {"a": [1, 2, 9]},
        id="v4-negative-indices-count-from-the-end",
    ),
    pytest.param(
        {"a": 1},
        [{"op": "replace", "path": "", "value": {"b": 2}}],
        {"b": 2},
        id="replace-whole-document",
    ),
    pytest.param(
        {"metadata": {"labels": {"app.kubernetes.io/name": "x"}}},
        [{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}],
        {"metadata": {"labels": {}}},
        id="kubectl-remove-label-with-slash",
    ),
    pytest.param({"a": 1}, None, {"a": 1}, id="null-body-is-empty-patch"),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), JSON_PATCH_CASES)
def test_json_patch_applies_operations(doc: Any, patch: Any, expected: Any) -> None:
    """Each operation list turns the document into the expected one."""
    assert patching.apply_json_patch(doc, patch) == expected


JSON_PATCH_FAILURES = [
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        'add operation does not apply: doc is missing path: "/baz/bat": missing value',
        id="rfc6902-a12-add-to-missing-parent",
    ),
    pytest.param(
        {"baz": "qux"},
        [{"op": "test", "path": "/baz", "value": "bar"}],
        "testing value /baz failed: test failed",
        id="rfc6902-a9-test-failure",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "remove", "path": "/nope"}],
        "error in remove for path: '/nope': Unable to remove nonexistent key: nope: missing value",
        id="remove-missing-member",
    ),
    pytest.param(
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/3", "value": "x"}],
        "error in add for path: '/foo/3': Unable to access invalid index: 3: invalid index referenced",
        id="rfc6902-a15-add-past-the-end",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "replace", "path": "/foo/5", "value": "x"}],
        "replace operation does not apply: doc is missing key: /foo/5: missing value",
        id="replace-missing-index",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/x", "value": 1}],
        "error in add for path: '/foo/x': value was not a proper array index: 'x': "
        'strconv.Atoi: parsing "x": invalid syntax',
        id="non-numeric-index",
    ),
    pytest.param(
        {"foo": 1},
        [{"op": "test", "path": "/foo", "value": 1.0}],
        "testing value /foo failed: test failed",
        id="test-distinguishes-1-from-1.0",
    ),
    pytest.param({"a": 1}, [{"op": "frob", "path": "/a"}], "Unexpected kind: frob", id="bad-op"),
    pytest.param(
        {"a": 1},
        [{"op": "add", "path": "", "value": {}}],
        'add operation does not apply: doc is missing path: "": missing value',
        id="add-root-is-refused",
    ),
    pytest.param(
        {"a": 1},
        [{"op": "move", "path": "/b"}],
        "move operation failed to decode from: operation, missing from field: missing value",
        id="move-without-from",
    ),
]


@pytest.mark.parametrize(("doc", "patch", "message"), JSON_PATCH_FAILURES)
def test_json_patch_failure_is_unprocessable(doc: Any, patch: Any, message: str) -> None:
    """A failing operation raises a 422 PatchError with evanphx/json-patch's text."""
    with pytest.raises(patching.PatchError) as caught:
        patching.apply_json_patch(doc, patch)
    assert caught.value.message == message
    assert caught.value.code == 422


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param(
            {"op": "add"},
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            id="object",
        ),
        pytest.param(
            ["add"],
            "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
            id="string-op",
        ),
    ],
)
def test_json_patch_that_is_not_a_list_of_operations_is_a_bad_request(
    patch: Any, message: str
) -> None:
    """A body that does not decode as operations is a 400 with the decoder's text."""
    with pytest.raises(patching.PatchError) as caught:
        patching.apply_json_patch({}, patch)
    assert (caught.value.code, caught.value.message) == (400, message)


def test_json_patch_with_too_many_operations_is_too_large() -> None:
    """More than 10,000 operations is refused with 413, as upstream does."""
    ops = [{"op": "test", "path": "/a", "value": 1}] * 10001
    with pytest.raises(patching.PatchError) as caught:
        patching.apply_json_patch({"a": 1}, ops)
    status = caught.value.to_status_error().to_status()
    assert status["code"] == 413
    assert status["reason"] == "RequestEntityTooLarge"
    assert status["message"].endswith("got 10001")


def test_json_patch_failure_renders_upstream_generic_invalid_status() -> None:
    """A 422 carries upstream's generic message, not the library's detail."""
    with pytest.raises(patching.PatchError) as caught:
        patching.apply_json_patch({}, [{"op": "remove", "path": "/x"}])
    status = caught.value.to_status_error().to_status()
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"] == "the server rejected our request due to an error in our request"


def test_json_patch_does_not_mutate_its_arguments() -> None:
    """Inputs are left as they were, and the result shares no containers with them."""
    doc = {"a": {"b": [1, 2]}}
    patch = [
        {"op": "add", "path": "/a/b/-", "value": {"c": 1}},
        {"op": "move", "from": "/a/b/0", "path": "/x"},
    ]
    before = copy.deepcopy((doc, patch))
    result = patching.apply_json_patch(doc, patch)
    assert (doc, patch) == before
    result["a"]["b"][-1]["c"] = 2
    assert patch[0]["value"] == {"c": 1}


# --- RFC 7386 -------------------------------------------------------------------------

MERGE_PATCH_CASES = [
    pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="rfc7386-replace-member"),
    pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="rfc7386-add-member"),
    pytest.param({"a": "b"}, {"a": None}, {}, id="rfc7386-null-deletes"),
    pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="rfc7386-delete-one"),
    pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="rfc7386-array-to-scalar"),
    pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="rfc7386-scalar-to-array"),
    pytest.param(
        {"a": {"b": "c"}},
        {"a": {"b": "d", "c": None}},
        {"a": {"b": "d"}},
        id="rfc7386-nested-merge",
    ),
    pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="rfc7386-arrays-replace"),
    pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="rfc7386-existing-null-kept"),
    pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="rfc7386-prune-new"),
    pytest.param(
        {"a": "b"},
        ["c", None, {"d": None}],
        ["c", None, {}],
        id="v4-array-patch-replaces-document",
    ),
    pytest.param(
        {"x": 1},
        {"list": [{"k": None, "v": 1}]},
        {"x": 1, "list": [{"v": 1}]},
        id="v4-prunes-inside-new-arrays",
    ),
    pytest.param(
        {"x": {"old": 1}},
        {"x": [{"k": None}]},
        {"x": [{"k": None}]},
        id="v4-keeps-nulls-when-array-replaces-object",
    ),
    pytest.param(
        {"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"replicas": 1}},
        {"metadata": {"labels": {"tier": None, "track": "stable"}}},
        {"metadata": {"labels": {"app": "web", "track": "stable"}}, "spec": {"replicas": 1}},
        id="kubectl-merge-labels",
    ),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), MERGE_PATCH_CASES)
def test_merge_patch_merges_as_upstream(doc: Any, patch: Any, expected: Any) -> None:
    """RFC 7386 merging, with evanphx/json-patch v4's top-level and pruning rules."""
    before = copy.deepcopy((doc, patch))
    assert patching.apply_merge_patch(doc, patch) == expected
    assert (doc, patch) == before


@pytest.mark.parametrize("patch", [None, "bar", 3, True], ids=["null", "string", "number", "bool"])
def test_merge_patch_that_is_not_a_document_is_a_bad_request(patch: Any) -> None:
    """Unlike the RFC, upstream refuses a null or scalar merge patch with 400."""
    with pytest.raises(patching.PatchError) as caught:
        patching.apply_merge_patch({"a": "foo"}, patch)
    status = caught.value.to_status_error().to_status()
    assert (status["code"], status["reason"], status["message"]) == (
        400,
        "BadRequest",
        "Invalid JSON Patch",
    )


def test_package_exports_exactly_the_public_api() -> None:
    """The façade's ``__all__`` is the API other layers use."""
    assert sorted(patching.__all__) == [
        "PatchError",
        "apply_json_patch",
        "apply_merge_patch",
        "apply_strategic_merge_patch",
    ]
