"""kind's local-path storage add-on as bootstrap objects: the default ``standard`` class.

kind applies a manifest at cluster creation that installs Rancher's
local-path provisioner: the namespace ``local-path-storage``, a
ServiceAccount with the ClusterRole ``local-path-provisioner-role`` (bound
by ``local-path-provisioner-bind``), and the StorageClass ``standard`` marked
default, provisioner ``rancher.io/local-path``, ``WaitForFirstConsumer``,
reclaim policy ``Delete``. ``server.bootstrap`` creates these (if missing)
at start; the provisioner itself runs in the controller manager
(controllers.volume.local_path_provisioner) as that ServiceAccount
(decision 0021). kind names it ``local-path-provisioner-service-account``;
ours is ``local-path-provisioner``, because the in-process identity is a
client certificate and ``system:serviceaccount:local-path-storage:`` plus
kind's name exceeds the 64 characters X.509 allows in a common name. Objects are created once and then left alone, so an
administrator may change or delete the class as on kind.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]

NAMESPACE = "local-path-storage"
SERVICE_ACCOUNT = "local-path-provisioner"
CLUSTER_ROLE = "local-path-provisioner-role"
CLUSTER_ROLE_BINDING = "local-path-provisioner-bind"
STORAGE_CLASS = "standard"
PROVISIONER = "rancher.io/local-path"
RBAC = "rbac.authorization.k8s.io"


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Object:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def objects() -> list[tuple[str, str, str, Object]]:
    """``(group, plural, namespace, object)`` in creation order."""
    return [
        (
            "",
            "namespaces",
            "",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        ),
        (
            "",
            "serviceaccounts",
            NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
            },
        ),
        (RBAC, "clusterroles", "", _cluster_role()),
        (RBAC, "clusterrolebindings", "", _cluster_role_binding()),
        ("storage.k8s.io", "storageclasses", "", storage_class()),
    ]


def _cluster_role() -> Object:
    read = ["get", "list", "watch"]
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE},
        "rules": [
            _rule(
                [""], ["nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"], read
            ),
            _rule([""], ["persistentvolumes"], [*read, "create", "patch", "update", "delete"]),
            _rule([""], ["events"], ["create", "patch"]),
            _rule(["storage.k8s.io"], ["storageclasses"], read),
        ],
    }


def _cluster_role_binding() -> Object:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ROLE_BINDING},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}],
    }


def storage_class() -> Object:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
