"""TaintToleration: NoSchedule/NoExecute taints repel pods that do not tolerate them.

Upstream's plugins/tainttoleration. Filter: the first untolerated
NoSchedule or NoExecute taint rejects the node (unresolvable: preemption
cannot remove a taint) with ``node(s) had untolerated taint {key: value}``.
Score: fewer untolerated PreferNoSchedule taints is better (reversed
normalization).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kajitori.scheduler import framework

FILTER_EFFECTS = ("NoSchedule", "NoExecute")
SCORE_EFFECTS = ("PreferNoSchedule",)
# Whether any node of the cycle's snapshot has a PreferNoSchedule taint, noted at
# PreFilter (which sees the whole snapshot, where the answer is known without a
# scan) for PreScore (which sees only the feasible nodes, a subset).
_PREFERRED_KEY = "TaintToleration.preferNoSchedule"


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Upstream's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(taint: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def node_taints(node: framework.NodeInfo) -> tuple[Mapping[str, Any], ...]:
    return node.taints


class TaintToleration:
    name = "TaintToleration"
    weight = 3

    def pre_filter(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip Filter when no node has a NoSchedule or NoExecute taint: all would pass."""
        state[_PREFERRED_KEY] = framework.has_taint_effect(nodes, SCORE_EFFECTS)
        if framework.has_taint_effect(nodes, FILTER_EFFECTS):
            return framework.SUCCESS
        return framework.Status(framework.Code.SKIP)

    def pre_score(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip scoring when no node has a PreferNoSchedule taint: every node would tie."""
        if state.get(_PREFERRED_KEY) is False:
            return framework.Status(framework.Code.SKIP)  # none in the whole snapshot
        if framework.has_taint_effect(nodes, SCORE_EFFECTS):
            return framework.SUCCESS
        return framework.Status(framework.Code.SKIP)

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        tolerations = (pod.get("spec") or {}).get("tolerations") or ()
        for taint in node_taints(node):
            if taint.get("effect") in FILTER_EFFECTS and not tolerated(taint, tolerations):
                reason = (
                    f"node(s) had untolerated taint {{{taint.get('key', '')}: "
                    f"{taint.get('value', '')}}}"
                )
                return framework.unschedulable(reason, unresolvable=True)
        return framework.SUCCESS

    def filter_many(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> list[bool]:
        """Whether each node passes ``filter``: untainted nodes without a call."""
        check, success = self.filter, framework.SUCCESS
        return [not n.taints or check(state, pod, n) is success for n in nodes]

    def score(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> int:
        taints = node_taints(node)
        if not taints:
            return 0
        tolerations = [
            t
            for t in (pod.get("spec") or {}).get("tolerations") or ()
            if t.get("effect") in ("", None, "PreferNoSchedule")
        ]
        return sum(
            1
            for taint in taints
            if taint.get("effect") == "PreferNoSchedule" and not tolerated(taint, tolerations)
        )

    def normalize(
        self, state: framework.CycleState, pod: dict[str, Any], scores: dict[str, int]
    ) -> None:
        framework.default_normalize(scores, reverse=True)
