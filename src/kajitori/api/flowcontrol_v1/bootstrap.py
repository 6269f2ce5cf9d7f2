"""The API Priority and Fairness configuration every API server keeps in the cluster.

Data from upstream's apiserver/pkg/apis/flowcontrol/bootstrap (default.go),
written in our own compact form, as of 1.37 (the ``workload-leader-election``
and ``endpoint-controller`` FlowSchemas for Endpoints/ConfigMaps leader
election were dropped in 1.34; a server keeping them from before deletes
them, as they carry the auto-update annotation). Two kinds of objects:

* mandatory (``exempt`` and ``catch-all`` of both kinds): the server re-imposes
  their spec, and validation refuses any other spec for those names (only
  the ``exempt`` priority level's ``spec.exempt`` section may be changed);
* suggested: created when missing, and kept at these specs only while their
  ``apf.kubernetes.io/autoupdate-spec`` annotation says "true".

Every object is created carrying that annotation set to "true". Each call
returns fresh objects, so callers may mutate what they get. The objects are
already in their defaulted form (defaulting changes nothing in them, as
upstream checks in its tests).
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]

GROUP_VERSION = "flowcontrol.apiserver.k8s.io/v1"
AUTO_UPDATE_ANNOTATION = "apf.kubernetes.io/autoupdate-spec"

EXEMPT = "exempt"
CATCH_ALL = "catch-all"

_MASTERS = "system:masters"
_NODES = "system:nodes"
_AUTHENTICATED = "system:authenticated"
_UNAUTHENTICATED = "system:unauthenticated"
_SERVICE_ACCOUNTS = "system:serviceaccounts"
_CONTROLLER_MANAGER = "system:kube-controller-manager"
_SCHEDULER = "system:kube-scheduler"


# ----- building blocks ------------------------------------------------------


def _meta(name: str) -> Object:
    return {"name": name, "annotations": {AUTO_UPDATE_ANNOTATION: "true"}}


def _groups(*names: str) -> list[Object]:
    return [{"kind": "Group", "group": {"name": name}} for name in names]


def _users(*names: str) -> list[Object]:
    return [{"kind": "User", "user": {"name": name}} for name in names]


def _kube_system_accounts(*names: str) -> list[Object]:
    return [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": name}}
        for name in names
    ]


def _resources(
    verbs: str, groups: str, resources: str, namespaces: str, *, cluster_scope: bool = False
) -> Object:
    """A ResourcePolicyRule; ``groups`` "-" stands for the core group ("")."""
    rule: Object = {
        "verbs": verbs.split(),
        "apiGroups": ["" if g == "-" else g for g in groups.split()],
        "resources": resources.split(),
    }
    if cluster_scope:
        rule["clusterScope"] = True
    rule["namespaces"] = namespaces.split()
    return rule


def _everything(subjects: list[Object]) -> Object:
    """Rules matching every request of ``subjects``, resource or not."""
    return {
        "subjects": subjects,
        "resourceRules": [_resources("*", "*", "*", "*", cluster_scope=True)],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    }


def _flow_schema(name: str, level: str, precedence: int, method: str, *rules: Object) -> Object:
    spec: Object = {
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
    }
    if method:
        spec["distinguisherMethod"] = {"type": method}
    spec["rules"] = list(rules)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "FlowSchema",
        "metadata": _meta(name),
        "spec": spec,
    }


def _limited(
    name: str, shares: int, lendable: int, queues: int = 0, hand: int = 0, length: int = 0
) -> Object:
    """A Limited priority level; without ``queues`` it rejects instead of queuing."""
    response: Object = {"type": "Reject"}
    if queues:
        response = {
            "type": "Queue",
            "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length},
        }
    spec = {
        "type": "Limited",
        "limited": {
            "nominalConcurrencyShares": shares,
            "limitResponse": response,
            "lendablePercent": lendable,
        },
    }
    return _priority_level(name, spec)


def _priority_level(name: str, spec: Object) -> Object:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "PriorityLevelConfiguration",
        "metadata": _meta(name),
        "spec": spec,
    }


# ----- the objects ------------------------------------------------------------


def mandatory_priority_levels() -> list[Object]:
    """catch-all, then exempt: upstream creates exempt last, so a crash midway retries all."""
    return [
        _limited(CATCH_ALL, 5, 0),
        _priority_level(
            EXEMPT,
            {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}},
        ),
    ]


def mandatory_flow_schemas() -> list[Object]:
    return [
        _flow_schema(EXEMPT, EXEMPT, 1, "", _everything(_groups(_MASTERS))),
        _flow_schema(
            CATCH_ALL,
            CATCH_ALL,
            10000,
            "ByUser",
            _everything(_groups(_UNAUTHENTICATED, _AUTHENTICATED)),
        ),
    ]


def suggested_priority_levels() -> list[Object]:
    return [
        _limited("system", 30, 33, 64, 6, 50),
        _limited("node-high", 40, 25, 64, 6, 50),
        _limited("leader-election", 10, 0, 16, 4, 50),
        _limited("workload-high", 40, 50, 128, 6, 50),
        _limited("workload-low", 100, 90, 128, 6, 50),
        _limited("global-default", 20, 50, 128, 6, 50),
    ]


_GET_CREATE_UPDATE = "get create update"


def suggested_flow_schemas() -> list[Object]:
    return [
        _flow_schema("system-nodes", "system", 500, "ByUser", _everything(_groups(_NODES))),
        _flow_schema(
            "system-node-high",
            "node-high",
            400,
            "ByUser",
            {
                "subjects": _groups(_NODES),
                "resourceRules": [
                    _resources("*", "-", "nodes nodes/status", "*", cluster_scope=True),
                    _resources("*", "coordination.k8s.io", "leases", "*"),
                ],
            },
        ),
        _flow_schema(
            "probes",
            EXEMPT,
            2,
            "",
            {
                "subjects": _groups(_UNAUTHENTICATED, _AUTHENTICATED),
                "nonResourceRules": [
                    {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}
                ],
            },
        ),
        _flow_schema(
            "system-leader-election",
            "leader-election",
            100,
            "ByUser",
            {
                "subjects": [
                    *_users(_CONTROLLER_MANAGER, _SCHEDULER),
                    *_kube_system_accounts("*"),
                ],
                "resourceRules": [
                    _resources(_GET_CREATE_UPDATE, "coordination.k8s.io", "leases", "*")
                ],
            },
        ),
        _flow_schema(
            "kube-controller-manager",
            "workload-high",
            800,
            "ByNamespace",
            _everything(_users(_CONTROLLER_MANAGER)),
        ),
        _flow_schema(
            "kube-scheduler", "workload-high", 800, "ByNamespace", _everything(_users(_SCHEDULER))
        ),
        _flow_schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            "ByNamespace",
            _everything(_kube_system_accounts("*")),
        ),
        _flow_schema(
            "service-accounts",
            "workload-low",
            9000,
            "ByUser",
            _everything(_groups(_SERVICE_ACCOUNTS)),
        ),
        _flow_schema(
            "global-default",
            "global-default",
            9900,
            "ByUser",
            _everything(_groups(_UNAUTHENTICATED, _AUTHENTICATED)),
        ),
    ]


def mandatory_flow_schema_specs() -> dict[str, Object]:
    """Name -> the fixed spec, for validation."""
    return {fs["metadata"]["name"]: fs["spec"] for fs in mandatory_flow_schemas()}


def mandatory_priority_level_specs() -> dict[str, Object]:
    return {pl["metadata"]["name"]: pl["spec"] for pl in mandatory_priority_levels()}
