"""PodStrategy, pods/status and the pods table, against upstream behaviour."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kajitori.registry.core import pods

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _pod(resources: Object | None = None, **spec: Any) -> Object:
    container: Object = {"name": "app", "image": "nginx:1.27"}
    if resources is not None:
        container["resources"] = resources
    pod: Object = {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2025-01-01T11:00:00Z",
        },
        "spec": {"containers": [container], **spec},
    }
    pods.STRATEGY.set_defaults(pod)
    return pod


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        pytest.param(None, "BestEffort", id="none"),
        pytest.param({"requests": {"cpu": "100m"}}, "Burstable", id="requests-only"),
        pytest.param(
            {"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed", id="limits-become-requests"
        ),
        pytest.param(
            {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
            "Burstable",
            id="request-below-limit",
        ),
        pytest.param({"limits": {"cpu": "1"}}, "Burstable", id="cpu-limit-only"),
    ],
)
def test_create_sets_pending_phase_and_qos_class(resources: Object | None, qos: str) -> None:
    """A created pod gets status {phase: Pending, qosClass} and generation 1."""
    pod = _pod(resources)
    pod["status"] = {"phase": "Running"}
    pods.STRATEGY.prepare_for_create(pod)
    assert pod["status"] == {"phase": "Pending", "qosClass": qos}
    assert pod["metadata"]["generation"] == 1


def test_gated_pods_are_created_with_the_scheduling_gated_condition() -> None:
    """schedulingGates yield PodScheduled=False/SchedulingGated and STATUS SchedulingGated."""
    pod = _pod(schedulingGates=[{"name": "example.com/wait"}])
    pods.STRATEGY.prepare_for_create(pod)
    condition = pod["status"]["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "PodScheduled",
        "False",
        "SchedulingGated",
    )
    assert pods.pod_row(pod, NOW)[2] == "SchedulingGated"


def test_main_endpoint_keeps_status_and_status_endpoint_keeps_spec() -> None:
    """PUT pods ignores status; PUT pods/status ignores spec and owner references."""
    old = _pod(nodeName="n1")
    pods.STRATEGY.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    pods.STRATEGY.prepare_for_update(new, old)
    assert new["status"] == old["status"]
    status_update = copy.deepcopy(old)
    status_update["spec"]["nodeName"] = "n2"
    status_update["status"] = {"phase": "Running"}
    status_update["metadata"]["ownerReferences"] = [{"name": "x"}]
    assert pods.RESOURCE.status is not None
    pods.RESOURCE.status.prepare_for_update(status_update, old)
    assert status_update["spec"]["nodeName"] == "n1"
    assert "ownerReferences" not in status_update["metadata"]
    assert status_update["status"] == {"phase": "Running", "qosClass": "BestEffort"}


def test_status_endpoint_defaults_only_a_spec_that_differs_from_the_stored_one() -> None:
    """Defaulting a status body's spec equal to the stored one is skipped (it is a no-op)."""
    old = _pod(nodeName="n1")
    assert pods.RESOURCE.status is not None
    echo = copy.deepcopy(old)
    pods.RESOURCE.status.set_defaults_for_update(echo, old)
    assert echo == old
    bare = copy.deepcopy(old)
    for key in ("dnsPolicy", "restartPolicy", "schedulerName"):
        del bare["spec"][key]
    pods.RESOURCE.status.set_defaults_for_update(bare, old)
    assert bare["spec"] == old["spec"]  # defaulted, as the admission plugins saw it before
    main = copy.deepcopy(bare)
    del main["spec"]["dnsPolicy"]
    pods.STRATEGY.set_defaults_for_update(main, old)
    assert main["spec"]["dnsPolicy"] == "ClusterFirst"


@pytest.mark.parametrize(
    ("node", "phase", "grace", "requested", "expected"),
    [
        pytest.param("n1", "Running", 30, None, 30, id="spec-default"),
        pytest.param("n1", "Running", 30, 5, 5, id="requested"),
        pytest.param("", "Pending", 30, None, 0, id="unscheduled"),
        pytest.param("n1", "Succeeded", 30, None, 0, id="terminal"),
        pytest.param("n1", "Running", 30, -3, 1, id="negative-becomes-one"),
    ],
)
def test_graceful_deletion_period(
    node: str, phase: str, grace: int, requested: int | None, expected: int
) -> None:
    """Only scheduled, non-terminal pods wait for their grace period."""
    pod = _pod(nodeName=node, terminationGracePeriodSeconds=grace)
    pod["status"] = {"phase": phase}
    assert pods.STRATEGY.graceful_deletion_seconds(pod, requested) == expected


def _running(ready: bool = True, restarts: int = 0) -> Object:
    status: Object = {
        "name": "app",
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": "2025-01-01T11:00:00Z"}},
    }
    if restarts:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": "2025-01-01T11:55:00Z"}}
    return status


@pytest.mark.parametrize(
    ("status", "spec", "meta", "cells"),
    [
        pytest.param({"phase": "Pending"}, {}, {}, ["0/1", "Pending", "0"], id="pending"),
        pytest.param(
            {"phase": "Running", "containerStatuses": [_running()]},
            {},
            {},
            ["1/1", "Running", "0"],
            id="running",
        ),
        pytest.param(
            {
                "phase": "Running",
                "containerStatuses": [
                    dict(
                        _running(ready=False, restarts=3),
                        state={"waiting": {"reason": "CrashLoopBackOff"}},
                    )
                ],
            },
            {},
            {},
            ["0/1", "CrashLoopBackOff", "3 (5m ago)"],
            id="crashloop",
        ),
        pytest.param(
            {
                "phase": "Succeeded",
                "containerStatuses": [
                    {
                        "name": "app",
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                    }
                ],
            },
            {},
            {},
            ["0/1", "Completed", "0"],
            id="completed",
        ),
        pytest.param(
            {
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "init", "restartCount": 0, "state": {"running": {}}}
                ],
            },
            {"initContainers": [{"name": "init", "image": "busybox"}]},
            {},
            ["0/1", "Init:0/1", "0"],
            id="initializing",
        ),
        pytest.param(
            {
                "phase": "Pending",
                "initContainerStatuses": [
                    {
                        "name": "init",
                        "restartCount": 2,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    }
                ],
            },
            {"initContainers": [{"name": "init", "image": "busybox"}]},
            {},
            ["0/1", "Init:CrashLoopBackOff", "2"],
            id="init-crashloop",
        ),
        pytest.param(
            {"phase": "Running", "containerStatuses": [_running()]},
            {},
            {"deletionTimestamp": "2025-01-01T11:59:00Z"},
            ["1/1", "Terminating", "0"],
            id="terminating",
        ),
    ],
)
def test_pod_table_ready_status_and_restarts(
    status: Object, spec: Object, meta: Object, cells: list[str]
) -> None:
    """READY, STATUS and RESTARTS follow upstream's printPod."""
    pod = _pod(**spec)
    pod["status"] = status
    pod["metadata"].update(meta)
    row = pods.pod_row(pod, NOW)
    assert list(row[1:4]) == cells
    assert row[0] == "web"
    assert row[4] == "60m"


def test_pod_table_wide_cells() -> None:
    """IP, NODE, NOMINATED NODE and READINESS GATES default to <none>."""
    pod = _pod(nodeName="n1", readinessGates=[{"conditionType": "example.com/ok"}])
    pod["status"] = {
        "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "example.com/ok", "status": "True"}],
    }
    assert list(pods.pod_row(pod, NOW)[5:]) == ["10.244.0.5", "n1", "<none>", "1/1"]
    assert [c.name for c in pods.COLUMNS] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c.priority for c in pods.COLUMNS] == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_pod_resource_declaration() -> None:
    """pods: short name po, category all, upstream's field selectors."""
    info = pods.RESOURCE
    assert (info.short_names, info.categories, info.namespaced) == (("po",), ("all",), True)
    pod = _pod(nodeName="n1")
    fields = {name: extract(pod) for name, extract in info.all_selectable_fields.items()}
    assert fields["spec.nodeName"] == "n1"
    assert fields["spec.hostNetwork"] == "false"
    assert fields["spec.restartPolicy"] == "Always"
    assert fields["spec.schedulerName"] == "default-scheduler"


def test_pods_of_one_template_are_defaulted_alike_into_objects_of_their_own() -> None:
    """A repeated spec is defaulted from memory: equal to the first, not shared with it."""
    template = {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]}
    first: Object = {"metadata": {"name": "a"}, "spec": copy.deepcopy(template)}
    second: Object = {"metadata": {"name": "b"}, "spec": copy.deepcopy(template)}
    pods.STRATEGY.set_defaults(first)
    pods.STRATEGY.set_defaults(second)
    assert second["spec"] == first["spec"]
    assert first["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert first["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"
    second["spec"]["containers"][0]["image"] = "changed"
    assert first["spec"]["containers"][0]["image"] == "nginx"
    host: Object = {"metadata": {}, "spec": {**copy.deepcopy(template), "hostNetwork": True}}
    pods.STRATEGY.set_defaults(host)
    assert host["spec"]["containers"][0]["ports"][0]["hostPort"] == 80
