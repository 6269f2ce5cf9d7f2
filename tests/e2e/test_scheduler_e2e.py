"""The scheduler inside ``kajitori up``: pods get bound to fitting nodes, through the API only.

There is no kubelet yet, so nodes are plain Node objects created with
kubectl (capacity, allocatable, labels, taints, a Ready condition). Tests
run in file order against one cluster: the first one knows exactly which
nodes exist, so it checks upstream's full FailedScheduling message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_for

Object = dict[str, Any]
NS = "default"


def node(name: str, *, cpu: str = "4", labels: Object | None = None, taints: Any = None) -> Object:
    resources = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def pod(name: str, *, cpu: str = "100m", **spec: Any) -> Object:
    labels = spec.pop("labels", {"app": name})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
            ],
            **spec,
        },
    }


def priority_class(name: str, value: int = 1000) -> Object:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
    }


def create(cluster: KajitoriCluster, *objects: Object) -> None:
    for obj in objects:
        cluster.kubectl("create", "-f", "-", stdin=json.dumps(obj))


def get_pod(cluster: KajitoriCluster, name: str) -> Object:
    result = cluster.kubectl("get", "pod", name, "-n", NS, "-o", "json")
    found: Object = json.loads(result.stdout)
    return found


def node_of(cluster: KajitoriCluster, name: str) -> str:
    node_name: str = wait_for(lambda: get_pod(cluster, name)["spec"].get("nodeName"))
    return node_name


def scheduled_condition(pod_obj: Object) -> Object:
    conditions = pod_obj.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "PodScheduled"), {})


def events_for(cluster: KajitoriCluster, name: str, reason: str) -> list[Object]:
    selector = f"involvedObject.name={name},reason={reason}"
    result = cluster.kubectl("get", "events", "-n", NS, "--field-selector", selector, "-o", "json")
    items: list[Object] = json.loads(result.stdout)["items"]
    return items


@pytest.fixture(scope="module", autouse=True)
def first_nodes(cluster: KajitoriCluster) -> None:
    """A small node and a control-plane node nobody tolerates."""
    control_plane = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    create(cluster, node("small", cpu="1"), node("cp", cpu="8", taints=control_plane))


def test_a_pod_that_fits_nowhere_stays_pending_with_upstreams_diagnosis(
    cluster: KajitoriCluster,
) -> None:
    """Insufficient cpu: FailedScheduling event and PodScheduled=False/Unschedulable."""
    create(cluster, pod("hungry", cpu="2"))
    expected = (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, 1 Preemption is not helpful for "
        "scheduling."
    )
    condition = wait_for(lambda: scheduled_condition(get_pod(cluster, "hungry")))
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == expected
    event = wait_for(lambda: events_for(cluster, "hungry", "FailedScheduling"))[0]
    assert event["type"] == "Warning"
    assert event["message"] == expected
    # An events.k8s.io Event: the core view names its reporter in reportingComponent.
    assert (event["source"], event["reportingComponent"]) == ({}, "default-scheduler")
    assert get_pod(cluster, "hungry")["status"]["phase"] == "Pending"


def test_adding_a_node_that_fits_schedules_the_pending_pod(cluster: KajitoriCluster) -> None:
    """A node add moves unschedulable pods back; the pod binds to the new node."""
    create(cluster, node("big", cpu="8"))
    assert node_of(cluster, "hungry") == "big"
    condition = wait_for(
        lambda: scheduled_condition(get_pod(cluster, "hungry")).get("status") == "True"
    )
    assert condition
    event = wait_for(lambda: events_for(cluster, "hungry", "Scheduled"))[0]
    assert event["message"] == "Successfully assigned default/hungry to big"


def test_node_selector_picks_the_labelled_node(cluster: KajitoriCluster) -> None:
    """nodeSelector: only the node carrying the label is feasible."""
    create(cluster, node("ssd", labels={"disk": "ssd"}))
    create(cluster, pod("wants-ssd", nodeSelector={"disk": "ssd"}))
    assert node_of(cluster, "wants-ssd") == "ssd"


def test_a_toleration_lets_a_pod_onto_a_tainted_node(cluster: KajitoriCluster) -> None:
    """The control-plane taint repels pods unless they tolerate it."""
    toleration = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]
    create(
        cluster,
        pod(
            "tolerant",
            tolerations=toleration,
            nodeSelector={"kubernetes.io/hostname": "cp"},
        ),
    )
    assert node_of(cluster, "tolerant") == "cp"


def test_required_anti_affinity_spreads_pods_over_hosts(cluster: KajitoriCluster) -> None:
    """Three replicas that repel each other by hostname land on three nodes."""
    labels = {"app": "spread"}
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    names = [f"spread-{i}" for i in range(3)]
    create(cluster, *(pod(n, labels=labels, affinity=anti) for n in names))
    placed = {node_of(cluster, n) for n in names}
    assert len(placed) == 3


def test_binding_an_assigned_pod_again_is_a_conflict(cluster: KajitoriCluster) -> None:
    """pods/binding sets nodeName only once: upstream's 409 on pods/binding."""
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "wants-ssd"},
        "target": {"kind": "Node", "name": "small"},
    }
    result = cluster.kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{NS}/pods/wants-ssd/binding",
        "-f",
        "-",
        stdin=json.dumps(binding),
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr == (
        'Error from server (Conflict): Operation cannot be fulfilled on pods/binding "wants-ssd": '
        'pod wants-ssd is already assigned to node "ssd"\n'
    )


def test_a_higher_priority_pod_preempts_a_lower_priority_one(cluster: KajitoriCluster) -> None:
    """On a full node the high-priority pod evicts the low one and is nominated, then bound."""
    create(cluster, node("tiny", cpu="1", labels={"pool": "tiny"}), priority_class("important"))
    create(cluster, pod("low", cpu="800m", nodeSelector={"pool": "tiny"}))
    assert node_of(cluster, "low") == "tiny"
    create(
        cluster,
        pod("high", cpu="800m", priorityClassName="important", nodeSelector={"pool": "tiny"}),
    )
    assert get_pod(cluster, "high")["spec"]["priority"] == 1000
    assert node_of(cluster, "high") == "tiny"
    gone = cluster.kubectl("get", "pod", "low", "-n", NS, check=False)
    assert "NotFound" in gone.stderr
    preempted = wait_for(lambda: events_for(cluster, "low", "Preempted"))[0]
    assert preempted["message"].startswith("Preempted by pod ")
    assert preempted["message"].endswith(" on node tiny")


def test_the_system_priority_classes_exist_and_cannot_be_deleted(cluster: KajitoriCluster) -> None:
    """system-node-critical and system-cluster-critical are created at start and protected."""
    result = cluster.kubectl("get", "priorityclasses", "-o", "json")
    values = {c["metadata"]["name"]: c["value"] for c in json.loads(result.stdout)["items"]}
    assert values["system-node-critical"] == 2000001000
    assert values["system-cluster-critical"] == 2000000000
    deleted = cluster.kubectl("delete", "pc", "system-node-critical", check=False)
    assert deleted.stderr == (
        'Error from server (Forbidden): priorityclasses.scheduling.k8s.io "system-node-critical" '
        "is forbidden: this is a system priority class and cannot be deleted\n"
    )


def test_a_pod_naming_an_unknown_priority_class_is_forbidden(cluster: KajitoriCluster) -> None:
    """The Priority admission plugin resolves priorityClassName or refuses the pod."""
    result = cluster.kubectl(
        "create",
        "-f",
        "-",
        stdin=json.dumps(pod("nameless", priorityClassName="nope")),
        check=False,
    )
    assert result.stderr == (
        'Error from server (Forbidden): error when creating "STDIN": pods "nameless" is '
        "forbidden: no PriorityClass with name nope was found\n"
    )


def test_a_user_class_above_one_billion_is_forbidden(cluster: KajitoriCluster) -> None:
    """User-defined priorities are capped; the system- prefix is reserved."""
    result = cluster.kubectl(
        "create", "-f", "-", stdin=json.dumps(priority_class("huge", 2_000_000_000)), check=False
    )
    assert "value: Forbidden: maximum allowed value of a user defined priority is 1000000000" in (
        result.stderr
    )
