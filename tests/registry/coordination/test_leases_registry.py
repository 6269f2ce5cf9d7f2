"""Registry declaration, strategy and table of coordination.k8s.io/v1 leases."""

from __future__ import annotations

import datetime

from kajitori.registry.coordination import leases

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def test_leases_are_declared_as_upstream() -> None:
    """Namespaced, no short name, no status subresource, no generation."""
    info = leases.RESOURCE
    assert (info.group_version, info.plural, info.namespaced) == (
        "coordination.k8s.io/v1",
        "leases",
        True,
    )
    assert (info.short_names, info.status, info.tracks_generation) == ((), None, False)
    assert info.storage_prefix() == "/registry/leases/"


def test_strategy_validates_through_the_api_module() -> None:
    """A zero duration is refused by the resource's strategy."""
    obj = {"metadata": {"name": "a", "namespace": "default"}, "spec": {"leaseDurationSeconds": 0}}
    leases.RESOURCE.strategy.set_defaults(obj)
    assert [str(e) for e in leases.RESOURCE.strategy.validate(obj)] == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    ]


def test_lease_row_matches_kubectl() -> None:
    """NAME HOLDER AGE; an unheld lease shows an empty holder."""
    assert [c.name for c in leases.COLUMNS] == ["Name", "Holder", "Age"]
    held = {
        "metadata": {"name": "node-a", "creationTimestamp": "2025-01-01T11:00:00Z"},
        "spec": {"holderIdentity": "node-a"},
    }
    assert list(leases.lease_row(held, NOW)) == ["node-a", "node-a", "60m"]
    assert list(leases.lease_row({"metadata": {"name": "x"}, "spec": {}}, NOW)) == [
        "x",
        "",
        "<unknown>",
    ]
