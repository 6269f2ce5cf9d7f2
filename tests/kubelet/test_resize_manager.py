"""kubelet/resize.py alone: upstream's canResizePod messages and the allocation rules.

The cluster test (test_pod_resize_https.py) runs the same through kubectl;
these cover what one node's numbers decide: memory named before cpu when
both exceed the node, the admission check's order (cpu first), requests
from sidecars and init containers, a restart's allocation from the status,
and conditions that keep their times while unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.kubelet import resize

Object = dict[str, Any]
NODE = resize.node_allocatable("4", "8Gi")


def _pod(cpu: str, memory: str, *, uid: str = "u1", generation: int = 1) -> Object:
    amounts = {"cpu": cpu, "memory": memory}
    return {
        "metadata": {"uid": uid, "generation": generation},
        "spec": {
            "containers": [
                {"name": "c", "resources": {"requests": dict(amounts), "limits": dict(amounts)}}
            ]
        },
    }


def test_infeasible_names_memory_before_cpu() -> None:
    requests = resize.pod_requests(_pod("5", "9Gi"))
    assert resize.can_resize(requests, NODE, {"cpu": 0, "memory": 0}) == (
        "Infeasible",
        f"Node didn't have enough capacity: memory, requested: {9 * 2**30}, capacity: {8 * 2**30}",
    )
    requests = resize.pod_requests(_pod("5", "1Gi"))
    assert resize.can_resize(requests, NODE, {"cpu": 0, "memory": 0}) == (
        "Infeasible",
        "Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000",
    )


def test_deferred_names_the_first_resource_short() -> None:
    requests = resize.pod_requests(_pod("2", "6Gi"))
    used = {"cpu": 2500, "memory": 3 * 2**30}
    assert resize.can_resize(requests, NODE, used) == (
        "Deferred",
        "Node didn't have enough resource: cpu, requested: 2000, used: 2500, capacity: 4000",
    )


def test_requests_count_sidecars_and_the_largest_init_container() -> None:
    pod = _pod("1", "1Gi")
    pod["spec"]["initContainers"] = [
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "init", "resources": {"requests": {"cpu": "3"}}},
    ]
    assert resize.pod_requests(pod)["cpu"] == 3500  # the init container beside the sidecar


def _room(*others: Object) -> resize.NodeRoom:
    return resize.NodeRoom(NODE, lambda: list(others))


def test_a_pending_resize_keeps_the_allocation_and_its_condition_times() -> None:
    manager = resize.ResizeManager()
    pod = _pod("1", "1Gi")
    assert manager.allocated_pod(pod, _room(), now=100.0) is pod
    bigger = _pod("8", "1Gi", generation=2)
    runs = manager.allocated_pod(bigger, _room(), now=200.0)
    assert runs["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "1"
    status: Object = {"containerStatuses": [{"name": "c"}], "conditions": []}
    manager.decorate(bigger, status, running={"c"}, now=200.0)
    (pending,) = status["conditions"]
    assert (pending["type"], pending["reason"], pending["observedGeneration"]) == (
        "PodResizePending",
        "Infeasible",
        2,
    )
    assert status["containerStatuses"][0]["allocatedResources"] == {"cpu": "1", "memory": "1Gi"}
    bigger["status"] = copy.deepcopy(status)
    manager.allocated_pod(bigger, _room(), now=300.0)
    again: Object = {"containerStatuses": [{"name": "c"}], "conditions": []}
    manager.decorate(bigger, again, running={"c"}, now=300.0)
    assert again["conditions"] == status["conditions"]  # unchanged: no new status write


def test_a_deferred_resize_counts_the_other_pods_allocations() -> None:
    manager = resize.ResizeManager()
    other = _pod("3", "1Gi", uid="other")
    manager.allocated_pod(other, _room(), now=1.0)
    manager.allocated_pod(_pod("500m", "1Gi"), _room(other), now=1.0)
    manager.allocated_pod(_pod("2", "1Gi", generation=2), _room(other), now=2.0)
    assert manager.deferred("u1")
    manager.allocated_pod(_pod("2", "1Gi", generation=2), _room(), now=3.0)  # other gone
    assert not manager.deferred("u1")
    assert manager.allocation("u1") == {"c": _pod("2", "1Gi")["spec"]["containers"][0]["resources"]}


def test_a_restarted_kubelet_takes_the_reported_resources_as_allocated() -> None:
    manager = resize.ResizeManager()
    pod = _pod("8", "1Gi", generation=2)
    running = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    pod["status"] = {"containerStatuses": [{"name": "c", "resources": running}]}
    runs = manager.allocated_pod(pod, _room(), now=1.0)
    assert runs["spec"]["containers"][0]["resources"] == running  # the resize is judged again
    assert not manager.deferred("u1")
