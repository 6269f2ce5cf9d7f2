"""NodeAffinity: ``spec.nodeSelector`` and ``spec.affinity.nodeAffinity``.

Upstream's plugins/nodeaffinity with component-helpers' nodeaffinity:

* Filter: every ``nodeSelector`` label must match, and one of the required
  ``nodeSelectorTerms`` must (terms are ORed; a term's ``matchExpressions``
  on labels and ``matchFields`` on ``metadata.name`` are ANDed; a term with
  neither matches nothing). Unresolvable: preemption cannot relabel nodes.
* Score: the summed weights of matching preferred terms, normalized to 0..100.

Operators: In, NotIn, Exists, DoesNotExist, Gt, Lt (integers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kajitori.scheduler import framework

REASON = "node(s) didn't match Pod's node affinity/selector"


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def requirement_matches(requirement: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement against ``values`` (labels, or fields by name)."""
    key = requirement.get("key") or ""
    operator = requirement.get("operator") or ""
    wanted = requirement.get("values") or []
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        have, bound = _integer(values[key]), _integer(wanted[0])
        if have is None or bound is None:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def term_matches(term: Mapping[str, Any], node: framework.NodeInfo) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    node_fields = {"metadata.name": node.name}
    return all(requirement_matches(r, node.labels) for r in expressions) and all(
        requirement_matches(r, node_fields) for r in fields
    )


def _node_affinity(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    affinity: Mapping[str, Any] = ((pod.get("spec") or {}).get("affinity") or {}).get(
        "nodeAffinity"
    ) or {}
    return affinity


def required_matches(pod: Mapping[str, Any], node: framework.NodeInfo) -> bool:
    """Whether ``node`` satisfies the pod's nodeSelector and required node affinity."""
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


class NodeAffinity:
    name = "NodeAffinity"
    weight = 2

    def pre_filter(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip Filter for a pod with neither nodeSelector nor required node affinity."""
        spec = pod.get("spec") or {}
        required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
        if not spec.get("nodeSelector") and required is None:
            return framework.Status(framework.Code.SKIP)
        return framework.SUCCESS

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        if required_matches(pod, node):
            return framework.SUCCESS
        return framework.unschedulable(REASON, unresolvable=True)

    def score(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> int:
        preferred = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution")
        return sum(
            term.get("weight") or 0
            for term in preferred or []
            if term_matches(term.get("preference") or {}, node)
        )

    def pre_score(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip scoring without preferred terms: every node would score 0."""
        if not _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution"):
            return framework.Status(framework.Code.SKIP)
        return framework.SUCCESS

    def normalize(
        self, state: framework.CycleState, pod: dict[str, Any], scores: dict[str, int]
    ) -> None:
        framework.default_normalize(scores)
