"""The kubelet's ``/metrics/resource`` and ``/stats/summary`` (kubelet/resource_metrics.py).

The exposition text is upstream's collector's: families sorted by name with
their ``[STABLE]`` HELP lines, labels sorted, values as Go formats floats,
millisecond timestamps on usage series and none on start times. Simulated
usage follows the pod's annotations (else a share of its requests) and its
CPU counter never goes back when the annotation changes; cgroup v1 and v2
files give cAdvisor's working set (usage minus inactive file pages).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet import resource_metrics as rm

Object = dict[str, Any]
T0 = 1_700_000_000.0


def pod(name: str = "web", *, annotations: Object | None = None, cpu: str = "200m") -> Object:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "annotations": annotations or {},
        },
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "app", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}},
                {"name": "side"},
            ],
        },
        "status": {
            "startTime": "2023-11-14T22:13:20Z",
            "containerStatuses": [
                {"name": "app", "state": {"running": {"startedAt": "2023-11-14T22:13:20Z"}}},
                {"name": "side", "state": {"running": {"startedAt": "2023-11-14T22:13:20Z"}}},
            ],
        },
    }


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 10

    def __call__(self) -> float:
        return self.now


def test_go_float_matches_strconv_g() -> None:
    cases = {
        0.0: "0",
        1.0: "1",
        0.5: "0.5",
        123456.0: "123456",
        1.7e9: "1.7e+09",
        33554432.0: "3.3554432e+07",
        0.00001: "1e-05",
        0.0001: "0.0001",
        2.25: "2.25",
    }
    for value, text in cases.items():
        assert rm.go_float(value) == text, value


def test_simulated_defaults_and_annotations() -> None:
    container = pod()["spec"]["containers"][0]
    bare = pod()["spec"]["containers"][1]
    assert rm.simulated_rates(pod(), container) == (Decimal("0.02"), 32 << 20)
    assert rm.simulated_rates(pod(), bare) == (Decimal("0.001"), 8 << 20)
    annotated = pod(
        annotations={rm.CPU_USAGE_ANNOTATION: "1500m", rm.MEMORY_USAGE_ANNOTATION: "1Gi"}
    )
    assert rm.simulated_rates(annotated, container) == (1.5, 1 << 30)


def test_simulated_counter_is_continuous_across_annotation_changes() -> None:
    usage = rm.SimulatedUsage()
    running = {"app": T0}
    hot = pod(annotations={rm.CPU_USAGE_ANNOTATION: "1"})
    first = usage.sample(hot, running, T0 + 10)[0]
    assert first.cpu_seconds == pytest.approx(10.0)  # as if at 1 core since start
    cold = pod(annotations={rm.CPU_USAGE_ANNOTATION: "100m"})
    second = usage.sample(cold, running, T0 + 20)[0]
    assert second.cpu_seconds == pytest.approx(20.0)  # the past 10 s ran at the old rate
    third = usage.sample(cold, running, T0 + 30)[0]
    assert third.cpu_seconds == pytest.approx(21.0)
    # A restarted container (another start time) starts a counter of its own.
    again = usage.sample(cold, {"app": T0 + 29}, T0 + 30)[0]
    assert again.cpu_seconds == pytest.approx(0.1)


def test_prometheus_text_is_upstreams() -> None:
    clock = Clock()
    pods = [pod(annotations={rm.CPU_USAGE_ANNOTATION: "1", rm.MEMORY_USAGE_ANNOTATION: "1Mi"})]
    pods.append({**pod("elsewhere"), "spec": {**pod()["spec"], "nodeName": "n2"}})
    metrics = rm.ResourceMetrics(
        "n1", list_pods=lambda: pods, source=rm.SimulatedUsage(), clock=clock
    )
    clock.now = T0 + 20
    text = metrics.prometheus().decode()
    stamp = int((T0 + 20) * 1000)
    labels = 'namespace="shop",pod="web"'
    expected = f"""# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{{container="app",{labels}}} 20 {stamp}
container_cpu_usage_seconds_total{{container="side",{labels}}} 20 {stamp}
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{{container="app",{labels}}} 1.048576e+06 {stamp}
container_memory_working_set_bytes{{container="side",{labels}}} 1.048576e+06 {stamp}
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{{container="app",{labels}}} 1.7e+09
container_start_time_seconds{{container="side",{labels}}} 1.7e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 40.25 {stamp}
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.36314880e+08 {stamp}
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{{{labels}}} 40 {stamp}
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{{{labels}}} 2.097152e+06 {stamp}
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
""".replace("1.36314880e+08", rm.go_float(float((128 << 20) + (2 << 20))))
    assert text == expected


def test_node_counter_keeps_what_a_removed_pod_used() -> None:
    clock = Clock()
    pods = [pod(annotations={rm.CPU_USAGE_ANNOTATION: "1"})]
    metrics = rm.ResourceMetrics(
        "n1", list_pods=lambda: pods, source=rm.SimulatedUsage(), clock=clock
    )
    first = metrics.summary()["node"]["cpu"]["usageCoreNanoSeconds"]
    pods.clear()
    clock.now += 10
    second = metrics.summary()
    assert second["pods"] == []
    assert second["node"]["cpu"]["usageCoreNanoSeconds"] == first + int(0.25e9)
    assert second["node"]["memory"]["workingSetBytes"] == 128 << 20


def test_summary_shape() -> None:
    clock = Clock()
    pods = [pod(annotations={rm.CPU_USAGE_ANNOTATION: "500m"})]
    summary = rm.ResourceMetrics(
        "n1", list_pods=lambda: pods, source=rm.SimulatedUsage(), clock=clock
    ).summary()
    (only,) = summary["pods"]
    assert only["podRef"] == {"name": "web", "namespace": "shop", "uid": "uid-web"}
    assert [c["name"] for c in only["containers"]] == ["app", "side"]
    assert only["cpu"]["usageCoreNanoSeconds"] == 10 * 10**9
    assert only["containers"][0]["memory"] == {
        "time": "2023-11-14T22:13:30Z",
        "workingSetBytes": 32 << 20,
    }
    assert summary["node"]["nodeName"] == "n1"


def test_cgroup_v2_and_v1_working_set(tmp_path: Path) -> None:
    v2 = tmp_path / "v2" / "kajitori" / "podu" / "cid"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")
    (v2 / "memory.current").write_text("10485760\n")
    (v2 / "memory.stat").write_text("anon 1\ninactive_file 4194304\n")
    assert rm.read_cgroup("/kajitori/podu/cid", tmp_path / "v2") == (2.5, 6 << 20)
    v1 = tmp_path / "v1"
    (v1 / "cpuacct" / "kajitori" / "podu" / "cid").mkdir(parents=True)
    (v1 / "memory" / "kajitori" / "podu" / "cid").mkdir(parents=True)
    (v1 / "cpuacct" / "kajitori" / "podu" / "cid" / "cpuacct.usage").write_text("1500000000\n")
    memory = v1 / "memory" / "kajitori" / "podu" / "cid"
    (memory / "memory.usage_in_bytes").write_text("4096\n")
    (memory / "memory.stat").write_text("total_inactive_file 8192\n")
    assert rm.read_cgroup("/kajitori/podu/cid", v1) == (1.5, 0)  # never below zero
    assert rm.read_cgroup("/kajitori/podu/gone", v1) is None
    assert rm.container_cgroup("u1", "runc://abc") == "/kajitori/podu1/abc"
    assert rm.container_cgroup("u1", "containerd://abc") is None


def test_one_source_serves_several_nodes_without_losing_counters() -> None:
    clock = Clock()
    usage = rm.SimulatedUsage()
    pods = [pod(annotations={rm.CPU_USAGE_ANNOTATION: "1"})]
    n1 = rm.ResourceMetrics("n1", list_pods=lambda: pods, source=usage, clock=clock)
    n2 = rm.ResourceMetrics("n2", list_pods=lambda: pods, source=usage, clock=clock)
    assert n1.collect()[0].cpu_seconds == pytest.approx(20.0)
    pods[0] = pod(annotations={rm.CPU_USAGE_ANNOTATION: "0"})
    clock.now += 10
    assert n2.collect() == []  # n2 has none of the pods
    clock.now += 10
    # Two containers, each on from 10 to 30 core-seconds (the change is seen at this read):
    # n2's look dropped nothing, so nothing is recomputed at the new rate of 0.
    assert n1.collect()[0].cpu_seconds == pytest.approx(60.0)
