"""``shapes.body_signature``: remembering spec shapes gives the answers a full walk gives.

Bodies of one shape share a signature and bodies of different shapes do not,
whether their spec was seen before or not: key order, scalar types (1, 1.0
and true differ) and integers outside int32 (no signature at all) count.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.machinery import shapes


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "managedFields": [{"manager": "m", "fieldsV1": {"f:x": {}}}]},
        "spec": {"containers": [{"name": "c", "image": "i"}], **spec},
    }


def _walked(body: dict[str, Any]) -> Any:
    """The signature with nothing remembered."""
    shapes._SPEC_SHAPES.clear()
    return shapes.body_signature(copy.deepcopy(body))


def test_a_repeated_spec_gives_the_signature_of_a_full_walk() -> None:
    body = _pod(terminationGracePeriodSeconds=30)
    first = _walked(body)
    assert first is not None
    again = copy.deepcopy(body)
    again["metadata"]["name"] = "other-name"
    assert shapes.body_signature(again) == first
    assert shapes.body_signature(body) == first


def test_specs_that_differ_in_type_order_or_range_get_their_own_answer() -> None:
    variants = [
        _pod(terminationGracePeriodSeconds=1),
        _pod(terminationGracePeriodSeconds=1.0),
        _pod(terminationGracePeriodSeconds=True),
        _pod(terminationGracePeriodSeconds="1"),
        {**_pod(), "spec": {"b": 1, "a": 2}},
        {**_pod(), "spec": {"a": 2, "b": 1}},
    ]
    walked = [_walked(v) for v in variants]
    assert len(set(walked)) == len(variants)
    for variant in variants:  # now from memory
        shapes.body_signature(variant)
    assert [shapes.body_signature(v) for v in variants] == walked
    too_big = _pod(terminationGracePeriodSeconds=1 << 40)
    assert shapes.body_signature(too_big) is None
    assert shapes.body_signature(too_big) is None
    huge = _pod(terminationGracePeriodSeconds=1 << 70)  # beyond JSON encoders' 64 bits
    assert shapes.body_signature(huge) is None
