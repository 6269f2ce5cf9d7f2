"""DefaultStorageClass's choice among classes marked default."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.admission.plugins import default_storage_class

Object = dict[str, Any]


def _class(name: str, created: str, *, default: str | None = "true", beta: bool = False) -> Object:
    key = (
        default_storage_class.ANN_BETA_DEFAULT_CLASS
        if beta
        else default_storage_class.ANN_DEFAULT_CLASS
    )
    annotations = {key: default} if default is not None else {}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        pytest.param([], None, id="none"),
        pytest.param([_class("a", "2026-01-01T00:00:00Z", default="false")], None, id="not-true"),
        pytest.param(
            [_class("old", "2026-01-01T00:00:00Z"), _class("new", "2026-02-01T00:00:00Z")],
            "new",
            id="newest-wins",
        ),
        pytest.param(
            [_class("b", "2026-01-01T00:00:00Z"), _class("a", "2026-01-01T00:00:00Z")],
            "a",
            id="tie-by-name",
        ),
        pytest.param([_class("beta", "2026-01-01T00:00:00Z", beta=True)], "beta", id="beta"),
    ],
)
def test_default_class_is_the_newest_marked_one(
    classes: list[Object], expected: str | None
) -> None:
    """Several defaults: the newest, ties to the first name (upstream since 1.26)."""
    found = default_storage_class.default_class(classes)
    assert (found["metadata"]["name"] if found else None) == expected
