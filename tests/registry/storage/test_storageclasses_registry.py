"""Registry declaration, strategy and table of storage.k8s.io/v1 storageclasses."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.registry.storage import storageclasses

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def test_storageclasses_are_declared_as_upstream() -> None:
    """Cluster-scoped with short name sc."""
    info = storageclasses.RESOURCE
    assert (info.group_version, info.namespaced, info.short_names) == (
        "storage.k8s.io/v1",
        False,
        ("sc",),
    )


@pytest.mark.parametrize(
    ("annotations", "expansion", "name"),
    [
        pytest.param({}, None, "local-path", id="plain"),
        pytest.param(
            {"storageclass.kubernetes.io/is-default-class": "true"},
            True,
            "local-path (default)",
            id="default",
        ),
        pytest.param(
            {"storageclass.beta.kubernetes.io/is-default-class": "true"},
            False,
            "local-path (default)",
            id="beta-default",
        ),
        pytest.param(
            {"storageclass.kubernetes.io/is-default-class": "false"},
            None,
            "local-path",
            id="explicitly-not-default",
        ),
    ],
)
def test_storage_class_row_matches_kubectl(
    annotations: Object, expansion: bool | None, name: str
) -> None:
    """NAME (+ " (default)") PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE."""
    obj: Object = {
        "metadata": {
            "name": "local-path",
            "annotations": annotations,
            "creationTimestamp": "2025-01-01T11:59:50Z",
        },
        "provisioner": "rancher.io/local-path",
    }
    if expansion is not None:
        obj["allowVolumeExpansion"] = expansion
    storageclasses.RESOURCE.strategy.set_defaults(obj)
    assert list(storageclasses.storage_class_row(obj, NOW)) == [
        name,
        "rancher.io/local-path",
        "Delete",
        "Immediate",
        bool(expansion),
        "10s",
    ]
