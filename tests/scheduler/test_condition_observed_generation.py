"""The pod conditions kube-scheduler writes carry the generation of the pod it scheduled (KEP-5067).

``PodScheduled=False`` (``Unschedulable``) names the ``metadata.generation``
of the pod the failed attempt was about, and a preemption victim's
``DisruptionTarget`` (``PreemptionByScheduler``) the victim's generation as the
scheduler's cache held it; a spec change before the write moves both. A
condition that would differ only in its generation is not rewritten
(upstream's UpdatePodCondition does not compare it). Against an in-process
cluster running the real scheduler (no controllers, no kubelets: the nodes
are API objects and bound pods stay where they are put).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False, scheduler=True)

NS = "default"
Object = dict[str, Any]
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def core(cluster: InProcessCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    # Without controllers nothing makes the namespace's default ServiceAccount.
    core.create_namespaced_service_account(NS, {"metadata": {"name": "default"}})
    yield core
    api.close()


def eventually(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll ``check`` until it returns something, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout}s")
        time.sleep(0.05)


def add_node(
    core: client.CoreV1Api, name: str, *, cpu: str, taints: list[Object] | None = None
) -> None:
    """A Ready node labelled ``pool=<name>`` with ``cpu`` allocatable."""
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"pool": name}},
        "spec": {"taints": taints or []},
    }
    core.create_node(body)
    resources = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
    status = {
        "allocatable": resources,
        "capacity": resources,
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    core.patch_node_status(name, {"status": status})


def create_pod(core: client.CoreV1Api, name: str, *, pool: str, cpu: str, **spec: Any) -> None:
    container = {"name": "c", "image": "busybox:1.36", "resources": {"requests": {"cpu": cpu}}}
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"pool": pool}, "containers": [container], **spec},
    }
    core.create_namespaced_pod(NS, body)


def raw(core: client.CoreV1Api, name: str) -> Object:
    """The stored pod as JSON (the typed models would hide a missing field)."""
    found: Object = json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)
    return found


def condition(pod: Object, kind: str) -> Object | None:
    return next((c for c in pod["status"].get("conditions") or () if c["type"] == kind), None)


def scheduled_condition(core: client.CoreV1Api, name: str, needle: str) -> Object | None:
    """The pod's PodScheduled condition once its message contains ``needle``."""
    found = condition(raw(core, name), "PodScheduled")
    return found if found and needle in found.get("message", "") else None


def tolerate(core: client.CoreV1Api, name: str, key: str) -> None:
    """Add a toleration for ``key`` (a JSON patch: additions only), a spec change."""
    toleration = {"key": key, "operator": "Exists", "effect": "NoSchedule"}
    core.patch_namespaced_pod(
        name, NS, [{"op": "add", "path": "/spec/tolerations/-", "value": toleration}]
    )


def test_unschedulable_names_the_generation_of_each_failed_attempt(core: client.CoreV1Api) -> None:
    """Generation 1 for the untolerated taint; after a toleration (generation 2), Insufficient cpu at 2."""
    add_node(core, "tainted", cpu="1", taints=[{"key": "example.com/t", "effect": "NoSchedule"}])
    create_pod(core, "hungry", pool="tainted", cpu="2")
    first = eventually(lambda: scheduled_condition(core, "hungry", "untolerated taint"))
    assert (first["status"], first["reason"], first["observedGeneration"]) == (
        "False",
        "Unschedulable",
        1,
    )

    tolerate(core, "hungry", "example.com/t")
    second = eventually(lambda: scheduled_condition(core, "hungry", "Insufficient cpu"))
    assert raw(core, "hungry")["metadata"]["generation"] == 2
    assert (second["reason"], second["observedGeneration"]) == ("Unschedulable", 2)


def test_a_pod_released_from_its_gate_is_unschedulable_at_the_generation_that_released_it(
    core: client.CoreV1Api,
) -> None:
    """The API server's SchedulingGated condition is replaced by the scheduler's, at generation 2."""
    add_node(core, "small", cpu="1")
    create_pod(core, "gated", pool="small", cpu="2", schedulingGates=[{"name": "example.com/gate"}])
    gated = condition(raw(core, "gated"), "PodScheduled")
    assert gated is not None and gated["reason"] == "SchedulingGated"

    core.patch_namespaced_pod("gated", NS, [{"op": "remove", "path": "/spec/schedulingGates"}])
    failed = eventually(lambda: scheduled_condition(core, "gated", "Insufficient cpu"))
    assert (failed["reason"], failed["observedGeneration"]) == ("Unschedulable", 2)


def test_the_same_failure_at_a_later_generation_is_not_rewritten(core: client.CoreV1Api) -> None:
    """A spec change that leaves the diagnosis alone leaves the condition (and its generation) alone."""
    add_node(core, "tight", cpu="1")
    create_pod(core, "steady", pool="tight", cpu="2")
    first = eventually(lambda: scheduled_condition(core, "steady", "Insufficient cpu"))
    assert first["observedGeneration"] == 1

    tolerate(core, "steady", "example.com/unrelated")
    # The update sends the pod back for another attempt, which fails the same way:
    # a second FailedScheduling event is the sign it happened.
    eventually(
        lambda: failed_attempts(core, "steady") if failed_attempts(core, "steady") >= 2 else None
    )
    kept = condition(raw(core, "steady"), "PodScheduled")
    assert kept == first


def failed_attempts(core: client.CoreV1Api, name: str) -> int:
    listed = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}")
    return sum(e.count or 1 for e in listed.items if e.reason == "FailedScheduling")


def test_a_preemption_victim_is_marked_at_the_generation_the_scheduler_saw(
    core: client.CoreV1Api,
) -> None:
    """The victim's spec changed (generation 2) before a higher-priority pod needed its room."""
    scheduling = client.SchedulingV1Api(core.api_client)
    for name, value in (("low", 10), ("high", 1000)):
        scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
    add_node(core, "busy", cpu="2")
    create_pod(core, "victim", pool="busy", cpu="1500m", priorityClassName="low")
    eventually(lambda: raw(core, "victim")["spec"].get("nodeName") or None)
    tolerate(core, "victim", "example.com/x")

    create_pod(core, "preemptor", pool="busy", cpu="1500m", priorityClassName="high")
    victim = eventually(
        lambda: (
            found if (found := raw(core, "victim"))["metadata"].get("deletionTimestamp") else None
        )
    )
    marked = condition(victim, "DisruptionTarget")
    assert marked is not None
    assert (marked["reason"], marked["observedGeneration"]) == ("PreemptionByScheduler", 2)
    # Deleted gracefully afterwards (no kubelet finishes it): one generation further.
    assert victim["metadata"]["generation"] == 3
