"""pods/resize: the strategy and upstream's ValidatePodResize (1.37).

Tables of resizes the subresource takes or refuses, with upstream's paths and
messages; the strategy keeps everything but the containers' ``resources`` and
``resizePolicy`` as stored and bumps the generation. The main update path
keeps refusing resource changes. ``tests/kubelet/test_pod_resize_https.py``
runs resizes through kubectl against a simulated node.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.registry.core import pod_resize, pods

Object = dict[str, Any]
STRATEGY = pod_resize.STRATEGY


def _resources(cpu: str, memory: str, *, limits: bool = True) -> Object:
    amounts = {"cpu": cpu, "memory": memory}
    return {"requests": dict(amounts), **({"limits": dict(amounts)} if limits else {})}


def _stored(*, qos: str = "Guaranteed", **spec: Any) -> Object:
    pod: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "resourceVersion": "5",
            "generation": 1,
            "labels": {"app": "web"},
        },
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "app", "image": "nginx", "resources": _resources("100m", "128Mi")}
            ],
            **spec,
        },
        "status": {
            "phase": "Running",
            "qosClass": qos,
            "containerStatuses": [
                {"name": "app", "state": {"running": {}}, "resources": _resources("100m", "128Mi")}
            ],
        },
    }
    pods.STRATEGY.set_defaults(pod)
    return pod


def _resize(old: Object, *changes: tuple[str, int, Object]) -> tuple[Object, list[str]]:
    """Apply ``(key, index, fields)`` container changes through the strategy: (result, errors)."""
    new = copy.deepcopy(old)
    for key, index, fields in changes:
        new["spec"][key][index].update(copy.deepcopy(fields))
    STRATEGY.set_defaults(new)
    STRATEGY.prepare_for_update(new, old)
    return new, [str(e) for e in STRATEGY.validate_update(new, old)]


SIDECAR = {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
INIT = {"name": "init", "image": "busybox"}


def test_cpu_and_memory_change_in_place_and_bump_the_generation() -> None:
    old = _stored()
    new, errors = _resize(old, ("containers", 0, {"resources": _resources("200m", "256Mi")}))
    assert errors == []
    assert new["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "200m", "memory": "256Mi"}
    assert new["metadata"]["generation"] == 2
    assert new["status"] == old["status"]


def test_memory_limit_decrease_is_allowed_with_not_required_policy() -> None:
    # Since 1.34 the kubelet checks usage instead of the API refusing it.
    _, errors = _resize(_stored(), ("containers", 0, {"resources": _resources("100m", "64Mi")}))
    assert errors == []


def test_other_changes_are_dropped_not_refused() -> None:
    old = _stored()
    changed = {"image": "nginx:2", "resources": _resources("200m", "128Mi")}
    new, errors = _resize(old, ("containers", 0, changed))
    assert errors == []
    assert new["spec"]["containers"][0]["image"] == "nginx"
    new["metadata"]["labels"] = {"other": "x"}
    STRATEGY.prepare_for_update(new, old)
    assert new["metadata"]["labels"] == {"app": "web"}


def test_an_unchanged_resize_keeps_the_generation() -> None:
    new, errors = _resize(_stored(), ("containers", 0, {"resources": _resources("0.1", "128Mi")}))
    assert errors == []
    assert new["metadata"]["generation"] == 2  # the text differs; semantic equality is validation's
    same, errors = _resize(_stored())
    assert same["metadata"]["generation"] == 1


REFUSED = [
    pytest.param(
        _stored(),
        [("containers", 0, {"resources": {"requests": {"cpu": "200m", "memory": "128Mi"}}})],
        [
            'spec: Invalid value: "Guaranteed": Pod QOS Class may not change as a result of resizing',
            "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed",
        ],
        id="limits-removed-changes-qos",
    ),
    pytest.param(
        _stored(
            qos="Burstable",
            containers=[
                {
                    "name": "app",
                    "image": "nginx",
                    "resources": _resources("100m", "128Mi", limits=False),
                }
            ],
        ),
        [("containers", 0, {"resources": {"requests": {"cpu": "200m"}}})],
        ["spec.containers[0].resources.requests: Forbidden: resource requests cannot be removed"],
        id="requests-removed",
    ),
    pytest.param(
        _stored(),
        [
            (
                "containers",
                0,
                {
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
                        "limits": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
                    }
                },
            )
        ],
        ["spec: Forbidden: only cpu and memory resources are mutable"],
        id="ephemeral-storage",
    ),
    pytest.param(
        _stored(),
        [
            (
                "containers",
                0,
                {"resizePolicy": [{"resourceName": "cpu", "restartPolicy": "RestartContainer"}]},
            )
        ],
        ["spec: Forbidden: only cpu and memory resources are mutable"],
        id="resize-policy-changed",
    ),
    pytest.param(
        _stored(initContainers=[{**INIT, "resources": _resources("100m", "64Mi")}]),
        [("initContainers", 0, {"resources": _resources("200m", "64Mi")})],
        ["spec: Forbidden: resources for non-sidecar init containers are immutable"],
        id="non-sidecar-init-container",
    ),
    pytest.param(
        _stored(initContainers=[{**SIDECAR, "resources": _resources("100m", "64Mi")}]),
        [
            (
                "initContainers",
                0,
                {
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                    }
                },
            )
        ],
        [
            'spec: Invalid value: "Guaranteed": Pod QOS Class may not change as a result of resizing',
            "spec.initContainers[0].resources.limits: Forbidden: resource limits cannot be removed",
        ],
        id="sidecar-limits-removed",
    ),
    pytest.param(
        _stored(os={"name": "windows"}),
        [("containers", 0, {"resources": _resources("200m", "256Mi")})],
        ["Forbidden: windows pods cannot be resized"],
        id="windows",
    ),
    pytest.param(
        _stored(resources={"limits": {"cpu": "1", "memory": "1Gi"}}),
        [("containers", 0, {"resources": _resources("200m", "256Mi")})],
        ["Forbidden: pods with pod-level resources cannot be resized"],
        id="pod-level-resources",
    ),
]


@pytest.mark.parametrize(("old", "changes", "expected"), REFUSED)
def test_refused(old: Object, changes: list[tuple[str, int, Object]], expected: list[str]) -> None:
    _, errors = _resize(old, *changes)
    assert errors == expected


def test_static_pods_cannot_be_resized() -> None:
    old = _stored()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    _, errors = _resize(old, ("containers", 0, {"resources": _resources("200m", "256Mi")}))
    assert errors == ["Forbidden: static pods cannot be resized"]


def test_node_without_resize_support() -> None:
    old = _stored()
    del old["status"]["containerStatuses"][0]["resources"]
    _, errors = _resize(old, ("containers", 0, {"resources": _resources("200m", "256Mi")}))
    assert errors == ["spec: Forbidden: Pod running on node without support for resize"]


def test_sidecar_resources_may_change() -> None:
    old = _stored(initContainers=[{**SIDECAR, "resources": _resources("100m", "64Mi")}])
    new, errors = _resize(old, ("initContainers", 0, {"resources": _resources("300m", "96Mi")}))
    assert errors == []
    assert new["spec"]["initContainers"][0]["resources"]["requests"]["cpu"] == "300m"


def test_renamed_container_is_refused() -> None:
    old = _stored()
    _, errors = _resize(old, ("containers", 0, {"name": "other"}))
    assert "spec: Forbidden: only cpu and memory resources are mutable" in errors


def test_main_update_path_still_refuses_resource_changes() -> None:
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["resources"] = _resources("200m", "256Mi")
    pods.STRATEGY.prepare_for_update(new, old)
    errors = [str(e) for e in pods.STRATEGY.validate_update(new, old)]
    assert len(errors) == 1
    assert errors[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    )


POLICY_REFUSED = [
    pytest.param(
        [{"resourceName": "cpu", "restartPolicy": "NotRequired"}] * 2,
        "Always",
        ['spec.containers[0].resizePolicy[1]: Duplicate value: "cpu"'],
        id="duplicate",
    ),
    pytest.param(
        [{"resourceName": "ephemeral-storage", "restartPolicy": "NotRequired"}],
        "Always",
        [
            'spec.containers[0].resizePolicy: Unsupported value: "ephemeral-storage": '
            'supported values: "cpu", "memory"'
        ],
        id="unsupported-resource",
    ),
    pytest.param(
        [{"resourceName": "memory", "restartPolicy": "Sometimes"}],
        "Always",
        [
            'spec.containers[0].resizePolicy: Unsupported value: "Sometimes": '
            'supported values: "NotRequired", "RestartContainer"'
        ],
        id="unsupported-policy",
    ),
    pytest.param(
        [{"resourceName": "memory", "restartPolicy": "RestartContainer"}],
        "Never",
        [
            'spec.containers[0].resizePolicy: Invalid value: "RestartContainer": '
            "must be 'NotRequired' when `restartPolicy` is 'Never'"
        ],
        id="restart-under-never",
    ),
]


@pytest.mark.parametrize(("policy", "restart", "expected"), POLICY_REFUSED)
def test_resize_policy_is_validated_on_create(
    policy: list[Object], restart: str, expected: list[str]
) -> None:
    pod = _stored(restartPolicy=restart)
    pod["spec"]["containers"][0]["resizePolicy"] = policy
    assert [str(e) for e in pods.STRATEGY.validate(pod)] == expected


def test_resize_policies_upstream_accepts() -> None:
    pod = _stored(restartPolicy="Never")
    pod["spec"]["containers"][0]["resizePolicy"] = [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
        {"resourceName": "memory", "restartPolicy": "NotRequired"},
    ]
    assert [str(e) for e in pods.STRATEGY.validate(pod)] == []
