"""ClusterRoles in the API server (upstream: pkg/registry/rbac/clusterrole).

Owns: storing and validating cluster policy rules (non-resource URLs allowed)
and aggregation rules; the aggregation controller fills aggregated rules.
Escalation checks come with RBAC enforcement. Tables are the default NAME
CREATED AT, as upstream has no ClusterRole printer.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.rbac_v1 import defaults
from kajitori.api.rbac_v1.validation import clusterroles as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]


class ClusterRoleStrategy(strategies.Strategy):
    """Create/update rules for ``rbac.authorization.k8s.io/v1 clusterroles``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_cluster_role(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_cluster_role(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_cluster_role_update(obj, old)


RESOURCE = resource.ResourceInfo(
    group="rbac.authorization.k8s.io",
    version="v1",
    kind="ClusterRole",
    plural="clusterroles",
    namespaced=False,
    strategy=ClusterRoleStrategy(),
)
