"""The pure decision: schedule_pod over a snapshot, and DefaultPreemption's choice of victims."""

from __future__ import annotations

import pytest
from tests.scheduler import helpers

from kajitori.scheduler import framework, scheduler
from kajitori.scheduler.plugins import default_preemption

make_node, make_pod, info = helpers.make_node, helpers.make_pod, helpers.info
PROFILE = scheduler.default_profile()


def test_schedule_pod_prefers_the_least_allocated_node() -> None:
    """Among feasible nodes the emptier one scores higher."""
    busy = info(make_node("a"), make_pod("x", node="a", requests={"cpu": "3"}))
    empty = info(make_node("b"))
    pod = make_pod(requests={"cpu": "500m"})
    assert scheduler.schedule_pod(pod, [busy, empty], PROFILE) == "b"


def test_schedule_pod_raises_upstreams_fit_error() -> None:
    """Every node rejected: the FitError counts reasons over all nodes."""
    cordoned = info(make_node("a", unschedulable=True))
    small = info(make_node("b", cpu="1"))
    with pytest.raises(framework.FitError) as caught:
        scheduler.schedule_pod(make_pod(requests={"cpu": "2"}), [cordoned, small], PROFILE)
    assert caught.value.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable."
    )


def test_schedule_pod_without_nodes_is_an_error() -> None:
    """No nodes at all: upstream's ErrNoNodesAvailable."""
    with pytest.raises(scheduler.NoNodesAvailableError, match="no nodes available"):
        scheduler.schedule_pod(make_pod(), [], PROFILE)


def _full_node() -> framework.NodeInfo:
    return info(
        make_node("n", cpu="2"),
        make_pod("low-a", node="n", requests={"cpu": "1"}, priority=1),
        make_pod("low-b", node="n", requests={"cpu": "1"}, priority=5),
    )


def test_preemption_evicts_the_fewest_lowest_priority_pods() -> None:
    """Reprieve: the higher-priority victim is kept when evicting the lower one is enough."""
    node = _full_node()
    pod = make_pod(requests={"cpu": "1"}, priority=10)
    statuses = {"n": framework.unschedulable("Insufficient cpu")}
    outcome = default_preemption.find_candidate(pod, [node], statuses, PROFILE.filters)
    assert outcome.candidate is not None
    assert outcome.candidate.node_name == "n"
    assert [v["metadata"]["name"] for v in outcome.candidate.victims] == ["low-a"]


@pytest.mark.parametrize(
    ("priority", "status", "message"),
    [
        pytest.param(
            1,
            framework.unschedulable("Insufficient cpu"),
            "0/1 nodes are available: 1 No preemption victims found for incoming pod.",
            id="no-lower-priority-pods",
        ),
        pytest.param(
            10,
            framework.unschedulable("node(s) had untolerated taint {k: v}", unresolvable=True),
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
            id="unresolvable",
        ),
    ],
)
def test_preemption_explains_why_no_node_helps(
    priority: int, status: framework.Status, message: str
) -> None:
    """Upstream's preemption diagnosis, per node."""
    pod = make_pod(requests={"cpu": "1"}, priority=priority)
    outcome = default_preemption.find_candidate(pod, [_full_node()], {"n": status}, PROFILE.filters)
    assert outcome.candidate is None
    assert outcome.message == message


def test_a_pod_with_preemption_policy_never_does_not_preempt() -> None:
    """preemptionPolicy: Never makes the pod ineligible."""
    pod = make_pod(requests={"cpu": "1"}, priority=10, preemptionPolicy="Never")
    statuses = {"n": framework.unschedulable("Insufficient cpu")}
    outcome = default_preemption.find_candidate(pod, [_full_node()], statuses, PROFILE.filters)
    assert outcome.message == "not eligible due to preemptionPolicy=Never."
