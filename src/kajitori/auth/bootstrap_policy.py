"""The default RBAC policy every cluster starts with, and its reconciliation at start.

Data from upstream's plugin/pkg/auth/authorizer/rbac/bootstrappolicy
(policy.go, controller_policy.go; checked against testdata/cluster-roles.yaml,
controller-roles.yaml and the binding files), written in our own compact form:
``_r("get list watch", CORE, "pods services")`` is one PolicyRule. As
upstream's builders, every list inside a rule is sorted and de-duplicated.

Reconciliation (upstream's ``reconcile`` post-start hook, without removing
extra permissions): a missing object is created; an existing one whose
``rbac.authorization.kubernetes.io/autoupdate`` annotation is not "false"
gains the missing rules, aggregation selectors, subjects, labels and
annotations; one annotated "false" is left alone. Feature-gated roles (DRA,
cloud-provider extras) are left out.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, UserInfo

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
Rule = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

CORE = ("",)
APPS = ("apps",)
APPS_EXT = ("apps", "extensions")
BATCH = ("batch",)
STORAGE = ("storage.k8s.io",)
COORDINATION = ("coordination.k8s.io",)
NETWORKING = ("networking.k8s.io",)
CERTIFICATES = ("certificates.k8s.io",)
RESOURCE = ("resource.k8s.io",)
EVENTS_GROUPS = ("", "events.k8s.io")
ALL = ("*",)

READ = "get list watch"
READ_WRITE = "get list watch create update patch delete deletecollection"
WRITE = "create update patch delete deletecollection"

_SYSTEM = UserInfo("system:apiserver", ("system:masters",))


def _r(verbs: str, groups: Sequence[str], resources: str, *, names: str = "") -> Rule:
    rule: Rule = {
        "verbs": sorted(set(verbs.split())),
        "apiGroups": sorted(set(groups)),
        "resources": sorted(set(resources.split())),
    }
    if names:
        rule["resourceNames"] = sorted(set(names.split()))
    return rule


def _urls(verbs: str, urls: str) -> Rule:
    return {"verbs": sorted(set(verbs.split())), "nonResourceURLs": sorted(set(urls.split()))}


EVENTS_RULE = _r("create update patch", EVENTS_GROUPS, "events")


def _role(
    name: str,
    rules: Sequence[Rule],
    *,
    labels: Mapping[str, str] | None = None,
    aggregate: str = "",
) -> Object:
    role: Object = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {**BOOTSTRAPPING, **(labels or {})},
            "annotations": {AUTOUPDATE: "true"},
        },
        "rules": [dict(r) for r in rules],
    }
    if aggregate:
        selector = {"matchLabels": {AGGREGATE_TO + aggregate: "true"}}
        role["aggregationRule"] = {"clusterRoleSelectors": [selector]}
    return role


def _agg(*targets: str) -> dict[str, str]:
    return {AGGREGATE_TO + t: "true" for t in targets}


# ----- user-facing and system roles (policy.go ClusterRoles) -------------------


def _aggregate_to_admin() -> list[Rule]:
    return [
        _r("create", ("authorization.k8s.io",), "localsubjectaccessreviews"),
        _r(READ_WRITE, (RBAC_GROUP,), "roles rolebindings"),
    ]


def _aggregate_to_edit() -> list[Rule]:
    return [
        _r(READ, CORE, "pods/attach pods/proxy pods/exec pods/portforward secrets services/proxy"),
        _r("impersonate", CORE, "serviceaccounts"),
        _r(WRITE, CORE, "pods pods/attach pods/proxy pods/exec pods/portforward"),
        _r("create", CORE, "pods/eviction"),
        _r(
            WRITE,
            CORE,
            "replicationcontrollers replicationcontrollers/scale serviceaccounts services "
            "services/proxy persistentvolumeclaims configmaps secrets events",
        ),
        _r("create", CORE, "serviceaccounts/token"),
        _r(
            WRITE,
            APPS,
            "statefulsets statefulsets/scale daemonsets deployments deployments/scale "
            "deployments/rollback replicasets replicasets/scale",
        ),
        _r(WRITE, ("autoscaling",), "horizontalpodautoscalers"),
        _r(WRITE, BATCH, "jobs cronjobs"),
        _r(
            WRITE,
            ("extensions",),
            "daemonsets deployments deployments/scale deployments/rollback ingresses "
            "replicasets replicasets/scale replicationcontrollers/scale networkpolicies",
        ),
        _r(WRITE, ("policy",), "poddisruptionbudgets"),
        _r(WRITE, NETWORKING, "ingresses networkpolicies"),
        _r(READ_WRITE, COORDINATION, "leases"),
        # DynamicResourceAllocation (GA): a namespace's users manage its claims.
        _r(WRITE, RESOURCE, "resourceclaims resourceclaimtemplates"),
    ]


def _aggregate_to_view() -> list[Rule]:
    return [
        _r(
            READ,
            CORE,
            "pods replicationcontrollers replicationcontrollers/scale serviceaccounts services "
            "services/status endpoints persistentvolumeclaims persistentvolumeclaims/status "
            "configmaps",
        ),
        _r(
            READ,
            CORE,
            "limitranges resourcequotas bindings events pods/status resourcequotas/status "
            "namespaces/status replicationcontrollers/status pods/log",
        ),
        _r(READ, CORE, "namespaces"),
        _r(READ, ("discovery.k8s.io",), "endpointslices"),
        _r(
            READ,
            APPS,
            "controllerrevisions statefulsets statefulsets/status statefulsets/scale daemonsets "
            "daemonsets/status deployments deployments/status deployments/scale replicasets "
            "replicasets/status replicasets/scale",
        ),
        _r(READ, ("autoscaling",), "horizontalpodautoscalers horizontalpodautoscalers/status"),
        _r(READ, BATCH, "jobs cronjobs cronjobs/status jobs/status"),
        _r(
            READ,
            ("extensions",),
            "daemonsets daemonsets/status deployments deployments/scale deployments/status "
            "ingresses ingresses/status replicasets replicasets/scale replicasets/status "
            "replicationcontrollers/scale networkpolicies",
        ),
        _r(READ, ("policy",), "poddisruptionbudgets poddisruptionbudgets/status"),
        _r(READ, NETWORKING, "ingresses ingresses/status networkpolicies"),
        _r(READ, RESOURCE, "resourceclaims resourceclaims/status resourceclaimtemplates"),
    ]


def _kube_controller_manager() -> list[Rule]:
    return [
        EVENTS_RULE,
        _r("create", COORDINATION, "leases"),
        _r("get update", COORDINATION, "leases", names="kube-controller-manager"),
        _r("create", CORE, "secrets serviceaccounts"),
        _r("delete", CORE, "secrets"),
        _r("get", CORE, "namespaces configmaps secrets serviceaccounts"),
        _r("update", CORE, "secrets serviceaccounts"),
        _r("create", ("authentication.k8s.io",), "tokenreviews"),
        _r("create", ("authorization.k8s.io",), "subjectaccessreviews"),
        _r("list watch", ALL, "*"),
        _r("create", CORE, "serviceaccounts/token"),
    ]


def _kube_scheduler() -> list[Rule]:
    return [
        EVENTS_RULE,
        _r("create", COORDINATION, "leases"),
        _r("get update", COORDINATION, "leases", names="kube-scheduler"),
        _r(READ, CORE, "nodes"),
        _r("get list watch delete", CORE, "pods"),
        _r("create", CORE, "pods/binding bindings"),
        _r("patch update", CORE, "pods/status"),
        _r(READ, CORE, "replicationcontrollers services"),
        _r(READ, APPS_EXT, "replicasets"),
        _r(READ, APPS, "statefulsets"),
        _r(READ, ("policy",), "poddisruptionbudgets"),
        _r(READ, CORE, "persistentvolumeclaims persistentvolumes"),
        _r("create", ("authentication.k8s.io",), "tokenreviews"),
        _r("create", ("authorization.k8s.io",), "subjectaccessreviews"),
        _r(READ, STORAGE, "csinodes"),
        _r(READ, CORE, "namespaces"),
        _r(READ, STORAGE, "csidrivers"),
        _r(READ, STORAGE, "csistoragecapacities"),
        # DynamicResourceAllocation (GA): the DynamicResources plugin's reads and writes.
        _r(READ, RESOURCE, "resourceclaims deviceclasses resourceslices devicetaintrules"),
        _r("get list watch update patch", RESOURCE, "resourceclaims resourceclaims/status"),
    ]


def node_rules() -> list[Rule]:
    """The ``system:node`` role's rules, which the Node authorizer applies to every kubelet."""
    return _node()


def _node() -> list[Rule]:
    return [
        _r("create", ("authentication.k8s.io",), "tokenreviews"),
        _r("create", ("authorization.k8s.io",), "subjectaccessreviews localsubjectaccessreviews"),
        _r(READ, CORE, "services"),
        _r("create get list watch", CORE, "nodes"),
        _r("update patch", CORE, "nodes/status"),
        _r("update patch", CORE, "nodes"),
        _r("create update patch", CORE, "events"),
        _r(READ, CORE, "pods"),
        _r("create delete", CORE, "pods"),
        _r("update patch", CORE, "pods/status"),
        _r("create", CORE, "pods/eviction"),
        _r(READ, CORE, "secrets configmaps"),
        _r("get", CORE, "persistentvolumeclaims persistentvolumes"),
        _r("get", CORE, "endpoints"),
        _r("create get list watch", CERTIFICATES, "certificatesigningrequests"),
        _r("get create update patch delete", COORDINATION, "leases"),
        _r("get", STORAGE, "volumeattachments"),
        _r("create", CORE, "serviceaccounts/token"),
        _r("get update patch", CORE, "persistentvolumeclaims/status"),
        _r(READ, STORAGE, "csidrivers"),
        _r("get create update patch delete", STORAGE, "csinodes"),
        _r(READ, ("node.k8s.io",), "runtimeclasses"),
        # ClusterTrustBundleProjection and PodCertificateRequest, both GA in 1.37: a kubelet
        # reads bundles for projected volumes and asks for its pods' certificates.
        _r("get list watch", CERTIFICATES, "clustertrustbundles"),
        _r("get list watch create", CERTIFICATES, "podcertificaterequests"),
        # DynamicResourceAllocation (GA): the claims of its pods (the Node authorizer narrows
        # this to them) and its own ResourceSlices, removed together when a driver goes.
        _r("get", RESOURCE, "resourceclaims"),
        _r("deletecollection", RESOURCE, "resourceslices"),
    ]


def _approver(signer: str) -> list[Rule]:
    return [_r("approve", CERTIFICATES, "signers", names=signer)]


def cluster_roles() -> list[Object]:
    """Upstream's default ClusterRoles (policy.go), controller roles excluded."""
    certs = "system:certificates.k8s.io:"
    return [
        _role("cluster-admin", [_r("*", ALL, "*"), _urls("*", "*")]),
        _role("admin", [], aggregate="admin"),
        _role("edit", [], labels=_agg("admin"), aggregate="edit"),
        _role("view", [], labels=_agg("edit"), aggregate="view"),
        _role("system:aggregate-to-admin", _aggregate_to_admin(), labels=_agg("admin")),
        _role("system:aggregate-to-edit", _aggregate_to_edit(), labels=_agg("edit")),
        _role("system:aggregate-to-view", _aggregate_to_view(), labels=_agg("view")),
        _role(
            "system:auth-delegator",
            [
                _r("create", ("authentication.k8s.io",), "tokenreviews"),
                _r("create", ("authorization.k8s.io",), "subjectaccessreviews"),
            ],
        ),
        _role(
            "system:basic-user",
            [
                _r(
                    "create",
                    ("authorization.k8s.io",),
                    "selfsubjectaccessreviews selfsubjectrulesreviews",
                ),
                _r("create", ("authentication.k8s.io",), "selfsubjectreviews"),
            ],
        ),
        _role(
            f"{certs}certificatesigningrequests:nodeclient",
            [_r("create", CERTIFICATES, "certificatesigningrequests/nodeclient")],
        ),
        _role(
            f"{certs}certificatesigningrequests:selfnodeclient",
            [_r("create", CERTIFICATES, "certificatesigningrequests/selfnodeclient")],
        ),
        _role(
            f"{certs}kube-apiserver-client-approver",
            _approver("kubernetes.io/kube-apiserver-client"),
        ),
        _role(
            f"{certs}kube-apiserver-client-kubelet-approver",
            _approver("kubernetes.io/kube-apiserver-client-kubelet"),
        ),
        _role(f"{certs}kubelet-serving-approver", _approver("kubernetes.io/kubelet-serving")),
        _role(f"{certs}legacy-unknown-approver", _approver("kubernetes.io/legacy-unknown")),
        _role(
            "system:discovery",
            [
                _urls(
                    "get",
                    "/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz "
                    "/version /version/",
                )
            ],
        ),
        _role(
            "system:heapster",
            [
                _r(READ, CORE, "events pods nodes namespaces"),
                _r(READ, ("extensions",), "deployments"),
            ],
        ),
        _role("system:kube-aggregator", [_r(READ, CORE, "services endpoints")]),
        _role("system:kube-controller-manager", _kube_controller_manager()),
        _role("system:kube-dns", [_r("list watch", CORE, "endpoints services")]),
        # What kubeadm's CoreDNS addon grants; our cluster DNS (dns/) reads as it (decision 0031).
        _role(
            "system:coredns",
            [
                _r("list watch", CORE, "endpoints services pods namespaces"),
                _r("list watch", ("discovery.k8s.io",), "endpointslices"),
            ],
        ),
        _role("system:kube-scheduler", _kube_scheduler()),
        _role(
            "system:kubelet-api-admin",
            [
                _r(READ, CORE, "nodes"),
                _r("proxy", CORE, "nodes"),
                _r("*", CORE, "nodes/proxy nodes/metrics nodes/stats nodes/log"),
            ],
        ),
        _role(
            "system:monitoring",
            [
                _urls(
                    "get",
                    "/metrics /metrics/slis /livez /readyz /healthz /livez/* /readyz/* /healthz/*",
                )
            ],
        ),
        _role("system:node", _node()),
        # metrics-server's own roles (its manifests, not kube-apiserver's): kajitori runs
        # it in process as user system:metrics-server, and every viewer may read metrics.
        _role(
            "system:metrics-server",
            [_r("get", CORE, "nodes/metrics"), _r("get list watch", CORE, "pods nodes")],
            labels={"k8s-app": "metrics-server"},
        ),
        _role(
            "system:aggregated-metrics-reader",
            [_r("get list watch", ("metrics.k8s.io",), "pods nodes")],
            labels={"k8s-app": "metrics-server", **_agg("admin", "edit", "view")},
        ),
        # kajitori's own: the host of many simulated kubelets watches all their
        # pods and nodes with one identity (each node still writes as itself).
        _role("system:kajitori:simulated-kubelets", [_r(READ, CORE, "nodes pods")]),
        _role(
            "system:node-bootstrapper",
            [_r("create get list watch", CERTIFICATES, "certificatesigningrequests")],
        ),
        _role(
            "system:node-problem-detector",
            [_r("get", CORE, "nodes"), _r("patch", CORE, "nodes/status"), EVENTS_RULE],
        ),
        _role(
            "system:node-proxier",
            [
                _r("list watch", CORE, "services endpoints"),
                _r(READ, CORE, "nodes"),
                EVENTS_RULE,
                _r("list watch", ("discovery.k8s.io",), "endpointslices"),
            ],
        ),
        _role(
            "system:persistent-volume-provisioner",
            [
                _r("get list watch create delete", CORE, "persistentvolumes"),
                _r("get list watch update", CORE, "persistentvolumeclaims"),
                _r(READ, STORAGE, "storageclasses"),
                _r("watch", CORE, "events"),
                EVENTS_RULE,
            ],
        ),
        _role(
            "system:public-info-viewer",
            [_urls("get", "/healthz /livez /readyz /version /version/")],
        ),
        _role(
            "system:service-account-issuer-discovery",
            [_urls("get", "/.well-known/openid-configuration /openid/v1/jwks")],
        ),
        _role(
            "system:volume-scheduler",
            [
                _r("get list watch update patch", CORE, "persistentvolumes"),
                _r(READ, STORAGE, "storageclasses"),
                _r("get list watch update patch", CORE, "persistentvolumeclaims"),
            ],
        ),
    ]


# ----- controller roles (controller_policy.go) ------------------------------------

CONTROLLER_PREFIX = "system:controller:"


def _controller_rules() -> dict[str, list[Rule]]:
    """Per-controller rules; each controller runs as the kube-system ServiceAccount of its name."""
    scale_get = _r("get", ALL, "*/scale")
    return {
        "attachdetach-controller": [
            _r("list watch", CORE, "persistentvolumes persistentvolumeclaims"),
            _r(READ, CORE, "nodes"),
            _r("patch update", CORE, "nodes/status"),
            _r("list watch", CORE, "pods"),
            EVENTS_RULE,
            _r("get create delete list watch", STORAGE, "volumeattachments"),
            _r(READ, STORAGE, "csidrivers"),
            _r(READ, STORAGE, "csinodes"),
        ],
        "certificate-controller": [
            _r("get list watch delete", CERTIFICATES, "certificatesigningrequests"),
            _r(
                "update",
                CERTIFICATES,
                "certificatesigningrequests/status certificatesigningrequests/approval",
            ),
            _r(
                "approve",
                CERTIFICATES,
                "signers",
                names="kubernetes.io/kube-apiserver-client-kubelet",
            ),
            _r(
                "sign",
                CERTIFICATES,
                "signers",
                names="kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet "
                "kubernetes.io/kubelet-serving kubernetes.io/legacy-unknown",
            ),
            _r("create", ("authorization.k8s.io",), "subjectaccessreviews"),
            EVENTS_RULE,
        ],
        "clusterrole-aggregation-controller": [
            _r("escalate get list patch update watch", (RBAC_GROUP,), "clusterroles"),
        ],
        "cronjob-controller": [
            _r("get list watch update", BATCH, "cronjobs"),
            _r("get list watch create update delete patch", BATCH, "jobs"),
            _r("update", BATCH, "cronjobs/status"),
            _r("update", BATCH, "cronjobs/finalizers"),
            _r("list watch delete", CORE, "pods"),
            EVENTS_RULE,
        ],
        "daemon-set-controller": [
            _r(READ, APPS_EXT, "daemonsets"),
            _r("update", APPS_EXT, "daemonsets/status"),
            _r("update", APPS_EXT, "daemonsets/finalizers"),
            _r("list watch", CORE, "nodes"),
            _r("list watch create delete patch", CORE, "pods"),
            _r("create", CORE, "pods/binding"),
            _r("get list watch create update delete patch", APPS, "controllerrevisions"),
            EVENTS_RULE,
        ],
        "deployment-controller": [
            _r("get list watch update", APPS_EXT, "deployments"),
            _r("update", APPS_EXT, "deployments/status"),
            _r("update", APPS_EXT, "deployments/finalizers"),
            _r("get list watch create update patch delete", APPS_EXT, "replicasets"),
            _r("get list update watch", CORE, "pods"),
            EVENTS_RULE,
        ],
        "disruption-controller": [
            _r(READ, APPS_EXT, "deployments"),
            _r(READ, APPS_EXT, "replicasets"),
            _r(READ, CORE, "replicationcontrollers"),
            _r(READ, ("policy",), "poddisruptionbudgets"),
            _r(READ, APPS, "statefulsets"),
            _r("update", ("policy",), "poddisruptionbudgets/status"),
            _r("patch update", CORE, "pods/status"),
            scale_get,
            EVENTS_RULE,
        ],
        "endpoint-controller": [
            _r(READ, CORE, "services pods"),
            _r("get list create update delete watch", CORE, "endpoints"),
            _r("create", CORE, "endpoints/restricted"),
            EVENTS_RULE,
        ],
        "endpointslice-controller": [
            _r(READ, CORE, "services pods nodes"),
            _r("update", CORE, "services/finalizers"),
            _r("get list create update delete watch", ("discovery.k8s.io",), "endpointslices"),
            EVENTS_RULE,
        ],
        "endpointslicemirroring-controller": [
            _r(READ, CORE, "services endpoints"),
            _r("update", CORE, "services/finalizers"),
            _r("update", CORE, "endpoints/finalizers"),
            _r("get list create update delete watch", ("discovery.k8s.io",), "endpointslices"),
            EVENTS_RULE,
        ],
        "ephemeral-volume-controller": [
            _r(READ, CORE, "pods"),
            _r("update", CORE, "pods/finalizers"),
            _r("get list watch create", CORE, "persistentvolumeclaims"),
            EVENTS_RULE,
        ],
        "expand-controller": [
            _r("get list watch update patch", CORE, "persistentvolumes"),
            _r("update patch", CORE, "persistentvolumeclaims/status"),
            _r(READ, CORE, "persistentvolumeclaims"),
            EVENTS_RULE,
        ],
        "generic-garbage-collector": [
            _r("get list watch patch update delete", ALL, "*"),
            EVENTS_RULE,
        ],
        "horizontal-pod-autoscaler": [
            _r(READ, ("autoscaling",), "horizontalpodautoscalers"),
            _r("update", ("autoscaling",), "horizontalpodautoscalers/status"),
            _r("get update", ALL, "*/scale"),
            _r("list watch", CORE, "pods"),
            _r("list watch", ("metrics.k8s.io",), "pods"),
            _r(READ, ("custom.metrics.k8s.io",), "*"),
            _r(READ, ("external.metrics.k8s.io",), "*"),
            EVENTS_RULE,
        ],
        "job-controller": [
            _r("get list watch update patch", BATCH, "jobs"),
            _r("update", BATCH, "jobs/status"),
            _r("update", BATCH, "jobs/finalizers"),
            _r("list watch create delete patch", CORE, "pods"),
            EVENTS_RULE,
        ],
        "legacy-service-account-token-cleaner": [
            _r(
                "get",
                CORE,
                "configmaps",
                names="kube-apiserver-legacy-service-account-token-tracking",
            ),
            _r("delete patch", CORE, "secrets"),
        ],
        "namespace-controller": [
            _r("get list watch delete", CORE, "namespaces"),
            _r("update", CORE, "namespaces/finalize namespaces/status"),
            _r("get list watch delete deletecollection", ALL, "*"),
        ],
        "node-controller": [
            _r("get list update delete patch watch", CORE, "nodes"),
            _r("patch update", CORE, "nodes/status"),
            _r("patch update", CORE, "pods/status"),
            _r("list delete get watch", CORE, "pods"),
            EVENTS_RULE,
        ],
        "persistent-volume-binder": [
            _r("get list watch update create delete", CORE, "persistentvolumes"),
            _r("update", CORE, "persistentvolumes/status"),
            _r("get list watch update", CORE, "persistentvolumeclaims"),
            _r("update", CORE, "persistentvolumeclaims/status"),
            _r("list watch get create delete", CORE, "pods"),
            _r(READ, STORAGE, "storageclasses"),
            _r("list watch", CORE, "nodes"),
            EVENTS_RULE,
            _r("watch", CORE, "events"),
        ],
        "pod-garbage-collector": [
            _r("list watch delete", CORE, "pods"),
            _r("get list", CORE, "nodes"),
            _r("patch", CORE, "pods/status"),
        ],
        "pv-protection-controller": [
            _r("get list watch update", CORE, "persistentvolumes"),
            EVENTS_RULE,
        ],
        "resource-claim-controller": [
            _r(READ, CORE, "pods"),
            _r("update", CORE, "pods/finalizers"),
            _r("get list watch create delete", RESOURCE, "resourceclaims"),
            _r("update patch", RESOURCE, "resourceclaims resourceclaims/status"),
            _r("update patch", CORE, "pods/status"),
            _r(READ, RESOURCE, "resourceclaimtemplates"),
            EVENTS_RULE,
        ],
        "pvc-protection-controller": [
            _r("get list watch update", CORE, "persistentvolumeclaims"),
            _r("update", CORE, "persistentvolumeclaims/status"),
            _r(READ, CORE, "pods"),
            EVENTS_RULE,
        ],
        "replicaset-controller": [
            _r("get list watch update", APPS_EXT, "replicasets"),
            _r("update", APPS_EXT, "replicasets/status"),
            _r("update", APPS_EXT, "replicasets/finalizers"),
            _r("list watch patch create delete", CORE, "pods"),
            EVENTS_RULE,
        ],
        "replication-controller": [
            _r("get list watch update", CORE, "replicationcontrollers"),
            _r("update", CORE, "replicationcontrollers/status"),
            _r("update", CORE, "replicationcontrollers/finalizers"),
            _r("list watch patch create delete", CORE, "pods"),
            EVENTS_RULE,
        ],
        "resourcequota-controller": [
            _r("list watch", ALL, "*"),
            _r("update", CORE, "resourcequotas/status"),
            EVENTS_RULE,
        ],
        "root-ca-cert-publisher": [
            _r("create update", CORE, "configmaps"),
            EVENTS_RULE,
        ],
        "route-controller": [
            _r("list watch", CORE, "nodes"),
            _r("patch", CORE, "nodes/status"),
            EVENTS_RULE,
        ],
        "service-account-controller": [
            _r("create", CORE, "serviceaccounts"),
            EVENTS_RULE,
        ],
        "service-cidrs-controller": [
            _r("get list watch patch update", NETWORKING, "servicecidrs"),
            _r("patch update", NETWORKING, "servicecidrs/finalizers"),
            _r("patch update", NETWORKING, "servicecidrs/status"),
            _r(READ, NETWORKING, "ipaddresses"),
            EVENTS_RULE,
        ],
        # Upstream's comments: list for a resource's current RV, patch for the
        # no-op write, create because a write to a deleted object is one.
        "kube-apiserver-serving-clustertrustbundle-publisher": [
            _r("attest", CERTIFICATES, "signers", names="kubernetes.io/kube-apiserver-serving"),
            _r("create delete list update watch", CERTIFICATES, "clustertrustbundles"),
            EVENTS_RULE,
        ],
        "podcertificaterequestcleaner": [
            _r("get list watch delete", CERTIFICATES, "podcertificaterequests"),
        ],
        "storage-version-migrator-controller": [
            _r("list create patch", ("*",), "*"),
            _r("update", ("storagemigration.k8s.io",), "storageversionmigrations/status"),
        ],
        "service-controller": [
            _r(READ, CORE, "services"),
            _r("patch update", CORE, "services/status"),
            _r("list watch", CORE, "nodes"),
            EVENTS_RULE,
        ],
        "statefulset-controller": [
            _r("list watch", CORE, "pods"),
            _r(READ, APPS, "statefulsets"),
            _r("update", APPS, "statefulsets/status"),
            _r("update", APPS, "statefulsets/finalizers"),
            _r("get create delete update patch", CORE, "pods"),
            _r("get create delete update patch list watch", APPS, "controllerrevisions"),
            _r("get create list watch", CORE, "persistentvolumeclaims"),
            _r("update delete", CORE, "persistentvolumeclaims"),
            _r("update", CORE, "pods/finalizers"),
            EVENTS_RULE,
        ],
        "ttl-after-finished-controller": [
            _r("get list watch delete", BATCH, "jobs"),
            EVENTS_RULE,
        ],
        "ttl-controller": [
            _r("update patch list watch", CORE, "nodes"),
            EVENTS_RULE,
        ],
        "validatingadmissionpolicy-status-controller": [
            _r(READ, ("admissionregistration.k8s.io",), "validatingadmissionpolicies"),
            _r(
                "get patch update",
                ("admissionregistration.k8s.io",),
                "validatingadmissionpolicies/status",
            ),
            EVENTS_RULE,
        ],
    }


def controller_roles() -> list[Object]:
    return [_role(CONTROLLER_PREFIX + name, rules) for name, rules in _controller_rules().items()]


# ----- bindings (policy.go ClusterRoleBindings, controller_policy.go) ------------


def _subject(kind: str, name: str, namespace: str = "") -> Object:
    if kind == "ServiceAccount":
        # apiGroup "" is what defaulting gives ServiceAccount subjects.
        return {"kind": kind, "apiGroup": "", "name": name, "namespace": namespace}
    return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}


def _binding(role: str, subjects: Sequence[Object], *, name: str = "") -> Object:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name or role,
            "labels": dict(BOOTSTRAPPING),
            "annotations": {AUTOUPDATE: "true"},
        },
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [dict(s) for s in subjects],
    }


def cluster_role_bindings() -> list[Object]:
    """Upstream's default ClusterRoleBindings, controller bindings included."""
    authenticated = _subject("Group", "system:authenticated")
    bindings = [
        _binding("cluster-admin", [_subject("Group", "system:masters")]),
        _binding("system:monitoring", [_subject("Group", "system:monitoring")]),
        _binding("system:discovery", [authenticated]),
        _binding("system:basic-user", [authenticated]),
        _binding(
            "system:public-info-viewer",
            [authenticated, _subject("Group", "system:unauthenticated")],
        ),
        _binding("system:node-proxier", [_subject("User", "system:kube-proxy")]),
        _binding(
            "system:kube-controller-manager", [_subject("User", "system:kube-controller-manager")]
        ),
        _binding("system:kube-dns", [_subject("ServiceAccount", "kube-dns", "kube-system")]),
        _binding("system:coredns", [_subject("ServiceAccount", "coredns", "kube-system")]),
        _binding("system:kube-scheduler", [_subject("User", "system:kube-scheduler")]),
        _binding("system:metrics-server", [_subject("User", "system:metrics-server")]),
        _binding("system:volume-scheduler", [_subject("User", "system:kube-scheduler")]),
        # The node authorizer decides for kubelets; upstream keeps this binding subject-less.
        _binding("system:node", []),
        _binding(
            "system:kajitori:simulated-kubelets",
            [_subject("User", "system:kajitori:simulated-kubelets")],
        ),
        # kajitori's own: ``kajitori kubelet --nodes N`` in another process acts for all its
        # nodes as one user, with a kubelet's rules on every node (as KWOK; decision 0049).
        _binding(
            "system:node",
            [_subject("User", "system:kajitori:node-simulator")],
            name="system:kajitori:node-simulator",
        ),
        _binding(
            "system:service-account-issuer-discovery",
            [_subject("Group", "system:serviceaccounts")],
        ),
    ]
    for name in _controller_rules():
        sa = _subject("ServiceAccount", name, "kube-system")
        bindings.append(_binding(CONTROLLER_PREFIX + name, [sa]))
    return bindings


# ----- reconciliation at start ------------------------------------------------------


async def reconcile(stores: Mapping[str, Store]) -> None:
    """Create missing default roles and bindings; top up those not marked autoupdate=false.

    ``stores`` is keyed by plural (``clusterroles``, ``clusterrolebindings``).
    Each object is independent of the others: all go out at once, sharing
    storage round trips (a fresh start's writes, a third of its wait before).
    """
    async with asyncio.TaskGroup() as tasks:
        for role in [*cluster_roles(), *controller_roles()]:
            tasks.create_task(_reconcile_one(stores["clusterroles"], role, _merge_role))
        for binding in cluster_role_bindings():
            tasks.create_task(
                _reconcile_one(stores["clusterrolebindings"], binding, _merge_binding)
            )


async def _reconcile_one(store: Store, expected: Object, merge: Any) -> None:
    ctx = RequestContext(user=_SYSTEM)
    name = expected["metadata"]["name"]
    try:
        existing = await store.get("", name)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        try:
            await store.create("", copy.deepcopy(expected), ctx)
        except errors.StatusError as create_exc:
            if create_exc.code != 409:  # another API server was first
                raise
        return
    if (existing["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return
    merged = merge(copy.deepcopy(existing), expected)
    if merged != existing:
        try:
            await store.update("", name, merged, ctx)
        except errors.StatusError as exc:
            if exc.code != 409:
                raise


def _merge_meta(existing: Object, expected: Object) -> None:
    meta = existing["metadata"]
    for key in ("labels", "annotations"):
        wanted = expected["metadata"].get(key) or {}
        meta[key] = {**wanted, **(meta.get(key) or {})}


def _merge_role(existing: Object, expected: Object) -> Object:
    """Existing rules kept; expected rules added when not already covered exactly."""
    _merge_meta(existing, expected)
    rules = list(existing.get("rules") or [])
    if not expected.get("aggregationRule"):
        # Aggregated roles' rules belong to the aggregation controller.
        rules.extend(r for r in expected["rules"] if r not in rules)
        existing["rules"] = rules
    want_selectors = (expected.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if want_selectors:
        rule = existing.setdefault("aggregationRule", {})
        have = rule.setdefault("clusterRoleSelectors", [])
        have.extend(s for s in want_selectors if s not in have)
    return existing


def _merge_binding(existing: Object, expected: Object) -> Object:
    _merge_meta(existing, expected)
    subjects = list(existing.get("subjects") or [])
    present = {_subject_identity(s) for s in subjects}
    subjects.extend(s for s in expected["subjects"] if _subject_identity(s) not in present)
    if subjects:
        existing["subjects"] = subjects
    return existing


def _subject_identity(subject: Object) -> tuple[str, str, str]:
    return subject.get("kind", ""), subject.get("name", ""), subject.get("namespace", "")
