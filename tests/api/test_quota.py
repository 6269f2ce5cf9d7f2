"""Quota evaluators: what pods, services and claims cost, and which scopes they fall into."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.api import quota

Object = dict[str, Any]
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _container(name: str, requests: Object | None = None, limits: Object | None = None) -> Object:
    resources: Object = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"name": name, "image": "x", "resources": resources}


def _encoded(values: quota.ResourceList) -> dict[str, str]:
    return quota.encode_list(values)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"containers": [_container("a", {"cpu": "100m"}), _container("b", {"cpu": "200m"})]},
            {"cpu": "300m", "requests.cpu": "300m"},
            id="containers-add-up",
        ),
        pytest.param(
            {
                "containers": [_container("a", {"cpu": "100m"})],
                "initContainers": [_container("i", {"cpu": "1"})],
            },
            {"cpu": "1", "requests.cpu": "1"},
            id="an-init-container-alone-can-be-the-peak",
        ),
        pytest.param(
            {
                "containers": [_container("a", {"memory": "1Gi"})],
                "initContainers": [
                    {**_container("side", {"memory": "1Gi"}), "restartPolicy": "Always"},
                    _container("i", {"memory": "1536Mi"}),
                ],
            },
            {"memory": "2560Mi", "requests.memory": "2560Mi"},
            id="sidecars-run-beside-later-init-containers",
        ),
        pytest.param(
            {
                "containers": [_container("a", {"cpu": "1"}, {"cpu": "2"})],
                "overhead": {"cpu": "250m"},
            },
            {"cpu": "1250m", "requests.cpu": "1250m", "limits.cpu": "2250m"},
            id="overhead-is-charged",
        ),
        pytest.param(
            {"containers": [_container("a", {"example.com/gpu": "2", "hugepages-2Mi": "4Mi"})]},
            {
                "requests.example.com/gpu": "2",
                "hugepages-2Mi": "4Mi",
                "requests.hugepages-2Mi": "4Mi",
            },
            id="extended-and-hugepages",
        ),
    ],
)
def test_pod_usage(spec: Object, expected: dict[str, str]) -> None:
    """A live pod costs count/pods, pods and its kubelet-reserved compute."""
    usage = quota.PodEvaluator().usage({"spec": spec}, NOW)
    assert _encoded(usage) == {"count/pods": "1", "pods": "1", **expected}


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param({"status": {"phase": "Succeeded"}}, id="succeeded"),
        pytest.param({"status": {"phase": "Failed"}}, id="failed"),
        pytest.param(
            {
                "metadata": {
                    "deletionTimestamp": "2025-12-31T23:59:00Z",
                    "deletionGracePeriodSeconds": 30,
                }
            },
            id="past-its-deletion-grace",
        ),
    ],
)
def test_finished_pods_cost_only_their_object_count(pod: Object) -> None:
    """Terminal pods stay in count/pods but no longer hold pods or compute."""
    pod["spec"] = {"containers": [_container("a", {"cpu": "1"})]}
    assert _encoded(quota.PodEvaluator().usage(pod, NOW)) == {"count/pods": "1"}


def test_pod_scopes() -> None:
    """BestEffort looks at positive cpu/memory only; Terminating at activeDeadlineSeconds."""
    evaluator = quota.PodEvaluator()
    zero = {"spec": {"containers": [_container("a", {"cpu": "0"})]}}
    sized = {
        "spec": {
            "containers": [_container("a", {"memory": "1Mi"})],
            "activeDeadlineSeconds": 10,
            "priorityClassName": "high",
        }
    }
    assert evaluator.matches_scope(quota.ScopeSelector("BestEffort"), zero)
    assert evaluator.matches_scope(quota.ScopeSelector("NotBestEffort"), sized)
    assert evaluator.matches_scope(quota.ScopeSelector("Terminating"), sized)
    assert evaluator.matches_scope(quota.ScopeSelector("NotTerminating"), zero)
    high = quota.ScopeSelector("PriorityClass", "In", ("high",))
    assert evaluator.matches_scope(high, sized) and not evaluator.matches_scope(high, zero)
    not_high = quota.ScopeSelector("PriorityClass", "NotIn", ("high",))
    assert evaluator.matches_scope(not_high, zero)


def test_constraints_name_what_each_container_lacks() -> None:
    """Upstream's text: resources sorted, then the containers lacking each."""
    pod = {
        "spec": {
            "containers": [_container("web", {"cpu": "1"}, {"cpu": "1"}), _container("log")],
            "initContainers": [_container("init", {"cpu": "1"})],
        }
    }
    problem = quota.PodEvaluator().constraints(
        ["requests.cpu", "limits.cpu", "pods", "requests.storage"], pod
    )
    assert problem == "must specify limits.cpu for: init,log; requests.cpu for: log"


@pytest.mark.parametrize(
    ("spec", "node_ports", "balancers"),
    [
        pytest.param({"type": "ClusterIP", "ports": [{"port": 80}]}, "0", "0", id="cluster-ip"),
        pytest.param({"type": "NodePort", "ports": [{}, {}]}, "2", "0", id="node-port"),
        pytest.param({"type": "LoadBalancer", "ports": [{}]}, "1", "1", id="load-balancer"),
        pytest.param(
            {
                "type": "LoadBalancer",
                "allocateLoadBalancerNodePorts": False,
                "ports": [{"nodePort": 30000}, {}],
            },
            "1",
            "1",
            id="load-balancer-without-allocated-node-ports",
        ),
    ],
)
def test_service_usage(spec: Object, node_ports: str, balancers: str) -> None:
    """Node ports per port of NodePort and LoadBalancer services; one per load balancer."""
    usage = _encoded(quota.ServiceEvaluator().usage({"spec": spec}, NOW))
    assert usage["services.nodeports"] == node_ports
    assert usage["services.loadbalancers"] == balancers


def test_claim_usage_by_storage_class() -> None:
    """The beta annotation names the class over spec; allocated storage counts when larger."""
    pvc = {
        "metadata": {"annotations": {quota.BETA_STORAGE_CLASS_ANNOTATION: "gold"}},
        "spec": {"storageClassName": "silver", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"allocatedResources": {"storage": "2Gi"}},
    }
    assert _encoded(quota.PersistentVolumeClaimEvaluator().usage(pvc, NOW)) == {
        "count/persistentvolumeclaims": "1",
        "persistentvolumeclaims": "1",
        "requests.storage": "2Gi",
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
        "gold.storageclass.storage.k8s.io/requests.storage": "2Gi",
    }


@pytest.mark.parametrize(
    ("name", "resource"),
    [
        pytest.param("requests.cpu", ("", "pods"), id="compute"),
        pytest.param("services.nodeports", ("", "services"), id="node-ports"),
        pytest.param("requests.storage", ("", "persistentvolumeclaims"), id="storage"),
        pytest.param("secrets", ("", "secrets"), id="classic-name"),
        pytest.param("count/deployments.apps", ("apps", "deployments"), id="count-with-group"),
        pytest.param("count/widgets.example.com", ("example.com", "widgets"), id="custom"),
    ],
)
def test_resource_for_name(name: str, resource: tuple[str, str]) -> None:
    """Each quota name is counted by listing one resource."""
    assert quota.resource_for_name(name) == resource


def test_pretty_print_sorts_and_joins() -> None:
    """Upstream's error formatting: name=value pairs, sorted, comma-joined."""
    values = quota.parse_list({"pods": "2", "limits.cpu": "1500m"})
    assert quota.pretty_print(values) == "limits.cpu=1500m,pods=2"


def test_remembered_evaluators_answer_for_their_own_resource() -> None:
    """``evaluator_for`` is remembered per (group, plural): never another resource's."""
    configmaps = quota.evaluator_for("", "configmaps")
    assert quota.evaluator_for("", "configmaps") is configmaps
    assert configmaps.matching_resources(["count/configmaps", "configmaps", "secrets"]) == [
        "count/configmaps",
        "configmaps",
    ]
    widgets = quota.evaluator_for("example.com", "widgets")
    assert widgets.matching_resources(["count/widgets.example.com", "count/widgets"]) == [
        "count/widgets.example.com"
    ]
    assert quota.evaluator_for("", "pods") is not configmaps
    assert quota.evaluator_for("", "pods").handles("CREATE")
