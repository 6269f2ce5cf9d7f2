"""The framework's pure pieces: pod requests, node snapshots and upstream's FitError text."""

from __future__ import annotations

from typing import Any

import pytest
from tests.scheduler import helpers

from kajitori.scheduler import framework


def _container(cpu: str, *, restart: str = "") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "resources": {"requests": {"cpu": cpu}}}
    if restart:
        container["restartPolicy"] = restart
    return container


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"containers": [_container("1"), _container("500m")]}, 1500, id="sum"),
        pytest.param(
            {"containers": [_container("1")], "initContainers": [_container("3")]},
            3000,
            id="init-container-maximum",
        ),
        pytest.param(
            {
                "containers": [_container("1")],
                "initContainers": [_container("500m", restart="Always"), _container("1")],
            },
            1500,
            id="sidecar-adds-to-sum-and-to-later-init",
        ),
        pytest.param(
            {"containers": [_container("1")], "overhead": {"cpu": "250m"}},
            1250,
            id="overhead-added",
        ),
    ],
)
def test_pod_requests_follow_upstreams_rules(spec: dict[str, Any], expected: int) -> None:
    """Containers are summed, init containers taken as a maximum, overhead added."""
    assert framework.pod_requests({"spec": spec})["cpu"] == expected


def test_non_zero_requests_count_unset_cpu_and_memory_as_defaults() -> None:
    """Scoring treats a container without requests as 100m cpu and 200Mi memory."""
    requests = framework.pod_requests(helpers.make_pod(), non_zero=True)
    assert requests == {"cpu": 100, "memory": 200 * 1024 * 1024}


def test_snapshot_counts_only_assigned_non_terminal_pods() -> None:
    """Pending pods elsewhere and finished pods do not occupy a node."""
    done = helpers.make_pod("done", node="n1", requests={"cpu": "1"})
    done["status"]["phase"] = "Succeeded"
    running = helpers.make_pod("run", node="n1", requests={"cpu": "1"})
    pending = helpers.make_pod("pending", requests={"cpu": "1"})
    (info,) = framework.snapshot([helpers.make_node("n1")], [done, running, pending])
    assert [p["metadata"]["name"] for p in info.pods] == ["run"]
    assert info.requested == {"cpu": 1000}


def test_fit_error_counts_reasons_and_sorts_them_as_text() -> None:
    """Upstream's message: reason counts sorted as strings, then the preemption note."""
    taint = framework.unschedulable("node(s) had untolerated taint {k: }", unresolvable=True)
    cpu = framework.unschedulable("Insufficient cpu")
    diagnosis = framework.Diagnosis(
        node_statuses={"a": taint, "b": cpu, "c": cpu},
        post_filter_message="preemption: 0/3 nodes are available: 3 No preemption victims.",
    )
    assert framework.FitError(3, diagnosis).message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: }, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 No preemption victims."
    )


def test_fit_error_with_a_pre_filter_rejection_shows_only_its_message() -> None:
    """A PreFilter rejection is not repeated per node."""
    status = framework.unschedulable("too big")
    diagnosis = framework.Diagnosis(
        node_statuses={"a": status, "b": status}, pre_filter_message="too big"
    )
    assert framework.FitError(2, diagnosis).message == "0/2 nodes are available: too big."


@pytest.mark.parametrize(
    ("scores", "reverse", "expected"),
    [
        pytest.param({"a": 5, "b": 10}, False, {"a": 50, "b": 100}, id="scaled-by-max"),
        pytest.param({"a": 5, "b": 10}, True, {"a": 50, "b": 0}, id="reversed"),
        pytest.param({"a": 0, "b": 0}, True, {"a": 100, "b": 100}, id="all-zero-reversed"),
    ],
)
def test_default_normalize_scales_to_the_maximum(
    scores: dict[str, int], reverse: bool, expected: dict[str, int]
) -> None:
    """Upstream's DefaultNormalizeScore."""
    framework.default_normalize(scores, reverse=reverse)
    assert scores == expected
