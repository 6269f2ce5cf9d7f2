"""DefaultPreemption: when no node fits, find one where evicting lower-priority pods makes room.

Upstream's plugins/defaultpreemption with the preemption Evaluator, reduced
to its core. Deciding is pure (``find_candidate``); the scheduler does the
evicting. For each node that failed with a resolvable status:

1. every pod on it with a lower ``spec.priority`` is a potential victim
   (none: ``No preemption victims found for incoming pod``);
2. with all of them removed the pod must pass every Filter (else that
   node's filter reasons are its status);
3. victims are then reprieved, highest priority first, while the pod still
   fits; the rest are the victims.

Among candidates the node whose highest-priority victim is lowest wins,
then the one with fewest victims, then by name. Nodes that failed
unresolvably count as ``Preemption is not helpful for scheduling``. When no
candidate exists the message is upstream's ``preemption: 0/N nodes are
available: ...``. A pod with ``preemptionPolicy: Never`` never preempts, and
a pod whose nominated node still has a terminating victim waits for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from kajitori.scheduler import framework
from kajitori.scheduler import queue as scheduling_queue

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"

Object = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    node_name: str
    victims: tuple[Object, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """A candidate to act on, or why there is none (``message`` without the prefix)."""

    candidate: Candidate | None
    message: str


def _fits(
    filters: Sequence[framework.FilterPlugin], pod: Object, node: framework.NodeInfo
) -> framework.Status:
    state: framework.CycleState = {}
    for plugin in filters:
        status = plugin.filter(state, pod, node)
        if not status.ok:
            return status
    return framework.SUCCESS


def eligibility_problem(pod: Object, nodes: Sequence[framework.NodeInfo]) -> str:
    """Why ``pod`` may not preempt at all, or ""."""
    spec = pod.get("spec") or {}
    if spec.get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = (pod.get("status") or {}).get("nominatedNodeName")
    priority = scheduling_queue.pod_priority(pod)
    for info in nodes:
        if info.name != nominated:
            continue
        for other in info.pods:
            terminating = (other.get("metadata") or {}).get("deletionTimestamp")
            if terminating and scheduling_queue.pod_priority(other) < priority:
                return "not eligible due to a terminating pod on the nominated node."
    return ""


def select_victims(
    pod: Object,
    node: framework.NodeInfo,
    filters: Sequence[framework.FilterPlugin],
) -> tuple[tuple[Object, ...], framework.Status]:
    """The fewest lower-priority pods to evict from ``node`` so ``pod`` fits, or why not."""
    priority = scheduling_queue.pod_priority(pod)
    potential = [p for p in node.pods if scheduling_queue.pod_priority(p) < priority]
    if not potential:
        return (), framework.unschedulable(NO_VICTIMS, unresolvable=True)
    status = _fits(filters, pod, node.without(potential))
    if not status.ok:
        return (), status
    victims = sorted(potential, key=scheduling_queue.pod_priority, reverse=True)
    kept: list[Object] = []
    for candidate in list(victims):
        trial = [v for v in victims if v is not candidate and v not in kept]
        if _fits(filters, pod, node.without(trial)).ok:
            kept.append(candidate)
    return tuple(v for v in victims if v not in kept), framework.SUCCESS


def find_candidate(
    pod: Object,
    nodes: Sequence[framework.NodeInfo],
    statuses: dict[str, framework.Status],
    filters: Sequence[framework.FilterPlugin],
) -> Outcome:
    """Upstream's Preempt, without side effects."""
    problem = eligibility_problem(pod, nodes)
    if problem:
        return Outcome(None, problem)
    outcomes: dict[str, framework.Status] = {}
    candidates: list[Candidate] = []
    for info in nodes:
        failed = statuses.get(info.name)
        if failed is not None and failed.code == framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
            outcomes[info.name] = framework.unschedulable(NOT_HELPFUL, unresolvable=True)
            continue
        victims, status = select_victims(pod, info, filters)
        if status.ok and victims:
            candidates.append(Candidate(info.name, victims))
        else:
            outcomes[info.name] = status
    if not candidates:
        histogram = framework.reason_histogram(outcomes.values())
        return Outcome(None, f"0/{len(nodes)} nodes are available: {histogram}.")
    best = min(
        candidates,
        key=lambda c: (
            max(scheduling_queue.pod_priority(v) for v in c.victims),
            len(c.victims),
            c.node_name,
        ),
    )
    return Outcome(best, "")
