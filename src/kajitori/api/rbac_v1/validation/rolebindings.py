"""Validation of RoleBindings (upstream: ValidateRoleBinding).

roleRef may name a Role or a ClusterRole and can never change; subjects are
Users, Groups or ServiceAccounts (an empty ServiceAccount namespace means
the binding's, for the authorizer).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.rbac_v1 import validation
from kajitori.machinery import field

Object = dict[str, Any]

ROLE_REF_KINDS = ("Role", "ClusterRole")


def validate_role_binding(obj: Object) -> field.ErrorList:
    return validation.validate_binding(obj, namespaced=True, kinds=ROLE_REF_KINDS)


def validate_role_binding_update(new: Object, old: Object) -> field.ErrorList:
    return validation.validate_binding_update(new, old, namespaced=True, kinds=ROLE_REF_KINDS)
