"""pods/ephemeralcontainers: the strategy and upstream's ValidatePodEphemeralContainersUpdate.

Tables of additions the subresource takes or refuses, with upstream's paths
and messages; the strategy keeps everything but ``spec.ephemeralContainers``
as stored. ``tests/e2e/test_debug_e2e.py`` runs the same through kubectl.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.registry.core import pod_ephemeralcontainers, pods

Object = dict[str, Any]
STRATEGY = pod_ephemeralcontainers.STRATEGY


def _stored(**spec: Any) -> Object:
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
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            **spec,
        },
        "status": {"phase": "Running", "qosClass": "BestEffort"},
    }
    pods.STRATEGY.set_defaults(pod)
    return pod


def _update(old: Object, *ephemeral: Object, **changes: Any) -> tuple[Object, list[str]]:
    """Run the subresource's update steps on ``old`` plus ``ephemeral``: (result, errors)."""
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [
        *(old["spec"].get("ephemeralContainers") or ()),
        *copy.deepcopy(list(ephemeral)),
    ]
    for key, value in changes.items():
        new["spec"][key] = value
    STRATEGY.set_defaults(new)
    STRATEGY.prepare_for_update(new, old)
    return new, [str(e) for e in STRATEGY.validate_update(new, old)]


def _debugger(**fields: Any) -> Object:
    return {"name": "debugger", "image": "busybox", **fields}


REFUSED = [
    pytest.param(
        _debugger(name="app"),
        'spec.ephemeralContainers[0].name: Duplicate value: "app"',
        id="name-of-a-container",
    ),
    pytest.param(
        _debugger(name="init"),
        'spec.ephemeralContainers[0].name: Duplicate value: "init"',
        id="name-of-an-init-container",
    ),
    pytest.param(
        _debugger(targetContainerName="missing"),
        'spec.ephemeralContainers[0].targetContainerName: Not found: "missing"',
        id="unknown-target",
    ),
    pytest.param(
        _debugger(ports=[{"containerPort": 80}]),
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        id="ports",
    ),
    pytest.param(
        _debugger(resources={"limits": {"cpu": "1"}}),
        "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral "
        "Container",
        id="resources",
    ),
    pytest.param(
        _debugger(lifecycle={"preStop": {"exec": {"command": ["true"]}}}),
        "spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral "
        "Container",
        id="lifecycle",
    ),
    pytest.param(
        _debugger(livenessProbe={"exec": {"command": ["true"]}}),
        "spec.ephemeralContainers[0].livenessProbe: Forbidden: cannot be set for an Ephemeral "
        "Container",
        id="liveness-probe",
    ),
    pytest.param(
        _debugger(startupProbe={"exec": {"command": ["true"]}}),
        "spec.ephemeralContainers[0].startupProbe: Forbidden: cannot be set for an Ephemeral "
        "Container",
        id="startup-probe",
    ),
    pytest.param(
        _debugger(restartPolicy="Always"),
        "spec.ephemeralContainers[0].restartPolicy: Forbidden: cannot be set for an Ephemeral "
        "Container",
        id="restart-policy",
    ),
    pytest.param(
        _debugger(volumeMounts=[{"name": "data", "mountPath": "/d", "subPath": "x"}]),
        "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an "
        "Ephemeral Container",
        id="sub-path",
    ),
    pytest.param(
        _debugger(volumeMounts=[{"name": "nope", "mountPath": "/d"}]),
        'spec.ephemeralContainers[0].volumeMounts[0].name: Not found: "nope"',
        id="unknown-volume",
    ),
    pytest.param(
        _debugger(image=""),
        "spec.ephemeralContainers[0].image: Required value",
        id="no-image",
    ),
    pytest.param(
        _debugger(name="Debug"),
        'spec.ephemeralContainers[0].name: Invalid value: "Debug": a lowercase RFC 1123 label',
        id="bad-name",
    ),
]


@pytest.mark.parametrize(("container", "message"), REFUSED)
def test_refused_additions(container: Object, message: str) -> None:
    _, errors = _update(_stored(), container)
    assert any(e.startswith(message) for e in errors), errors


@pytest.mark.parametrize(
    "container",
    [
        pytest.param(_debugger(), id="plain"),
        pytest.param(_debugger(targetContainerName="app"), id="target-container"),
        pytest.param(_debugger(targetContainerName="init"), id="target-init-container"),
        pytest.param(
            _debugger(stdin=True, tty=True, command=["sh"], securityContext={"privileged": True}),
            id="interactive-privileged",
        ),
        pytest.param(_debugger(resources={}), id="empty-resources-are-unset"),
        pytest.param(
            _debugger(volumeMounts=[{"name": "data", "mountPath": "/d"}]), id="volume-mount"
        ),
    ],
)
def test_accepted_additions(container: Object) -> None:
    new, errors = _update(_stored(), container)
    assert errors == []
    assert new["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"


def test_two_ephemeral_containers_may_not_share_a_name() -> None:
    _, errors = _update(_stored(), _debugger(), _debugger())
    assert errors == ['spec.ephemeralContainers[1].name: Duplicate value: "debugger"']


def test_existing_ephemeral_containers_may_not_change_or_go() -> None:
    old, errors = _update(_stored(), _debugger(), _debugger(name="other"))
    assert errors == []
    changed = copy.deepcopy(old)
    changed["spec"]["ephemeralContainers"] = [_debugger(image="alpine")]
    STRATEGY.set_defaults(changed)
    STRATEGY.prepare_for_update(changed, old)
    errors = [str(e) for e in STRATEGY.validate_update(changed, old)]
    assert errors[0].startswith(
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not '
        "be changed\n"
    )
    assert '"alpine"' in errors[0]
    assert errors[1] == (
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "other" may not be '
        "removed\n"
    )


def test_reordering_is_not_a_change() -> None:
    old, _ = _update(_stored(), _debugger(), _debugger(name="other"))
    swapped = copy.deepcopy(old)
    swapped["spec"]["ephemeralContainers"].reverse()
    STRATEGY.prepare_for_update(swapped, old)
    assert list(STRATEGY.validate_update(swapped, old)) == []


def test_static_pods_take_none() -> None:
    old = _stored()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    _, errors = _update(old, _debugger())
    assert errors == ["Forbidden: static pods do not support ephemeral containers"]


def test_only_ephemeral_containers_change() -> None:
    """Upstream's dropNonEphemeralContainerUpdates + ResetObjectMetaForStatus."""
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [_debugger()]
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["spec"]["activeDeadlineSeconds"] = 10
    new["status"] = {"phase": "Failed"}
    new["metadata"]["labels"] = {"app": "other"}
    new["metadata"]["annotations"] = {"a": "b"}
    new["metadata"]["finalizers"] = ["example.com/f"]
    STRATEGY.set_defaults(new)
    STRATEGY.prepare_for_update(new, old)
    expected_spec = {**copy.deepcopy(old["spec"]), "ephemeralContainers": [_debugger()]}
    pods.STRATEGY.set_defaults({"spec": expected_spec})
    assert new["spec"] == expected_spec
    assert new["status"] == old["status"]
    assert new["metadata"]["labels"] == {"app": "web"}
    assert "annotations" not in new["metadata"] and "finalizers" not in new["metadata"]
    assert new["metadata"]["generation"] == 2  # the spec changed: upstream's updatePodGeneration
    assert list(STRATEGY.validate_update(new, old)) == []


def test_no_change_keeps_the_generation() -> None:
    old, _ = _update(_stored(), _debugger())
    old["metadata"]["generation"] = 2
    same = copy.deepcopy(old)
    STRATEGY.prepare_for_update(same, old)
    assert same == old


def test_the_pod_resource_declares_the_subresource() -> None:
    assert "ephemeralcontainers" in pods.RESOURCE.subresource_names
    assert pods.RESOURCE.extra_strategies["ephemeralcontainers"] is STRATEGY


def test_the_main_update_path_refuses_ephemeral_containers() -> None:
    """ValidatePodUpdate: spec.ephemeralContainers is not among the mutable fields."""
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [_debugger()]
    pods.STRATEGY.set_defaults(new)
    pods.STRATEGY.prepare_for_update(new, old)
    (error,) = [str(e) for e in pods.STRATEGY.validate_update(new, old)]
    assert error.startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )
    assert "ephemeralContainers" in error
