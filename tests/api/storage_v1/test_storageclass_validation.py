"""Defaulting and validation of storage.k8s.io/v1 StorageClasses."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.storage_v1 import defaults
from kajitori.api.storage_v1.validation import storageclasses

Object = dict[str, Any]


def _class(**fields: Any) -> Object:
    obj: Object = {
        "metadata": {"name": "standard", "resourceVersion": "2"},
        "provisioner": "rancher.io/local-path",
        **fields,
    }
    defaults.set_defaults_storage_class(obj)
    return obj


def test_defaults_are_delete_and_immediate() -> None:
    """reclaimPolicy defaults to Delete, volumeBindingMode to Immediate."""
    obj = _class()
    assert (obj["reclaimPolicy"], obj["volumeBindingMode"]) == ("Delete", "Immediate")
    assert list(storageclasses.validate_storage_class(obj)) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"provisioner": ""}, "provisioner: Required value", id="no-provisioner"),
        pytest.param(
            {"provisioner": "a/b/c"},
            'provisioner: Invalid value: "a/b/c": a valid label key must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
            id="not-a-qualified-name",
        ),
        pytest.param(
            {"reclaimPolicy": "Recycle"},
            'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"',
            id="recycle",
        ),
        pytest.param(
            {"volumeBindingMode": "Lazy"},
            'volumeBindingMode: Unsupported value: "Lazy": '
            'supported values: "Immediate", "WaitForFirstConsumer"',
            id="binding-mode",
        ),
    ],
)
def test_class_mistakes_get_upstreams_messages(fields: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert [str(e) for e in storageclasses.validate_storage_class(_class(**fields))] == [message]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"parameters": {"type": "ssd"}},
            "parameters: Forbidden: updates to parameters are forbidden.",
            id="parameters",
        ),
        pytest.param(
            {"provisioner": "example.com/other"},
            "provisioner: Forbidden: updates to provisioner are forbidden.",
            id="provisioner",
        ),
        pytest.param(
            {"reclaimPolicy": "Retain"},
            "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
            id="reclaim-policy",
        ),
        pytest.param(
            {"volumeBindingMode": "WaitForFirstConsumer"},
            'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable',
            id="binding-mode",
        ),
    ],
)
def test_class_settings_cannot_change(fields: Object, message: str) -> None:
    """Parameters, provisioner and reclaimPolicy are forbidden to update; binding mode immutable."""
    assert [
        str(e) for e in storageclasses.validate_storage_class_update(_class(**fields), _class())
    ] == [message]


def test_labels_of_a_class_may_change() -> None:
    """Metadata-only updates pass."""
    new = _class()
    new["metadata"]["labels"] = {"tier": "fast"}
    assert list(storageclasses.validate_storage_class_update(new, _class())) == []
