"""HorizontalPodAutoscalers through the real kubectl: autoscaling/v2 (stored) and autoscaling/v1.

``kubectl autoscale`` creates an autoscaling/v2 HPA; ``kubectl get hpa``
prints upstream's columns; the v2 defaults (minReplicas, the implicit 80% CPU
target, the behavior rules) appear in ``-o yaml``; the same object read as
autoscaling/v1 carries ``targetCPUUtilizationPercentage`` and keeps the other
metrics in upstream's annotation; bad specs get upstream's 422 messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kajitori.testing.cluster import KajitoriCluster, wait_for, wait_until

NAMESPACE = "hpa"
V1_HPAS = "horizontalpodautoscalers.v1.autoscaling"
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """A cluster serving no metrics API (``--metric-resolution 0s``): the controller's
    failure path below is upstream's on a cluster without metrics-server."""
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    with KajitoriCluster(data_dir, extra_args=["--metric-resolution", "0s"]) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(cluster: KajitoriCluster) -> KajitoriCluster:
    """A namespace with Deployment ``web`` autoscaled by ``kubectl autoscale``."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "-n", NAMESPACE)
    cluster.kubectl(
        "autoscale", "deployment", "web", "--min=1", "--max=3", "--cpu-percent=50", "-n", NAMESPACE
    )
    return cluster


def kubectl_ns(cluster: KajitoriCluster, *args: str, stdin: str | None = None) -> str:
    return cluster.kubectl(*args, "-n", NAMESPACE, stdin=stdin).stdout


def get_yaml(cluster: KajitoriCluster, *args: str) -> Any:
    return yaml.safe_load(kubectl_ns(cluster, "get", *args, "-o", "yaml"))


def hpa(name: str, spec: dict[str, Any], api_version: str = "autoscaling/v2") -> str:
    body = {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }
    return json.dumps(body)


WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def test_kubectl_autoscale_stores_an_autoscaling_v2_hpa(seeded: KajitoriCluster) -> None:
    obj = get_yaml(seeded, "hpa", "web")
    assert obj["apiVersion"] == "autoscaling/v2"
    assert obj["spec"] == {
        "scaleTargetRef": WEB,
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
    }
    # Upstream's HPAGeneration: generation 1 on create.
    assert obj["metadata"]["generation"] == 1


def test_get_hpa_prints_upstreams_columns(seeded: KajitoriCluster) -> None:
    lines = kubectl_ns(seeded, "get", "hpa").splitlines()
    assert lines[0].split() == [
        "NAME",
        "REFERENCE",
        "TARGETS",
        "MINPODS",
        "MAXPODS",
        "REPLICAS",
        "AGE",
    ]
    row = lines[1].split("   ")
    cells = [cell.strip() for cell in row if cell.strip()]
    assert cells[:5] == ["web", "Deployment/web", "cpu: <unknown>/50%", "1", "3"]


def test_v2_defaults_fill_min_replicas_metrics_and_behavior(seeded: KajitoriCluster) -> None:
    spec = {
        "scaleTargetRef": WEB,
        "maxReplicas": 4,
        # A direction's given fields win; the rest come from upstream's rules.
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
    }
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("defaulted", spec))
    obj = get_yaml(seeded, "hpa", "defaulted")["spec"]
    assert obj["minReplicas"] == 1
    assert obj["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        }
    ]
    assert obj["behavior"] == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }
    table = kubectl_ns(seeded, "get", "hpa", "defaulted", "--no-headers").split()
    assert table[1:6] == ["Deployment/web", "cpu:", "<unknown>/80%", "1", "4"]


def test_v1_and_v2_reads_of_one_object_agree(seeded: KajitoriCluster) -> None:
    v2 = get_yaml(seeded, "hpa", "web")
    v1 = get_yaml(seeded, V1_HPAS, "web")
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["metadata"]["uid"] == v2["metadata"]["uid"]
    assert v1["spec"] == {
        "scaleTargetRef": WEB,
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50,
    }
    assert METRICS_ANNOTATION not in (v1["metadata"].get("annotations") or {})


def test_v1_create_reads_back_as_v2_with_the_cpu_metric(seeded: KajitoriCluster) -> None:
    spec = {"scaleTargetRef": WEB, "maxReplicas": 5, "targetCPUUtilizationPercentage": 65}
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("from-v1", spec, "autoscaling/v1"))
    v2 = get_yaml(seeded, "hpa", "from-v1")["spec"]
    assert v2["minReplicas"] == 1  # autoscaling/v1's default
    assert v2["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 65},
            },
        }
    ]
    # Without a CPU target, v1 means upstream's implicit 80%.
    bare = {"scaleTargetRef": WEB, "maxReplicas": 2}
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("bare-v1", bare, "autoscaling/v1"))
    assert get_yaml(seeded, V1_HPAS, "bare-v1")["spec"]["targetCPUUtilizationPercentage"] == 80


def test_v1_keeps_the_other_metrics_in_upstreams_annotation(seeded: KajitoriCluster) -> None:
    spec = {
        "scaleTargetRef": WEB,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "100Mi"},
                },
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            },
        ],
    }
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("multi", spec))
    v1 = get_yaml(seeded, V1_HPAS, "multi")
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 70
    others = json.loads(v1["metadata"]["annotations"][METRICS_ANNOTATION])
    assert others == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}
    ]
    # Writing the v1 object back (here: a label) keeps the memory metric in v2.
    kubectl_ns(seeded, "label", V1_HPAS, "multi", "team=a")
    v2 = get_yaml(seeded, "hpa", "multi")
    assert v2["metadata"]["labels"] == {"team": "a"}
    assert METRICS_ANNOTATION not in (v2["metadata"].get("annotations") or {})
    names = [m["resource"]["name"] for m in v2["spec"]["metrics"]]
    assert sorted(names) == ["cpu", "memory"]


def test_status_subresource_feeds_the_targets_column(seeded: KajitoriCluster) -> None:
    spec = {"scaleTargetRef": {**WEB, "name": "missing"}, "maxReplicas": 3}
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("status", spec))
    status = {
        "status": {
            "currentReplicas": 2,
            "desiredReplicas": 2,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": 30, "averageValue": "100m"},
                    },
                }
            ],
        }
    }
    kubectl_ns(
        seeded,
        "patch",
        "hpa",
        "status",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    cells = kubectl_ns(seeded, "get", "hpa", "status", "--no-headers").split()
    assert cells[2:7] == ["cpu:", "30%/80%", "1", "3", "2"]
    v1 = get_yaml(seeded, V1_HPAS, "status")
    assert v1["status"]["currentCPUUtilizationPercentage"] == 30
    # The main resource ignores status.
    kubectl_ns(seeded, "patch", "hpa", "status", "--type=merge", "-p", '{"status":null}')
    assert get_yaml(seeded, "hpa", "status")["status"]["currentReplicas"] == 2


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        (
            "max-below-min",
            {"scaleTargetRef": WEB, "minReplicas": 5, "maxReplicas": 2},
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        ),
        (
            "min-zero",
            {"scaleTargetRef": WEB, "minReplicas": 0, "maxReplicas": 2},
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        ),
        (
            "no-kind",
            {"scaleTargetRef": {**WEB, "kind": ""}, "maxReplicas": 2},
            "spec.scaleTargetRef.kind: Required value",
        ),
        (
            "bad-policy",
            {
                "scaleTargetRef": WEB,
                "maxReplicas": 2,
                "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0}]}},
            },
            "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
        ),
    ],
)
def test_bad_specs_are_refused_with_upstreams_messages(
    seeded: KajitoriCluster, name: str, spec: dict[str, Any], message: str
) -> None:
    result = seeded.kubectl(
        "create", "-f", "-", "-n", NAMESPACE, "-v=6", stdin=hpa(name, spec), check=False
    )
    assert result.returncode == 1
    assert "422 Unprocessable Entity" in result.stderr
    assert f'The HorizontalPodAutoscaler "{name}" is invalid' in result.stderr
    assert message in result.stderr


def test_min_replicas_zero_also_needs_an_object_or_external_metric(
    seeded: KajitoriCluster,
) -> None:
    spec = {"scaleTargetRef": WEB, "minReplicas": 0, "maxReplicas": 2}
    result = seeded.kubectl("create", "-f", "-", stdin=hpa("zero", spec), check=False)
    assert (
        "spec.metrics: Forbidden: must specify at least one Object or External metric "
        "to support scaling to zero replicas"
    ) in result.stderr


def test_api_resources_lists_hpa_in_autoscaling(seeded: KajitoriCluster) -> None:
    table = [line.split() for line in seeded.kubectl("api-resources").stdout.splitlines()]
    hpas = [row for row in table if row[0] == "horizontalpodautoscalers"]
    assert hpas == [
        ["horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"]
    ]
    versions = seeded.kubectl("api-versions").stdout.split()
    assert "autoscaling/v1" in versions and "autoscaling/v2" in versions
    # "all" includes HPAs (category), once.
    listed = kubectl_ns(seeded, "get", "all", "-o", "name").split()
    assert listed.count("horizontalpodautoscaler.autoscaling/web") == 1


def test_generation_counts_spec_changes_only(seeded: KajitoriCluster) -> None:
    kubectl_ns(
        seeded, "create", "-f", "-", stdin=hpa("gen", {"scaleTargetRef": WEB, "maxReplicas": 2})
    )
    kubectl_ns(seeded, "label", "hpa", "gen", "a=b")
    assert get_yaml(seeded, "hpa", "gen")["metadata"]["generation"] == 1
    kubectl_ns(seeded, "patch", "hpa", "gen", "--type=merge", "-p", '{"spec":{"maxReplicas":3}}')
    generation = wait_for(
        lambda: get_yaml(seeded, "hpa", "gen")["metadata"]["generation"], what="the update"
    )
    assert generation == 2


# ----- the HPA controller without a metrics API ----------------------------------------

NO_METRICS = (
    "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch "
    "metrics from resource metrics API: the server could not find the requested resource "
    "(get pods.metrics.k8s.io)"
)


def conditions(cluster: KajitoriCluster, name: str) -> dict[str, dict[str, Any]]:
    status = get_yaml(cluster, "hpa", name).get("status") or {}
    return {c["type"]: c for c in status.get("conditions") or ()}


def hpa_events(cluster: KajitoriCluster, name: str) -> dict[str, dict[str, Any]]:
    listed = json.loads(
        kubectl_ns(
            cluster,
            "get",
            "events",
            f"--field-selector=involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}",
            "-o",
            "json",
        )
    )
    return {e["reason"]: e for e in listed["items"]}


def test_controller_reports_missing_metrics_as_upstream(seeded: KajitoriCluster) -> None:
    found = wait_for(
        lambda: conditions(seeded, "web").get("ScalingActive"), what="the HPA controller"
    )
    assert (found["status"], found["reason"]) == ("False", "FailedGetResourceMetric")
    assert found["message"] == f"the HPA was unable to compute the replica count: {NO_METRICS}"
    able = conditions(seeded, "web")["AbleToScale"]
    assert (able["status"], able["reason"]) == ("True", "SucceededGetScale")
    status = get_yaml(seeded, "hpa", "web")["status"]
    # One empty current metric per spec metric, the target's replicas, no new desired count.
    assert status["currentMetrics"] == [{"type": ""}]
    assert status["currentReplicas"] == 1
    assert status["desiredReplicas"] == 0
    assert status["observedGeneration"] == get_yaml(seeded, "hpa", "web")["metadata"]["generation"]
    wanted = {"FailedGetResourceMetric", "FailedComputeMetricsReplicas"}
    recorded = wait_for(
        lambda: (lambda e: e if wanted <= e.keys() else None)(hpa_events(seeded, "web")),
        what="the controller's events",
    )
    warning = recorded["FailedGetResourceMetric"]
    assert (warning["type"], warning["message"]) == ("Warning", NO_METRICS)
    assert warning["source"]["component"] == "horizontal-pod-autoscaler"
    assert recorded["FailedComputeMetricsReplicas"]["message"] == (
        "invalid metrics (1 invalid out of 1), first error is: "
        f"failed to get cpu resource metric value: {NO_METRICS}"
    )
    # TARGETS still reads <unknown>: the empty metric status has no resource.
    assert "cpu: <unknown>/50%" in kubectl_ns(seeded, "get", "hpa", "web")


def test_controller_reports_a_missing_target(seeded: KajitoriCluster) -> None:
    spec = {"scaleTargetRef": {**WEB, "name": "ghost"}, "maxReplicas": 3}
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("ghost", spec))
    able = wait_for(lambda: conditions(seeded, "ghost").get("AbleToScale"), what="the controller")
    assert (able["status"], able["reason"]) == ("False", "FailedGetScale")
    assert able["message"] == (
        "the HPA controller was unable to get the target's current scale: "
        'deployments.apps "ghost" not found'
    )


def test_controller_brings_replicas_within_bounds(seeded: KajitoriCluster) -> None:
    seeded.kubectl("create", "deployment", "wide", "--image=nginx", "--replicas=5", "-n", NAMESPACE)
    spec = {"scaleTargetRef": {**WEB, "name": "wide"}, "minReplicas": 1, "maxReplicas": 2}
    kubectl_ns(seeded, "create", "-f", "-", stdin=hpa("wide", spec))
    wait_until(
        lambda: get_yaml(seeded, "deployment", "wide")["spec"]["replicas"] == 2,
        what="the rescale",
    )
    rescaled = wait_for(
        lambda: hpa_events(seeded, "wide").get("SuccessfulRescale"), what="the rescale event"
    )
    assert rescaled["message"] == (
        "New size: 2; reason: Current number of replicas above Spec.MaxReplicas"
    )
