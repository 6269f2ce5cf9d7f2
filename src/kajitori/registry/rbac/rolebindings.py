"""RoleBindings in the API server (upstream: pkg/registry/rbac/rolebinding).

Owns: storing and validating bindings (roleRef immutable); the ``kubectl get
rolebindings`` columns (NAME ROLE AGE, wide USERS GROUPS SERVICEACCOUNTS).
Escalation checks come with RBAC enforcement.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.rbac_v1 import defaults
from kajitori.api.rbac_v1 import printing as rbac_printing
from kajitori.api.rbac_v1.validation import rolebindings as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class RoleBindingStrategy(strategies.Strategy):
    """Create/update rules for ``rbac.authorization.k8s.io/v1 rolebindings``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_role_binding(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_role_binding(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_role_binding_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Role", description=printing.doc("io.k8s.api.rbac.v1.RoleBinding", "roleRef")),
    tables.AGE_COLUMN,
    tables.Column("Users", priority=1, description="Users in the roleBinding"),
    tables.Column("Groups", priority=1, description="Groups in the roleBinding"),
    tables.Column("ServiceAccounts", priority=1, description="ServiceAccounts in the roleBinding"),
)


def role_binding_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [
        tables.name(obj),
        rbac_printing.role_ref_cell(obj),
        tables.age(obj, now),
        *rbac_printing.subject_cells(obj),
    ]


RESOURCE = resource.ResourceInfo(
    group="rbac.authorization.k8s.io",
    version="v1",
    kind="RoleBinding",
    plural="rolebindings",
    namespaced=True,
    strategy=RoleBindingStrategy(),
    table=tables.Table(columns=COLUMNS, row=role_binding_row),
)
