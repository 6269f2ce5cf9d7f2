"""The kubelet's admission of a pod's host ports against the pods it already runs."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.kubelet import lifecycle

Object = dict[str, Any]


def pod(*ports: Object, init: bool = False) -> Object:
    container = {"name": "c", "image": "busybox", "ports": list(ports)}
    key = "initContainers" if init else "containers"
    return {"metadata": {"name": "p"}, "spec": {key: [container]}}


@pytest.mark.parametrize(
    ("wanted", "taken", "conflict"),
    [
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}, True),
        ({"hostPort": 8080}, {"hostPort": 8081}, False),
        ({"hostPort": 8080}, {"hostPort": 8080, "protocol": "UDP"}, False),
        ({"hostPort": 8080, "hostIP": "10.0.0.1"}, {"hostPort": 8080, "hostIP": "10.0.0.2"}, False),
        ({"hostPort": 8080, "hostIP": "10.0.0.1"}, {"hostPort": 8080}, True),  # 0.0.0.0 is every IP
        ({"containerPort": 8080}, {"containerPort": 8080}, False),  # no hostPort, nothing to share
    ],
)
def test_a_pod_conflicts_only_on_the_same_host_port_protocol_and_address(
    wanted: Object, taken: Object, conflict: bool
) -> None:
    rejection = lifecycle.admit(pod(wanted), [pod(taken)])
    assert (rejection is not None) == conflict
    if rejection is not None:
        assert rejection.reason == "NodePorts"
        assert rejection.status_message == (
            "Pod was rejected: Predicate NodePorts failed: "
            "node(s) didn't have free ports for the requested pod ports"
        )


def test_init_container_ports_count_and_the_rejected_status_is_failed() -> None:
    taken = pod({"hostPort": 9000}, init=True)
    rejection = lifecycle.admit(pod({"hostPort": 9000}), [taken])
    assert rejection is not None
    body = pod({"hostPort": 9000})
    body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    status = lifecycle.rejected_status(body, rejection, start_time="2026-01-01T00:00:00Z")
    assert status == {
        "phase": "Failed",
        "reason": "NodePorts",
        "message": rejection.status_message,
        "startTime": "2026-01-01T00:00:00Z",
        "qosClass": "BestEffort",
    }
