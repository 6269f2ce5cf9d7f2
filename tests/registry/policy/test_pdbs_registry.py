"""Registry declaration, strategies and table of policy/v1 poddisruptionbudgets."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.registry.policy import poddisruptionbudgets as pdbs

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _pdb(**spec: Any) -> Object:
    return {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2025-01-01T09:00:00Z",
        },
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
        "status": {"disruptionsAllowed": 1},
    }


def test_pdbs_are_declared_as_upstream() -> None:
    """Namespaced, short name pdb, status subresource, generation tracked."""
    info = pdbs.RESOURCE
    assert (info.group_version, info.short_names, info.subresource_names) == (
        "policy/v1",
        ("pdb",),
        ("status",),
    )
    assert info.tracks_generation


def test_main_endpoint_ignores_status_and_status_endpoint_ignores_spec() -> None:
    """Create resets status; update keeps it; the status update keeps the spec."""
    created = _pdb(minAvailable=1)
    pdbs.STRATEGY.prepare_for_create(created)
    assert created["status"] == {}
    updated = _pdb(minAvailable=2)
    updated["status"] = {"disruptionsAllowed": 9}
    pdbs.STRATEGY.prepare_for_update(updated, _pdb(minAvailable=1))
    assert updated["status"] == {"disruptionsAllowed": 1}
    assert pdbs.RESOURCE.status is not None
    status_update = _pdb(minAvailable=5)
    status_update["status"] = {"disruptionsAllowed": 0}
    pdbs.RESOURCE.status.prepare_for_update(status_update, _pdb(minAvailable=1))
    assert (status_update["spec"]["minAvailable"], status_update["status"]) == (
        1,
        {"disruptionsAllowed": 0},
    )


@pytest.mark.parametrize(
    ("spec", "cells"),
    [
        pytest.param({"minAvailable": 2}, ["web", "2", "N/A", 1, "3h"], id="min"),
        pytest.param({"maxUnavailable": "25%"}, ["web", "N/A", "25%", 1, "3h"], id="max"),
    ],
)
def test_pdb_row_matches_kubectl(spec: Object, cells: list[Any]) -> None:
    """NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE."""
    assert [c.name for c in pdbs.COLUMNS] == [
        "Name",
        "Min Available",
        "Max Unavailable",
        "Allowed Disruptions",
        "Age",
    ]
    assert list(pdbs.pod_disruption_budget_row(_pdb(**spec), NOW)) == cells
