"""Resource metrics end to end: kubelets → built-in metrics-server → kubectl top and the HPA.

A real ``kajitori up`` with two simulated nodes, scraping every second (upstream's
15 s shortened by ``--metric-resolution``) and syncing HPAs every second. The
real kubectl prints ``top`` as it does against metrics-server; ``get --raw``
shows metrics-server's objects; the official client reads them as custom
objects; an HPA on CPU utilization scales a Deployment up when its pods'
simulated usage rises and back down when it falls, with upstream's Event,
conditions and current metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kajitori.kubelet import resource_metrics
from kajitori.testing.cluster import KajitoriCluster, wait_for, wait_until

NS = "metrics"
CPU = resource_metrics.CPU_USAGE_ANNOTATION
MEMORY = resource_metrics.MEMORY_USAGE_ANNOTATION
NODES = {"kajitori-worker", "kajitori-worker2"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    args = ["--nodes", "2", "--metric-resolution", "1s"]
    args += ["--horizontal-pod-autoscaler-sync-period", "1s"]
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    with KajitoriCluster(data_dir, extra_args=args) as running:
        running.kubectl("create", "namespace", NS)
        running.wait_for_namespace_defaults(NS)
        running.kubectl(
            "run",
            "busy",
            "--image=nginx",
            "-n",
            NS,
            "--labels=role=busy",
            f"--annotations={CPU}=250m",
            f"--annotations={MEMORY}=100Mi",
        )
        yield running


def ns(cluster: KajitoriCluster, *args: str) -> str:
    return cluster.kubectl(*args, "-n", NS).stdout


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def top_pods(cluster: KajitoriCluster, *args: str) -> list[list[str]] | None:
    result = cluster.kubectl("top", "pods", "-n", NS, *args, check=False)
    return rows(result.stdout) if result.returncode == 0 and "busy" in result.stdout else None


def test_kubectl_top_pods_prints_usage(cluster: KajitoriCluster) -> None:
    table = wait_for(lambda: top_pods(cluster), timeout=30, what="busy's metrics")
    assert table[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    (row,) = [r for r in table[1:] if r[0] == "busy"]
    # 250m from a float counter over a measured window: kubectl rounds nanocores up.
    assert re.fullmatch(r"2(49|50|51)m", row[1]), row
    assert row[2] == "100Mi"
    by_label = wait_for(lambda: top_pods(cluster, "-l", "role=busy"), what="selected pods")
    assert [r[0] for r in by_label[1:]] == ["busy"]


def test_kubectl_top_nodes_prints_every_node(cluster: KajitoriCluster) -> None:
    def table() -> list[list[str]] | None:
        result = cluster.kubectl("top", "nodes", check=False)
        found = rows(result.stdout) if result.returncode == 0 else []
        complete = {r[0] for r in found[1:] if "<unknown>" not in r} == NODES
        return found if complete else None

    found = wait_for(table, timeout=30, what="both nodes' metrics")
    assert found[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    for row in found[1:]:
        assert re.fullmatch(r"\d+m", row[1]) and re.fullmatch(r"\d+Mi", row[3]), row
        # Every node uses at least its baseline, the busy pod's node that plus 250m.
        assert int(row[1][:-1]) >= 24 and int(row[3][:-2]) >= 128, row


def test_raw_metrics_objects_are_metrics_servers(cluster: KajitoriCluster) -> None:
    nodes = json.loads(cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    assert (nodes["kind"], nodes["apiVersion"]) == ("NodeMetricsList", "metrics.k8s.io/v1beta1")
    assert {item["metadata"]["name"] for item in nodes["items"]} == NODES
    item = nodes["items"][0]
    assert set(item) == {"kind", "apiVersion", "metadata", "timestamp", "window", "usage"}
    assert re.fullmatch(r"\d+(\.\d+)?m?s", item["window"]), item["window"]
    assert re.fullmatch(r"\d+[nm]?", item["usage"]["cpu"]), item["usage"]
    assert item["metadata"]["labels"]["kubernetes.io/hostname"] == item["metadata"]["name"]
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods/busy"
    busy = json.loads(cluster.kubectl("get", "--raw", path).stdout)
    assert busy["kind"] == "PodMetrics"
    assert busy["metadata"]["labels"] == {"role": "busy"}
    assert busy["containers"][0]["name"] == "busy"
    assert busy["containers"][0]["usage"]["memory"] == "100Mi"
    missing = cluster.kubectl("get", "--raw", path[:-4] + "nope", check=False)
    assert missing.returncode != 0
    assert 'pods "nope" not found' in missing.stderr
    service = json.loads(
        cluster.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json").stdout
    )
    assert service["spec"]["groupPriorityMinimum"] == 100
    assert service["status"]["conditions"][0]["status"] == "True"


def test_the_official_client_reads_pod_metrics(cluster: KajitoriCluster) -> None:
    api = client.CustomObjectsApi(config.new_client_from_config(str(cluster.kubeconfig)))

    def names(selector: str) -> list[str]:
        listed = api.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", NS, "pods", label_selector=selector
        )
        assert isinstance(listed, dict)
        return [item["metadata"]["name"] for item in listed["items"]]

    assert names("role=busy") == ["busy"]
    assert names("role=none") == []


def hpa_spec() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
    }


def replicas(cluster: KajitoriCluster) -> int:
    return int(ns(cluster, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"))


def conditions(hpa: dict[str, Any]) -> dict[str, tuple[str, str]]:
    found = hpa.get("status", {}).get("conditions") or []
    return {c["type"]: (c["status"], c["reason"]) for c in found}


def test_hpa_scales_on_cpu_utilization_up_and_back_down(cluster: KajitoriCluster) -> None:
    ns(cluster, "create", "deployment", "web", "--image=nginx")
    ns(cluster, "set", "resources", "deployment", "web", "--requests=cpu=100m,memory=64Mi")

    def running_pods() -> bool:
        phases = ns(
            cluster, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}"
        )
        return phases.split() == ["Running"]

    wait_until(running_pods, timeout=30, what="web's pod running")
    # Three times the target: the HPA wants 6, maxReplicas allows 3.
    ns(cluster, "annotate", "pods", "-l", "app=web", "--overwrite", f"{CPU}=150m")
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(hpa_spec()))
    wait_until(lambda: replicas(cluster) == 3, timeout=45, what="scale-up to 3")
    events = ns(cluster, "get", "events", "--field-selector", "reason=SuccessfulRescale")
    assert (
        "New size: 3; reason: cpu resource utilization (percentage of request) above target"
        in events
    )

    def status() -> dict[str, Any] | None:
        hpa = json.loads(ns(cluster, "get", "hpa", "web", "-o", "json"))
        metrics = hpa.get("status", {}).get("currentMetrics") or []
        return hpa if metrics and hpa["status"].get("desiredReplicas") == 3 else None

    hpa = wait_for(status, timeout=30, what="the HPA's status after the scale-up")
    (metric,) = hpa["status"]["currentMetrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["current"]["averageUtilization"] >= 50
    found = conditions(hpa)
    assert found["AbleToScale"][0] == "True"
    assert found["ScalingActive"] == ("True", "ValidMetricFound")
    # Every pod idle (the scaled-up ones use the default tenth of their request anyway).
    ns(cluster, "annotate", "pods", "-l", "app=web", "--overwrite", f"{CPU}=5m")
    wait_until(lambda: replicas(cluster) == 1, timeout=45, what="scale-down to 1")
    events = ns(cluster, "get", "events", "--field-selector", "reason=SuccessfulRescale")
    assert "New size: 1; reason: All metrics below target" in events
