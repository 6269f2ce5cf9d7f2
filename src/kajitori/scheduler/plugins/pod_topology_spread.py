"""PodTopologySpread: keep matching pods evenly spread over topology domains.

Upstream's plugins/podtopologyspread. For each of the pod's
``topologySpreadConstraints``, matching pods (its ``labelSelector``, in the
pod's namespace) are counted per value of ``topologyKey`` over the nodes
that have the key and pass the pod's node affinity/selector (upstream's
default ``nodeAffinityPolicy: Honor``).

* ``DoNotSchedule`` filters: a node without the key is unresolvable
  (``... (missing required label)``); otherwise placing the pod there must
  keep ``count(domain) + self - min(count) <= maxSkew``, where ``self`` is 1
  when the pod matches its own selector.
* ``ScheduleAnyway`` scores: fewer matching pods in the node's domain is
  better (reversed normalization).

``minDomains`` and ``matchLabelKeys`` are not implemented yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kajitori.machinery import labels
from kajitori.scheduler import framework
from kajitori.scheduler.plugins import node_affinity

REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
_STATE_KEY = "PodTopologySpread.counts"

Object = dict[str, Any]


def _constraints(pod: Mapping[str, Any], when: str) -> list[Object]:
    return [
        c
        for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or []
        if c.get("whenUnsatisfiable", "DoNotSchedule") == when
    ]


def _selects(constraint: Mapping[str, Any], owner: Mapping[str, Any], pod: Object) -> bool:
    meta = pod.get("metadata") or {}
    if meta.get("namespace") != (owner.get("metadata") or {}).get("namespace"):
        return False
    try:
        selector = labels.selector_from_label_selector(constraint.get("labelSelector"))
    except labels.SelectorError:
        return False
    return selector.matches(meta.get("labels") or {})


def domain_counts(
    constraint: Mapping[str, Any], pod: Object, nodes: list[framework.NodeInfo]
) -> dict[str, int]:
    """Matching pods per domain value, over the eligible nodes carrying the key."""
    key = constraint.get("topologyKey") or ""
    counts: dict[str, int] = {}
    for info in nodes:
        if key not in info.labels or not node_affinity.required_matches(pod, info):
            continue
        value = info.labels[key]
        matching = sum(1 for p in info.pods if _selects(constraint, pod, p))
        counts[value] = counts.get(value, 0) + matching
    return counts


class PodTopologySpread:
    name = "PodTopologySpread"
    weight = 2

    def pre_filter(
        self, state: framework.CycleState, pod: Object, nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        state[_STATE_KEY] = {
            id(c): domain_counts(c, pod, nodes)
            for when in ("DoNotSchedule", "ScheduleAnyway")
            for c in _constraints(pod, when)
        }
        if not _constraints(pod, "DoNotSchedule"):
            return framework.Status(framework.Code.SKIP)  # Filter would pass every node
        return framework.SUCCESS

    def pre_score(
        self, state: framework.CycleState, pod: Object, nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip scoring without ScheduleAnyway constraints: every node would tie."""
        if not _constraints(pod, "ScheduleAnyway"):
            return framework.Status(framework.Code.SKIP)
        return framework.SUCCESS

    def _counts(
        self, state: framework.CycleState, constraint: Object, pod: Object, node: Any
    ) -> dict[str, int]:
        cached = (state.get(_STATE_KEY) or {}).get(id(constraint))
        return cached if cached is not None else domain_counts(constraint, pod, [node])

    def filter(
        self, state: framework.CycleState, pod: Object, node: framework.NodeInfo
    ) -> framework.Status:
        for constraint in _constraints(pod, "DoNotSchedule"):
            key = constraint.get("topologyKey") or ""
            if key not in node.labels:
                return framework.unschedulable(MISSING_LABEL, unresolvable=True)
            counts = self._counts(state, constraint, pod, node)
            own = 1 if _selects(constraint, pod, pod) else 0
            lowest = min(counts.values(), default=0)
            skew = counts.get(node.labels[key], 0) + own - lowest
            if skew > (constraint.get("maxSkew") or 1):
                return framework.unschedulable(REASON)
        return framework.SUCCESS

    def score(self, state: framework.CycleState, pod: Object, node: framework.NodeInfo) -> int:
        total = 0
        for constraint in _constraints(pod, "ScheduleAnyway"):
            key = constraint.get("topologyKey") or ""
            if key in node.labels:
                total += self._counts(state, constraint, pod, node).get(node.labels[key], 0)
        return total

    def normalize(self, state: framework.CycleState, pod: Object, scores: dict[str, int]) -> None:
        framework.default_normalize(scores, reverse=True)
