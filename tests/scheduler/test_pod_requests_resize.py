"""The scheduler counts what an in-place resize holds on the node (UseStatusResources).

Upstream's PodRequests takes per container the most of the spec's requests,
the actual ones (``containerStatuses[].resources.requests``) and the
allocated ones; the spec's not while the resize is Infeasible. A pod whose
spec never changed (generation 1) counts its spec alone.
"""

from __future__ import annotations

from typing import Any

from kajitori.scheduler import framework

Object = dict[str, Any]


def _pod(spec_cpu: str, actual_cpu: str, allocated_cpu: str, *, generation: int = 2) -> Object:
    return {
        "metadata": {"name": "p", "uid": "u", "generation": generation},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": spec_cpu}}}]},
        "status": {
            "containerStatuses": [
                {
                    "name": "c",
                    "allocatedResources": {"cpu": allocated_cpu},
                    "resources": {"requests": {"cpu": actual_cpu}},
                }
            ]
        },
    }


def test_a_pending_increase_counts_the_spec() -> None:
    assert framework.pod_requests(_pod("2", "500m", "500m"))["cpu"] == 2000


def test_a_decrease_in_progress_counts_what_runs() -> None:
    assert framework.pod_requests(_pod("100m", "1", "100m"))["cpu"] == 1000


def test_an_infeasible_resize_counts_what_was_allocated() -> None:
    pod = _pod("100", "500m", "750m")
    pod["status"]["conditions"] = [
        {"type": "PodResizePending", "status": "True", "reason": "Infeasible"}
    ]
    assert framework.pod_requests(pod)["cpu"] == 750


def test_a_pod_never_resized_counts_its_spec() -> None:
    assert framework.pod_requests(_pod("100m", "1", "1", generation=1))["cpu"] == 100


def test_node_info_resums_when_the_resize_status_changes() -> None:
    node = framework.NodeInfo({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4"}}})
    old = _pod("2", "500m", "500m")
    node.add_pod(old)
    assert node.requested["cpu"] == 2000
    new = _pod("100m", "500m", "100m")
    new["spec"] = old["spec"]
    new["status"]["containerStatuses"][0]["resources"] = {"requests": {"cpu": "3"}}
    assert not node.replace_pod(old, new)
    node.remove_pod(old)
    node.add_pod(new)
    assert node.requested["cpu"] == 3000
