"""In-place pod resize end to end: real kubectl, HTTPS, one simulated node.

``kubectl patch --subresource resize`` changes a running pod's resources; the
kubelet allocates them when the node (8 cpu, 32Gi) has room and reports
them in ``containerStatuses[].allocatedResources``/``resources``; a resize
larger than the node stays ``PodResizePending``/``Infeasible``, one that does
not fit beside the other pods ``Deferred`` until they go; a resource whose
resizePolicy is ``RestartContainer`` restarts its container. The API refuses
what upstream refuses, with its messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(nodes=1, controllers=True)

NS = "default"
NODE = "kajitori-worker"
Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def core(cluster: InProcessCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    yield client.CoreV1Api(api)
    api.close()


def resources(cpu: str, memory: str) -> Object:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def pod(name: str, cpu: str = "100m", memory: str = "128Mi", **container: Any) -> Object:
    spec: Object = {
        "nodeName": NODE,
        "containers": [
            {"name": "c", "image": "busybox:1.36", "resources": resources(cpu, memory), **container}
        ],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def created(core: client.CoreV1Api, body: Object) -> None:
    # The ServiceAccount controller makes "default" shortly after the cluster starts.
    for _ in watch.Watch().stream(
        core.list_namespaced_service_account,
        NS,
        field_selector="metadata.name=default",
        timeout_seconds=20,
    ):
        break
    core.create_namespaced_pod(NS, body)


def wait_for_pod(
    core: client.CoreV1Api, name: str, check: Callable[[Object], bool], *, what: str
) -> Object:
    """The first version of pod ``name`` (raw JSON) for which ``check`` holds, from a watch."""
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_pod, NS, field_selector=f"metadata.name={name}", timeout_seconds=30
    ):
        found: Object = event["raw_object"]
        if check(found):
            stream.stop()
            return found
    raise AssertionError(f"timed out waiting for {what}")


def container_status(found: Object) -> Object:
    statuses = found["status"].get("containerStatuses") or [{}]
    return statuses[0]


def running(found: Object) -> bool:
    return container_status(found).get("state", {}).get("running") is not None


def condition(found: Object, kind: str) -> Object | None:
    return next((c for c in found["status"].get("conditions") or () if c["type"] == kind), None)


def resize(cluster: InProcessCluster, name: str, body: Object, *, check: bool = True) -> Any:
    patch = json.dumps({"spec": {"containers": [{"name": "c", **body}]}})
    return cluster.kubectl(
        "patch", "pod", name, "--subresource", "resize", "--patch", patch, check=check
    )


def test_a_resize_that_fits_is_applied_in_place(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    created(core, pod("grow"))
    before = wait_for_pod(core, "grow", running, what="grow running")
    assert container_status(before)["resources"] == resources("100m", "128Mi")
    assert container_status(before)["allocatedResources"] == {"cpu": "100m", "memory": "128Mi"}
    resize(cluster, "grow", {"resources": resources("500m", "256Mi")})
    found = wait_for_pod(
        core,
        "grow",
        lambda p: container_status(p).get("resources") == resources("500m", "256Mi"),
        what="grow resized",
    )
    assert found["metadata"]["generation"] == 2
    assert found["status"]["observedGeneration"] == 2
    assert container_status(found)["allocatedResources"] == {"cpu": "500m", "memory": "256Mi"}
    assert container_status(found)["restartCount"] == 0
    assert condition(found, "PodResizePending") is None
    assert condition(found, "PodResizeInProgress") is None
    # A memory limit may go down with the default (NotRequired) policy since 1.34.
    resize(cluster, "grow", {"resources": resources("500m", "64Mi")})
    wait_for_pod(
        core,
        "grow",
        lambda p: container_status(p).get("resources") == resources("500m", "64Mi"),
        what="grow shrunk",
    )


def test_a_resize_larger_than_the_node_is_infeasible(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    created(core, pod("huge"))
    wait_for_pod(core, "huge", running, what="huge running")
    resize(cluster, "huge", {"resources": resources("100", "128Mi")})
    found = wait_for_pod(
        core, "huge", lambda p: condition(p, "PodResizePending") is not None, what="pending"
    )
    pending = condition(found, "PodResizePending")
    assert pending is not None
    assert pending["status"] == "True"
    assert pending["reason"] == "Infeasible"
    assert (
        pending["message"]
        == "Node didn't have enough capacity: cpu, requested: 100000, capacity: 8000"
    )
    assert pending["observedGeneration"] == 2
    assert container_status(found)["resources"] == resources("100m", "128Mi")  # unchanged
    assert container_status(found)["allocatedResources"] == {"cpu": "100m", "memory": "128Mi"}
    # Asking for what the node can hold again withdraws the pending request.
    resize(cluster, "huge", {"resources": resources("200m", "128Mi")})
    found = wait_for_pod(
        core,
        "huge",
        lambda p: (
            condition(p, "PodResizePending") is None
            and container_status(p).get("resources") == resources("200m", "128Mi")
        ),
        what="feasible resize",
    )
    assert found["status"]["observedGeneration"] == 3


def test_a_resize_waits_for_room_beside_other_pods(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    created(core, pod("hog", cpu="6"))
    wait_for_pod(core, "hog", running, what="hog running")
    created(core, pod("patient"))
    wait_for_pod(core, "patient", running, what="patient running")
    resize(cluster, "patient", {"resources": resources("3", "128Mi")})
    found = wait_for_pod(
        core, "patient", lambda p: condition(p, "PodResizePending") is not None, what="deferred"
    )
    pending = condition(found, "PodResizePending")
    assert pending is not None and pending["reason"] == "Deferred"
    assert pending["message"].startswith(
        "Node didn't have enough resource: cpu, requested: 3000, used: "
    )
    assert pending["message"].endswith(", capacity: 8000")
    core.delete_namespaced_pod("hog", NS, grace_period_seconds=0)
    wait_for_pod(
        core,
        "patient",
        lambda p: container_status(p).get("resources") == resources("3", "128Mi"),
        what="deferred resize applied",
    )


def test_restart_container_policy_restarts_only_for_its_resource(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    policy = [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
        {"resourceName": "memory", "restartPolicy": "RestartContainer"},
    ]
    created(core, pod("restarter", resizePolicy=policy))
    wait_for_pod(core, "restarter", running, what="restarter running")
    resize(cluster, "restarter", {"resources": resources("300m", "128Mi")})
    found = wait_for_pod(
        core,
        "restarter",
        lambda p: container_status(p).get("resources") == resources("300m", "128Mi"),
        what="cpu resized",
    )
    assert container_status(found)["restartCount"] == 0
    resize(cluster, "restarter", {"resources": resources("300m", "256Mi")})
    found = wait_for_pod(
        core,
        "restarter",
        lambda p: container_status(p).get("resources") == resources("300m", "256Mi"),
        what="memory resized",
    )
    assert container_status(found)["restartCount"] == 1
    assert container_status(found)["lastState"]["terminated"]["reason"] == "Completed"
    assert running(found)


def test_the_api_refuses_what_upstream_refuses(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    created(core, pod("strict"))
    wait_for_pod(core, "strict", running, what="strict running")
    # Requests only: Guaranteed would become Burstable, and limits would go.
    result = resize(
        cluster, "strict", {"resources": {"requests": {"cpu": "200m"}, "limits": None}}, check=False
    )
    assert result.returncode != 0
    assert "Pod QOS Class may not change as a result of resizing" in result.stderr
    assert "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed" in (
        result.stderr
    )
    # The main update path still refuses resource changes.
    patch = json.dumps(
        {"spec": {"containers": [{"name": "c", "resources": resources("1", "1Gi")}]}}
    )
    result = cluster.kubectl("patch", "pod", "strict", "--patch", patch, check=False)
    assert result.returncode != 0
    assert "pod updates may not change fields other than" in result.stderr
    # GET of the subresource answers the pod.
    got = json.loads(
        cluster.kubectl("get", "pod", "strict", "--subresource", "resize", "-o", "json").stdout
    )
    assert got["metadata"]["name"] == "strict"
    assert got["metadata"]["generation"] == 1


def test_a_resize_is_charged_against_quota(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    ns = "resize-quota"
    core.create_namespace({"metadata": {"name": ns}})
    quota = {"metadata": {"name": "cpu"}, "spec": {"hard": {"limits.cpu": "1"}}}
    core.create_namespaced_resource_quota(ns, quota)
    for event in watch.Watch().stream(
        core.list_namespaced_resource_quota, ns, timeout_seconds=20
    ):  # the quota controller fills status.used; the ServiceAccount controller "default"
        if (event["raw_object"].get("status") or {}).get("used") is not None:
            break
    for _ in watch.Watch().stream(
        core.list_namespaced_service_account,
        ns,
        field_selector="metadata.name=default",
        timeout_seconds=20,
    ):
        break
    core.create_namespaced_pod(ns, pod("metered", cpu="500m"))
    patch = json.dumps(
        {"spec": {"containers": [{"name": "c", "resources": resources("2", "128Mi")}]}}
    )
    result = cluster.kubectl(
        "patch",
        "pod",
        "metered",
        "-n",
        ns,
        "--subresource",
        "resize",
        "--patch",
        patch,
        check=False,
    )
    assert result.returncode != 0
    assert "exceeded quota: cpu" in result.stderr
    assert "requested: limits.cpu=1500m" in result.stderr


def test_a_resize_is_checked_against_limit_ranges(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    ns = "resize-limits"
    core.create_namespace({"metadata": {"name": ns}})
    limit_range = {
        "metadata": {"name": "max"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]},
    }
    core.create_namespaced_limit_range(ns, limit_range)
    for _ in watch.Watch().stream(
        core.list_namespaced_service_account,
        ns,
        field_selector="metadata.name=default",
        timeout_seconds=20,
    ):
        break
    core.create_namespaced_pod(ns, pod("bounded", cpu="500m"))
    patch = json.dumps(
        {"spec": {"containers": [{"name": "c", "resources": resources("2", "128Mi")}]}}
    )
    result = cluster.kubectl(
        "patch",
        "pod",
        "bounded",
        "-n",
        ns,
        "--subresource",
        "resize",
        "--patch",
        patch,
        check=False,
    )
    assert result.returncode != 0
    assert 'pods "bounded" is forbidden: maximum cpu usage per Container is 1' in result.stderr
