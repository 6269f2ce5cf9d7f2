"""Registry declarations, strategies and tables of rbac.authorization.k8s.io/v1 resources."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.registry.generic import table as tables
from kajitori.registry.rbac import clusterrolebindings, clusterroles, rolebindings, roles

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("module", "plural", "namespaced"),
    [
        pytest.param(roles, "roles", True, id="roles"),
        pytest.param(clusterroles, "clusterroles", False, id="clusterroles"),
        pytest.param(rolebindings, "rolebindings", True, id="rolebindings"),
        pytest.param(clusterrolebindings, "clusterrolebindings", False, id="clusterrolebindings"),
    ],
)
def test_rbac_resources_are_declared_as_upstream(
    module: Any, plural: str, namespaced: bool
) -> None:
    """Right scope, no short names, no status, no generation."""
    info = module.RESOURCE
    assert (info.group_version, info.plural, info.namespaced) == (
        "rbac.authorization.k8s.io/v1",
        plural,
        namespaced,
    )
    assert (info.short_names, info.status, info.tracks_generation) == ((), None, False)


def test_roles_print_the_default_table() -> None:
    """Upstream has no Role printer: NAME CREATED AT."""
    assert roles.RESOURCE.table is tables.DEFAULT_TABLE
    assert clusterroles.RESOURCE.table is tables.DEFAULT_TABLE


def _binding() -> Object:
    return {
        "metadata": {"name": "admins", "creationTimestamp": "2025-01-01T10:00:00Z"},
        "roleRef": {"kind": "ClusterRole", "name": "admin"},
        "subjects": [
            {"kind": "User", "name": "jane"},
            {"kind": "User", "name": "joe"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
        ],
    }


@pytest.mark.parametrize("module", [rolebindings, clusterrolebindings], ids=["rb", "crb"])
def test_binding_rows_match_kubectl(module: Any) -> None:
    """NAME ROLE AGE, wide USERS GROUPS SERVICEACCOUNTS."""
    assert [(c.name, c.priority) for c in module.COLUMNS] == [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ]
    row = module.RESOURCE.table.row(_binding(), NOW)
    assert list(row) == ["admins", "ClusterRole/admin", "120m", "jane, joe", "devs", "build/ci"]


def test_binding_strategy_defaults_then_validates() -> None:
    """A binding without apiGroups is defaulted into a valid one."""
    obj = _binding()
    obj["metadata"]["namespace"] = "default"
    strategy = rolebindings.RESOURCE.strategy
    strategy.set_defaults(obj)
    assert list(strategy.validate(obj)) == []
