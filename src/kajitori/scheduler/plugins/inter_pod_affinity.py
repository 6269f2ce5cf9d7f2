"""InterPodAffinity: required and preferred pod affinity and anti-affinity by topology.

Upstream's plugins/interpodaffinity. A term selects pods by label selector
in its namespaces (``namespaces``, or the pod's own namespace when empty; an
empty ``namespaceSelector`` means all namespaces) and relates nodes that
share the value of ``topologyKey``. Filter, in upstream's order:

1. an existing pod's required anti-affinity that matches the incoming pod
   keeps it out of that pod's domain
   (``node(s) didn't satisfy existing pods anti-affinity rules``);
2. each required affinity term needs a matching pod in the node's domain
   (``node(s) didn't match pod affinity rules``, unresolvable) — except
   that when no pod anywhere matches and the pod matches its own terms it
   may go anywhere the topology key exists (the first pod of a group);
3. each required anti-affinity term forbids a matching pod in the node's
   domain (``node(s) didn't match pod anti-affinity rules``).

Score: the incoming pod's preferred terms add (affinity) or subtract
(anti-affinity) their weight per matching pod in the node's domain,
min-max normalized to 0..100. (Existing pods' preferred terms toward the
incoming pod, which upstream also counts, are not scored yet.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kajitori.machinery import labels
from kajitori.scheduler import framework

EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
AFFINITY = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_NODES_KEY = "InterPodAffinity.nodes"
_ANTI_KEY = "InterPodAffinity.existingAntiAffinity"
_PLACED_KEY = "InterPodAffinity.placed"

Object = dict[str, Any]


def _terms(pod: Mapping[str, Any], kind: str, when: str) -> list[Object]:
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    terms: list[Object] = affinity.get(when) or []
    return terms


def term_matches_pod(term: Mapping[str, Any], owner: Mapping[str, Any], pod: Object) -> bool:
    """Whether ``pod`` is selected by ``term`` of ``owner`` (namespaces and labels)."""
    meta = pod.get("metadata") or {}
    namespaces = term.get("namespaces") or []
    all_namespaces = term.get("namespaceSelector") == {}
    owner_namespace = (owner.get("metadata") or {}).get("namespace")
    if not all_namespaces:
        allowed = namespaces or ([] if term.get("namespaceSelector") else [owner_namespace])
        if meta.get("namespace") not in allowed:
            return False
    try:
        selector = labels.selector_from_label_selector(term.get("labelSelector"))
    except labels.SelectorError:
        return False
    return selector.matches(meta.get("labels") or {})


def _same_domain(key: str, a: framework.NodeInfo, b: framework.NodeInfo | None) -> bool:
    return b is not None and key in a.labels and a.labels.get(key) == b.labels.get(key)


def _all_pods(nodes: Iterable[framework.NodeInfo]) -> list[tuple[Object, framework.NodeInfo]]:
    return [(pod, info) for info in nodes for pod in info.pods]


class InterPodAffinity:
    name = "InterPodAffinity"
    weight = 2

    def pre_filter(
        self, state: framework.CycleState, pod: Object, nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        # Only pods with required anti-affinity can keep this one out, and each
        # NodeInfo lists them; every placed pod matters only when this pod has
        # required terms of its own. With neither, Filter has nothing to check
        # (upstream's PreFilter returns Skip then too).
        state[_NODES_KEY] = nodes
        existing = [
            (other, info)
            for info in framework.nodes_with_anti_affinity(nodes)
            for other in info.pods_with_required_anti_affinity
        ]
        own = _terms(pod, "podAffinity", REQUIRED) or _terms(pod, "podAntiAffinity", REQUIRED)
        if not existing and not own:
            return framework.Status(framework.Code.SKIP)
        state[_ANTI_KEY] = existing
        if own:
            state[_PLACED_KEY] = _all_pods(nodes)
        return framework.SUCCESS

    def _placed(
        self, state: framework.CycleState, node: framework.NodeInfo
    ) -> list[tuple[Object, framework.NodeInfo]]:
        placed: list[tuple[Object, framework.NodeInfo]] | None = state.get(_PLACED_KEY)
        return placed if placed is not None else _all_pods(state.get(_NODES_KEY) or [node])

    def filter(
        self, state: framework.CycleState, pod: Object, node: framework.NodeInfo
    ) -> framework.Status:
        existing = state.get(_ANTI_KEY)
        if existing is None:
            existing = _all_pods([node])
        for other, where in existing:
            for term in _terms(other, "podAntiAffinity", REQUIRED):
                key = term.get("topologyKey") or ""
                if term_matches_pod(term, other, pod) and _same_domain(key, node, where):
                    return framework.unschedulable(EXISTING_ANTI_AFFINITY)
        affinity = _terms(pod, "podAffinity", REQUIRED)
        anti = _terms(pod, "podAntiAffinity", REQUIRED)
        if not affinity and not anti:
            return framework.SUCCESS
        placed = self._placed(state, node)
        if not self._affinity_satisfied(pod, node, placed):
            return framework.unschedulable(AFFINITY, unresolvable=True)
        for term in anti:
            key = term.get("topologyKey") or ""
            for other, where in placed:
                if term_matches_pod(term, pod, other) and _same_domain(key, node, where):
                    return framework.unschedulable(ANTI_AFFINITY)
        return framework.SUCCESS

    def _affinity_satisfied(
        self, pod: Object, node: framework.NodeInfo, placed: list[tuple[Object, Any]]
    ) -> bool:
        terms = _terms(pod, "podAffinity", REQUIRED)
        if not terms:
            return True
        if all(
            any(_same_domain(t.get("topologyKey") or "", node, where) for _, where in placed)
            and any(
                term_matches_pod(t, pod, p) and _same_domain(t.get("topologyKey") or "", node, w)
                for p, w in placed
            )
            for t in terms
        ):
            return True
        # The first pod of a group that selects itself may start anywhere.
        nobody = not any(term_matches_pod(t, pod, p) for t in terms for p, _ in placed)
        selects_itself = all(term_matches_pod(t, pod, pod) for t in terms)
        has_keys = all((t.get("topologyKey") or "") in node.labels for t in terms)
        return nobody and selects_itself and has_keys

    def pre_score(
        self, state: framework.CycleState, pod: Object, nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip scoring when the pod has no preferred terms (every node would score 0)."""
        if not _terms(pod, "podAffinity", PREFERRED) and not _terms(
            pod, "podAntiAffinity", PREFERRED
        ):
            return framework.Status(framework.Code.SKIP)
        if _PLACED_KEY not in state:
            state[_PLACED_KEY] = _all_pods(state.get(_NODES_KEY) or nodes)
        return framework.SUCCESS

    def score(self, state: framework.CycleState, pod: Object, node: framework.NodeInfo) -> int:
        placed = self._placed(state, node)
        total = 0
        for kind, sign in (("podAffinity", 1), ("podAntiAffinity", -1)):
            for weighted in _terms(pod, kind, PREFERRED):
                term = weighted.get("podAffinityTerm") or {}
                key = term.get("topologyKey") or ""
                for existing, where in placed:
                    if term_matches_pod(term, pod, existing) and _same_domain(key, node, where):
                        total += sign * (weighted.get("weight") or 0)
        return total

    def normalize(self, state: framework.CycleState, pod: Object, scores: dict[str, int]) -> None:
        if not scores:
            return
        low, high = min(scores.values()), max(scores.values())
        for name, value in scores.items():
            scores[name] = (
                framework.MAX_NODE_SCORE * (value - low) // (high - low) if high > low else 0
            )
