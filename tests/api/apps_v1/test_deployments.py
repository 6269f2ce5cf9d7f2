"""Defaulting and validation of apps/v1 Deployments, ReplicaSets, StatefulSets and DaemonSets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.apps_v1 import defaults
from kajitori.api.apps_v1.validation import daemonsets, deployments, replicasets, statefulsets

Object = dict[str, Any]


def _workload(kind: str, **spec: Any) -> Object:
    obj: Object = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
            **spec,
        },
    }
    return obj


def _deployment(**spec: Any) -> Object:
    obj = _workload("Deployment", **spec)
    defaults.set_defaults_deployment(obj)
    return obj


def _messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def test_deployment_defaults_match_upstream() -> None:
    """An empty Deployment spec gets replicas 1, RollingUpdate 25%/25%, history 10, deadline 600."""
    obj = _deployment()
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


def test_deployment_defaulting_is_idempotent() -> None:
    """Defaulting twice changes nothing the second time."""
    obj = _deployment()
    again = copy.deepcopy(obj)
    defaults.set_defaults_deployment(again)
    assert again == obj


def test_recreate_deployment_gets_no_rolling_update_defaults() -> None:
    """Only the RollingUpdate strategy gets maxSurge/maxUnavailable."""
    obj = _deployment(strategy={"type": "Recreate"})
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_valid_deployment_passes() -> None:
    """A defaulted, well-formed Deployment has no errors."""
    assert _messages(deployments.validate_deployment(_deployment())) == []


def _without_selector() -> Object:
    obj = _deployment()
    del obj["spec"]["selector"]
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            _without_selector(),
            [
                "spec.selector: Required value",
                'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`',
            ],
            id="missing-selector",
        ),
        pytest.param(
            _deployment(selector={"matchLabels": {"app": "other"}}),
            [
                'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`'
            ],
            id="selector-mismatch",
        ),
        pytest.param(
            _deployment(replicas=-1),
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            id="negative-replicas",
        ),
        pytest.param(
            _deployment(strategy={"type": "Rolling"}),
            [
                'spec.strategy: Unsupported value: {"type":"Rolling"}: supported values: "Recreate", "RollingUpdate"'
            ],
            id="bad-strategy",
        ),
        pytest.param(
            _deployment(
                strategy={
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0},
                }
            ),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
            ],
            id="zero-surge-and-unavailable",
        ),
        pytest.param(
            _deployment(
                strategy={
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "1", "maxUnavailable": "150%"},
                }
            ),
            [
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"1\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%',
            ],
            id="bad-percentages",
        ),
        pytest.param(
            _deployment(progressDeadlineSeconds=10, minReadySeconds=10),
            [
                "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"
            ],
            id="deadline-not-above-min-ready",
        ),
        pytest.param(
            _deployment(selector={}),
            [
                "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
            ],
            id="empty-selector",
        ),
    ],
)
def test_deployment_mistakes_get_upstream_messages(obj: Object, expected: list[str]) -> None:
    """Each typical mistake is refused with upstream's field path and message."""
    assert _messages(deployments.validate_deployment(obj)) == expected


def test_deployment_template_must_restart_always() -> None:
    """A Deployment's pods must use restartPolicy Always."""
    obj = _deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert (
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
        in _messages(deployments.validate_deployment(obj))
    )


def test_deployment_selector_is_immutable() -> None:
    """Changing the selector of an apps/v1 Deployment is refused as immutable."""
    old = _deployment()
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert _messages(deployments.validate_deployment_update(new, old)) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is immutable'
    ]


def test_replica_set_invalid_selector_operator_is_reported() -> None:
    """A bad matchExpressions operator is reported at its path, plus the conversion failure."""
    obj = _workload(
        "ReplicaSet", selector={"matchExpressions": [{"key": "app", "operator": "Has"}]}
    )
    defaults.set_defaults_replica_set(obj)
    assert _messages(replicasets.validate_replica_set(obj)) == [
        'spec.selector.matchExpressions[0].operator: Invalid value: "Has": not a valid selector operator',
        'spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Has"}]}: invalid label selector',
    ]


def _stateful_set(**spec: Any) -> Object:
    obj = _workload("StatefulSet", serviceName="web", **spec)
    defaults.set_defaults_stateful_set(obj)
    return obj


def test_stateful_set_defaults_match_upstream() -> None:
    """StatefulSets default to OrderedReady, RollingUpdate partition 0 / maxUnavailable 1, Retain/Retain."""
    obj = _stateful_set(
        volumeClaimTemplates=[
            {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
        ]
    )
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 0, "maxUnavailable": 1},
    }
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert (spec["replicas"], spec["revisionHistoryLimit"]) == (1, 10)
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert spec["volumeClaimTemplates"][0]["status"] == {"phase": "Pending"}


def test_stateful_set_names_must_be_dns_labels() -> None:
    """StatefulSet names name pods, so dots are refused."""
    obj = _stateful_set()
    obj["metadata"]["name"] = "web.v1"
    errs = _messages(statefulsets.validate_stateful_set(obj))
    assert errs == ['metadata.name: Invalid value: "web.v1": must not contain dots']


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        pytest.param({"replicas": 5}, True, id="replicas"),
        pytest.param({"minReadySeconds": 5}, True, id="minReadySeconds"),
        pytest.param({"revisionHistoryLimit": 3}, True, id="revisionHistoryLimit"),
        pytest.param({"serviceName": "other"}, False, id="serviceName"),
        pytest.param({"podManagementPolicy": "Parallel"}, False, id="podManagementPolicy"),
    ],
)
def test_stateful_set_spec_updates_are_limited(change: Object, allowed: bool) -> None:
    """Only the fields upstream lists may change after creation."""
    old = _stateful_set()
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["spec"].update(change)
    errs = _messages(statefulsets.validate_stateful_set_update(new, old))
    expected = [] if allowed else [f"spec: Forbidden: {statefulsets.FORBIDDEN_UPDATE}"]
    assert errs == expected


def test_daemon_set_defaults_and_surge_rule() -> None:
    """DaemonSets default to maxUnavailable 1 / maxSurge 0 and refuse both non-zero."""
    obj = _workload("DaemonSet")
    defaults.set_defaults_daemon_set(obj)
    assert obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert _messages(daemonsets.validate_daemon_set(obj)) == []
    obj["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = 1
    assert _messages(daemonsets.validate_daemon_set(obj)) == [
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"
    ]
