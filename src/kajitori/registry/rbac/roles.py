"""Roles in the API server (upstream: pkg/registry/rbac/role).

Owns: storing and validating namespaced policy rules. Upstream also refuses
to let a user grant permissions they do not hold (escalation check); that
comes with RBAC enforcement. Upstream has no printer for Roles, so tables are
the default NAME CREATED AT.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.rbac_v1 import defaults
from kajitori.api.rbac_v1.validation import roles as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]


class RoleStrategy(strategies.Strategy):
    """Create/update rules for ``rbac.authorization.k8s.io/v1 roles``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_role(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_role(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_role_update(obj, old)


RESOURCE = resource.ResourceInfo(
    group="rbac.authorization.k8s.io",
    version="v1",
    kind="Role",
    plural="roles",
    namespaced=True,
    strategy=RoleStrategy(),
)
