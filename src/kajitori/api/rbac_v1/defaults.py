"""Defaulting for rbac.authorization.k8s.io/v1 objects (upstream: pkg/apis/rbac/v1/defaults.go).

Bindings get ``roleRef.apiGroup`` rbac.authorization.k8s.io; User and Group
subjects get that apiGroup too, ServiceAccount subjects the core group "".
Roles have no defaults. In place and idempotent.
"""

from __future__ import annotations

from typing import Any

from kajitori.api import rbac_v1

Object = dict[str, Any]


def set_defaults_subject(subject: Object) -> None:
    if subject.get("apiGroup"):
        return
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        subject["apiGroup"] = ""
    elif kind in ("User", "Group"):
        subject["apiGroup"] = rbac_v1.GROUP_NAME


def _set_defaults_binding(obj: Object) -> None:
    role_ref = obj.get("roleRef")
    if not isinstance(role_ref, dict):
        role_ref = obj["roleRef"] = {}
    if not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = rbac_v1.GROUP_NAME
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict):
            set_defaults_subject(subject)


def set_defaults_role_binding(obj: Object) -> None:
    _set_defaults_binding(obj)


def set_defaults_cluster_role_binding(obj: Object) -> None:
    _set_defaults_binding(obj)


def set_defaults_role(obj: Object) -> None:
    """Roles have no defaults."""


def set_defaults_cluster_role(obj: Object) -> None:
    """ClusterRoles have no defaults."""
