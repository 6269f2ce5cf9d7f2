"""Defaulting and validation of rbac.authorization.k8s.io/v1 roles and bindings."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.rbac_v1 import defaults
from kajitori.api.rbac_v1.validation import (
    clusterrolebindings,
    clusterroles,
    rolebindings,
    roles,
)

Object = dict[str, Any]

_READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}


def _role(*rules: Object, namespace: str | None = "default") -> Object:
    meta: Object = {"name": "pod-reader", "resourceVersion": "1"}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "rules": list(rules)}


def _binding(
    ref: Object, *subjects: Object, namespace: str | None = "default", cluster: bool = False
) -> Object:
    meta: Object = {"name": "read-pods", "resourceVersion": "1"}
    if namespace:
        meta["namespace"] = namespace
    obj: Object = {"metadata": meta, "roleRef": dict(ref), "subjects": [dict(s) for s in subjects]}
    if cluster:
        defaults.set_defaults_cluster_role_binding(obj)
    else:
        defaults.set_defaults_role_binding(obj)
    return obj


def _messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def test_binding_defaults_fill_api_groups() -> None:
    """roleRef.apiGroup and User/Group subject apiGroups default to rbac; SAs to ""."""
    obj = _binding(
        {"kind": "Role", "name": "pod-reader"},
        {"kind": "User", "name": "jane"},
        {"kind": "ServiceAccount", "name": "default"},
    )
    assert obj["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s["apiGroup"] for s in obj["subjects"]] == ["rbac.authorization.k8s.io", ""]
    assert _messages(rolebindings.validate_role_binding(obj)) == []


def test_names_need_only_be_path_segments() -> None:
    """RBAC names like "system:controller:x" are valid; "." and "/" are not."""
    assert _messages(roles.validate_role(_role(_READ_PODS))) == []
    role = _role(_READ_PODS, namespace=None)
    role["metadata"]["name"] = "system:controller:job-controller"
    assert _messages(clusterroles.validate_cluster_role(role)) == []
    role["metadata"]["name"] = "a/b"
    assert _messages(clusterroles.validate_cluster_role(role)) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        pytest.param(
            {"apiGroups": [""], "resources": ["pods"]},
            "rules[0].verbs: Required value: verbs must contain at least one value",
            id="no-verbs",
        ),
        pytest.param(
            {"resources": ["pods"], "verbs": ["get"]},
            "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
            id="no-api-groups",
        ),
        pytest.param(
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
            'rules[0].nonResourceURLs: Invalid value: ["/healthz"]: '
            "namespaced rules cannot apply to non-resource URLs",
            id="urls-in-role",
        ),
    ],
)
def test_role_rule_mistakes_get_upstreams_messages(rule: Object, message: str) -> None:
    """Each typical mistake in a Role's rules is refused with upstream's text."""
    assert _messages(roles.validate_role(_role(rule))) == [message]


def test_cluster_roles_may_name_urls_but_not_mixed_with_resources() -> None:
    """Non-resource URLs are fine in ClusterRoles, but not together with resources."""
    urls = {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}
    assert _messages(clusterroles.validate_cluster_role(_role(urls, namespace=None))) == []
    mixed = {**urls, "resources": ["pods"]}
    assert _messages(clusterroles.validate_cluster_role(_role(mixed, namespace=None))) == [
        'rules[0].nonResourceURLs: Invalid value: ["/healthz"]: '
        "rules cannot apply to both regular resources and non-resource URLs"
    ]


def test_aggregation_rule_needs_a_selector() -> None:
    """An empty aggregationRule is refused with upstream's message."""
    role = _role(namespace=None)
    role["aggregationRule"] = {"clusterRoleSelectors": []}
    assert _messages(clusterroles.validate_cluster_role(role)) == [
        "aggregationRule.clusterRoleSelectors: Required value: "
        "at least one clusterRoleSelector required if aggregationRule is non-nil"
    ]


@pytest.mark.parametrize(
    ("ref", "subject", "message"),
    [
        pytest.param(
            {"kind": "Deployment", "name": "x"},
            {"kind": "User", "name": "jane"},
            'roleRef.kind: Unsupported value: "Deployment": supported values: "Role", "ClusterRole"',
            id="bad-ref-kind",
        ),
        pytest.param(
            {"kind": "Role", "name": ""},
            {"kind": "User", "name": "jane"},
            "roleRef.name: Required value",
            id="no-ref-name",
        ),
        pytest.param(
            {"kind": "Role", "name": "r"},
            {"kind": "Robot", "name": "r2d2"},
            'subjects[0].kind: Unsupported value: "Robot": '
            'supported values: "ServiceAccount", "User", "Group"',
            id="bad-subject-kind",
        ),
        pytest.param(
            {"kind": "Role", "name": "r"},
            {"kind": "ServiceAccount", "name": "default", "apiGroup": "rbac.authorization.k8s.io"},
            'subjects[0].apiGroup: Unsupported value: "rbac.authorization.k8s.io": '
            'supported values: ""',
            id="sa-with-rbac-group",
        ),
        pytest.param(
            {"kind": "Role", "name": "r"},
            {"kind": "User", "name": ""},
            "subjects[0].name: Required value",
            id="nameless-user",
        ),
    ],
)
def test_role_binding_mistakes_get_upstreams_messages(
    ref: Object, subject: Object, message: str
) -> None:
    """Each typical mistake in a RoleBinding is refused with upstream's text."""
    assert _messages(rolebindings.validate_role_binding(_binding(ref, subject))) == [message]


def test_cluster_role_bindings_need_cluster_roles_and_sa_namespaces() -> None:
    """ClusterRoleBindings only reference ClusterRoles and must say a ServiceAccount's namespace."""
    obj = _binding(
        {"kind": "Role", "name": "r"},
        {"kind": "ServiceAccount", "name": "default"},
        namespace=None,
        cluster=True,
    )
    assert _messages(clusterrolebindings.validate_cluster_role_binding(obj)) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
    ]


def test_role_ref_cannot_change() -> None:
    """Changing roleRef on update is refused with "cannot change roleRef"."""
    old = _binding({"kind": "Role", "name": "a"}, {"kind": "User", "name": "jane"})
    new = _binding({"kind": "Role", "name": "b"}, {"kind": "User", "name": "jane"})
    assert _messages(rolebindings.validate_role_binding_update(new, old)) == [
        'roleRef: Invalid value: {"kind":"Role","name":"b","apiGroup":"rbac.authorization.k8s.io"}: '
        "cannot change roleRef"
    ]
    same_ref = _binding({"kind": "Role", "name": "a"}, {"kind": "Group", "name": "devs"})
    assert _messages(rolebindings.validate_role_binding_update(same_ref, old)) == []
