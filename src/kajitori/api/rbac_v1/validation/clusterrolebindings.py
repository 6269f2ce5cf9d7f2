"""Validation of ClusterRoleBindings (upstream: ValidateClusterRoleBinding).

roleRef must name a ClusterRole and can never change; ServiceAccount
subjects must say their namespace, since the binding has none.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.rbac_v1 import validation
from kajitori.machinery import field

Object = dict[str, Any]

ROLE_REF_KINDS = ("ClusterRole",)


def validate_cluster_role_binding(obj: Object) -> field.ErrorList:
    return validation.validate_binding(obj, namespaced=False, kinds=ROLE_REF_KINDS)


def validate_cluster_role_binding_update(new: Object, old: Object) -> field.ErrorList:
    return validation.validate_binding_update(new, old, namespaced=False, kinds=ROLE_REF_KINDS)
