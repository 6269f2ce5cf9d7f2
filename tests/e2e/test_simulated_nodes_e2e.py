"""``kajitori up --nodes 3 --runtime simulated`` through the real kubectl.

Timings are shortened: a 4 s node lease (renewed every second) and a 4 s
node monitor grace period, so a stopped node goes Unknown within seconds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet.runtimes import simulated
from kajitori.testing.cluster import KajitoriCluster, wait_for

Object = dict[str, Any]
NODES = ("kajitori-worker", "kajitori-worker2", "kajitori-worker3")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """A cluster with three simulated nodes and short node lifecycle timings."""
    data_dir: Path = tmp_path_factory.mktemp("nodes")
    args = (
        "--nodes=3",
        "--runtime=simulated",
        "--node-lease-duration-seconds=4",
        "--node-monitor-grace-period=4",
        "--node-monitor-period=0.5",
    )
    with KajitoriCluster(data_dir, extra_args=args) as running:
        yield running


def apply_pod(cluster: KajitoriCluster, name: str, node: str, *, spec_extra: str = "") -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        stdin=(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
            f"  nodeName: {node}\n  containers: [{{name: c, image: nginx}}]{spec_extra}\n"
        ),
    )


def ready(node: Object) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def test_kubectl_get_nodes_shows_three_ready_nodes_with_pod_cidrs(cluster: KajitoriCluster) -> None:
    """kind-style names, Ready, each with a distinct /24 from 10.244.0.0/16."""

    def all_ready() -> Object | None:
        nodes = cluster.get_json("nodes")
        ok = all(ready(n) == "True" and n["spec"].get("podCIDR") for n in nodes["items"])
        return nodes if ok and len(nodes["items"]) == 3 else None

    nodes = wait_for(all_ready)
    assert sorted(n["metadata"]["name"] for n in nodes["items"]) == list(NODES)
    cidrs = {n["spec"]["podCIDR"] for n in nodes["items"]}
    assert len(cidrs) == 3
    assert all(
        ipaddress.ip_network(c).subnet_of(ipaddress.ip_network("10.244.0.0/16")) for c in cidrs
    )
    table = cluster.kubectl("get", "nodes").stdout
    assert table.count(" Ready ") == 3 and "v1.37.0" in table


def test_a_pod_bound_to_a_node_runs_with_an_ip_in_its_cidr_and_deletes(
    cluster: KajitoriCluster,
) -> None:
    """spec.nodeName set directly: Running and Ready, podIP in the node's CIDR; delete completes."""
    apply_pod(cluster, "web", "kajitori-worker2")

    def running() -> Object | None:
        pod = cluster.get_json("pod", "web")
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions") or ()}
        return pod if conditions.get("Ready") == "True" else None

    pod = wait_for(running)
    assert pod["status"]["phase"] == "Running"
    node = cluster.get_json("node", "kajitori-worker2")
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(
        node["spec"]["podCIDR"]
    )
    cluster.kubectl("delete", "pod", "web", "--timeout=20s")
    assert cluster.kubectl("get", "pod", "web", check=False).returncode == 1


def test_a_pod_that_exits_zero_with_restart_policy_never_succeeds(cluster: KajitoriCluster) -> None:
    """The simulate annotations make the container exit 0; the pod ends Succeeded."""
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        stdin=(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: once\n  annotations:\n"
            "    kajitori.io/simulate-runtime-seconds: '1'\n    kajitori.io/simulate-exit-code: '0'\n"
            "spec:\n  nodeName: kajitori-worker\n  restartPolicy: Never\n"
            "  containers: [{name: c, image: busybox}]\n"
        ),
    )

    def succeeded() -> Object | None:
        pod = cluster.get_json("pod", "once")
        return pod if pod["status"].get("phase") == "Succeeded" else None

    pod = wait_for(succeeded)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


def test_kubectl_get_events_tells_a_pods_life_as_upstreams_kubelet_does(
    cluster: KajitoriCluster,
) -> None:
    """Scheduled, then the kubelet's Pulling, Pulled, Created, Started and, on delete, Killing."""
    image = "registry.example/events:1"  # no other test's pod pulled it onto any node
    cluster.kubectl("run", "life", f"--image={image}", "--restart=Never")

    def running() -> Object | None:
        pod = cluster.get_json("pod", "life")
        return pod if pod["status"].get("phase") == "Running" else None

    node = wait_for(running)["spec"]["nodeName"]
    cluster.kubectl("delete", "pod", "life", "--timeout=20s")
    selector = "involvedObject.name=life"

    def all_recorded() -> Object | None:
        found = cluster.get_json("events", "--field-selector", selector)
        return found if "Killing" in {e["reason"] for e in found["items"]} else None

    events = sorted(wait_for(all_recorded)["items"], key=lambda e: e["metadata"]["name"])
    scheduled = [e for e in events if e["reason"] == "Scheduled"]
    assert [e["message"] for e in scheduled] == [f"Successfully assigned default/life to {node}"]
    kubelet = [
        (e["type"], e["reason"], e["message"])
        for e in events
        if e["source"] == {"component": "kubelet", "host": node}
    ]
    size = simulated.image_size(image)
    assert kubelet == [
        ("Normal", "Pulling", f'Pulling image "{image}"'),
        (
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in 500ms (500ms including waiting). '
            f"Image size: {size} bytes.",
        ),
        ("Normal", "Created", "Created container: life"),
        ("Normal", "Started", "Started container life"),
        ("Normal", "Killing", "Stopping container life"),
    ]
    assert {e["involvedObject"]["kind"] for e in events} == {"Pod"}
    # The kubelet's are about the container (upstream's fieldPath), the scheduler's the pod.
    paths = {e["reason"]: e["involvedObject"].get("fieldPath") for e in events}
    assert paths["Scheduled"] is None
    assert {paths[reason] for _, reason, _ in kubelet} == {"spec.containers{life}"}
    table = cluster.kubectl("get", "events", "--field-selector", selector).stdout
    assert "Started container life" in table and "pod/life" in table
    wide = cluster.kubectl("get", "events", "-o", "wide", "--field-selector", selector).stdout
    header, *rows = wide.splitlines()
    assert "SUBOBJECT" in header.split()
    started = [row for row in rows if "Started container life" in row]
    assert len(started) == 1 and "spec.containers{life}" in started[0].split()


def test_a_stopped_node_goes_unknown_is_tainted_and_its_pods_are_evicted(
    cluster: KajitoriCluster,
) -> None:
    """Annotating a node stopped: NotReady/Unknown, unreachable taints, eviction after 2 s."""
    toleration = (
        "\n  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists,"
        " effect: NoExecute, tolerationSeconds: 2}]"
    )
    apply_pod(cluster, "fragile", "kajitori-worker3", spec_extra=toleration)

    def has_ip() -> Object | None:
        pod = cluster.get_json("pod", "fragile")
        return pod if pod["status"].get("podIP") else None

    wait_for(has_ip)
    cluster.kubectl("annotate", "node", "kajitori-worker3", "kajitori.io/simulate-stopped=true")

    def unknown() -> Object | None:
        node = cluster.get_json("node", "kajitori-worker3")
        return node if ready(node) == "Unknown" and node["spec"].get("taints") else None

    node = wait_for(unknown)
    assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    assert "NotReady" in cluster.kubectl("get", "node", "kajitori-worker3").stdout

    def evicted() -> Object | None:
        pod = cluster.get_json("pod", "fragile")
        return pod if pod["metadata"].get("deletionTimestamp") else None

    pod = wait_for(evicted)
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conditions["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
    assert pod["spec"]["nodeName"] == "kajitori-worker3"
    # Back on line, the kubelet finishes the deletion and the node is Ready and untainted.
    cluster.kubectl("annotate", "node", "kajitori-worker3", "kajitori.io/simulate-stopped-")
    cluster.kubectl("wait", "--for=delete", "pod/fragile", "--timeout=20s")

    def healthy() -> Object | None:
        node = cluster.get_json("node", "kajitori-worker3")
        return node if ready(node) == "True" and not node["spec"].get("taints") else None

    wait_for(healthy)
