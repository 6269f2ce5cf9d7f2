"""NodeResourcesFit and NodeResourcesBalancedAllocation.

Upstream's plugins/noderesources. Filter: the pod's requests (containers
summed, init containers as a maximum, plus overhead; ``framework.pod_requests``)
must fit the node's allocatable minus what assigned pods request, for cpu,
memory, ephemeral-storage and every extended resource the pod asks for,
and one more pod must fit ``allocatable.pods``. Each shortfall is its own
reason: ``Insufficient cpu``, ``Too many pods``.

Scores (non-zero requests, so pods without requests still spread):
``LeastAllocated`` (default) favours the emptiest node, averaging
``(allocatable - requested) * 100 / allocatable`` over cpu and memory;
``BalancedAllocation`` favours nodes whose cpu and memory fractions stay
close: ``(1 - std) * 100``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kajitori.scheduler import framework

SCORED_RESOURCES = ("cpu", "memory")
_STATE_KEY = "NodeResourcesFit.requests"
_NON_ZERO_KEY = "NodeResourcesFit.nonZeroRequests"
_WANTED_KEY = "NodeResourcesFit.nonZeroItems"


def non_zero_requests(state: framework.CycleState, pod: dict[str, Any]) -> dict[str, int]:
    """The pod's scoring requests, computed once per cycle (both scorers read them per node)."""
    requests: dict[str, int] | None = state.get(_NON_ZERO_KEY)
    if requests is None:
        requests = state[_NON_ZERO_KEY] = framework.pod_requests(pod, non_zero=True)
    return requests


def insufficient(requests: dict[str, int], node: framework.NodeInfo) -> list[str]:
    """The reasons ``requests`` (one more pod) do not fit ``node``, in upstream's order."""
    allocatable = node.allocatable
    reasons = []
    if len(node.pods) + 1 > allocatable.get("pods", 0):
        reasons.append("Too many pods")
    for name in ("cpu", "memory", "ephemeral-storage"):
        wanted = requests.get(name, 0)
        if wanted and wanted > allocatable.get(name, 0) - node.requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
    for name, wanted in sorted(requests.items()):
        if name in ("cpu", "memory", "ephemeral-storage", "pods") or not wanted:
            continue
        if wanted > allocatable.get(name, 0) - node.requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def _fits(requests: dict[str, int], node: framework.NodeInfo) -> bool:
    """Whether ``insufficient`` would find nothing (it may still, when this says False)."""
    allocatable, requested = node.allocatable, node.requested
    if len(node.pods) + 1 > allocatable.get("pods", 0):
        return False
    for name, wanted in requests.items():
        if wanted and wanted > allocatable.get(name, 0) - requested.get(name, 0):
            return False
    return True


def least_allocated(node: framework.NodeInfo, cpu: int, memory: int) -> int:
    """LeastAllocated of ``node`` for a pod asking (non-zero) ``cpu`` and ``memory``."""
    top = framework.MAX_NODE_SCORE
    total = 0
    capacity, used = node.allocatable_cpu, node.non_zero_cpu + cpu
    if capacity and used <= capacity:
        total += (capacity - used) * top // capacity
    capacity, used = node.allocatable_memory, node.non_zero_memory + memory
    if capacity and used <= capacity:
        total += (capacity - used) * top // capacity
    return total // len(SCORED_RESOURCES)


def score_key(state: framework.CycleState, pod: dict[str, Any]) -> str:
    """What both resource scores of a node depend on besides the node: the pod's
    non-zero cpu and memory requests (``framework.NodeInfo.score_memo``)."""
    requests = non_zero_requests(state, pod)
    return f"{requests.get('cpu', 0)}:{requests.get('memory', 0)}"


def memoized_scores(
    plugin: str,
    nodes: list[framework.NodeInfo],
    cpu: int,
    memory: int,
    compute: Callable[[framework.NodeInfo], int],
) -> list[int]:
    """Each node's score for a pod asking ``cpu`` and ``memory``, computed once per node.

    The memo lives on the ``NodeInfo`` and is cleared when its pods change.
    """
    # Text, not a tuple: a str caches its hash, and this key is looked up per node.
    key = f"{plugin}:{cpu}:{memory}"
    scores = [node.score_memo.get(key) for node in nodes]
    if None in scores:
        for index, node in enumerate(nodes):
            if scores[index] is None:
                scores[index] = node.score_memo[key] = compute(node)
    return scores  # type: ignore[return-value]  # no None left


def _cpu_and_memory(state: framework.CycleState) -> tuple[int, int] | None:
    """The pod's cpu and memory requests (0: not asked); None if it asks for more or PreFilter
    did not run (ephemeral storage, extended resources: ``filter`` per node)."""
    wanted = state.get(_WANTED_KEY)
    if wanted is None:
        return None
    cpu = memory = 0
    for name, amount in wanted:
        if name == "cpu":
            cpu = amount
        elif name == "memory":
            memory = amount
        else:
            return None
    return cpu, memory


def _room_for(cpu: int, memory: int, nodes: list[framework.NodeInfo]) -> list[bool]:
    """Whether each node has room for one more pod asking ``cpu`` and ``memory``.

    A resource the pod does not ask for is not checked (a node may be over-committed).
    """
    if cpu and memory:
        return [n.free_pods > 0 and n.free_cpu >= cpu and n.free_memory >= memory for n in nodes]
    if cpu:
        return [n.free_pods > 0 and n.free_cpu >= cpu for n in nodes]
    if memory:
        return [n.free_pods > 0 and n.free_memory >= memory for n in nodes]
    return [n.free_pods > 0 for n in nodes]


class NodeResourcesFit:
    name = "NodeResourcesFit"
    weight = 1
    normalizes = False  # scores are already 0..100: ``normalize`` does nothing
    score_key = staticmethod(score_key)

    def pre_filter(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        requests = state[_STATE_KEY] = framework.pod_requests(pod)
        state[_WANTED_KEY] = tuple((name, wanted) for name, wanted in requests.items() if wanted)
        return framework.SUCCESS

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        wanted = state.get(_WANTED_KEY)
        if wanted is not None:
            # The common case inline (this runs for hundreds of nodes per pod).
            allocatable, requested = node.allocatable, node.requested
            if len(node.pods) < allocatable.get("pods", 0):
                for name, amount in wanted:
                    if amount > allocatable.get(name, 0) - requested.get(name, 0):
                        break
                else:
                    return framework.SUCCESS
        requests = state.get(_STATE_KEY)
        if requests is None:
            requests = framework.pod_requests(pod)
        if _fits(requests, node):
            return framework.SUCCESS  # the common case, without building reasons
        reasons = insufficient(requests, node)
        return framework.unschedulable(*reasons) if reasons else framework.SUCCESS

    def filter_many(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> list[bool] | None:
        """Whether each node passes ``filter``, in order; None when the pod asks for more.

        The pod asking for cpu and memory only (the usual case) is checked
        against each node's precomputed room in one comprehension: Filter runs
        for hundreds of nodes per pod, and a call per node cost more than the check.
        """
        asked = _cpu_and_memory(state)
        return None if asked is None else _room_for(*asked, nodes)

    def filter_window(
        self,
        state: framework.CycleState,
        pod: dict[str, Any],
        nodes: framework.NodeList,
        start: int,
        count: int,
    ) -> list[bool] | None:
        """``filter_many`` of the ``count`` snapshot nodes from ``start`` (wrapping), remembered
        by position until a node's pods change: most nodes did not since the last pod."""
        asked = _cpu_and_memory(state)
        if asked is None:
            return None
        key = f"{self.name}.fits:{asked[0]}:{asked[1]}"
        fits: list[Any] = nodes.window(key, start, count, lambda infos: _room_for(*asked, infos))
        return fits  # ``_room_for``'s bools

    def score(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> int:
        """LeastAllocated."""
        requests = non_zero_requests(state, pod)
        allocatable = node.allocatable
        total = 0
        for name in SCORED_RESOURCES:
            capacity = allocatable.get(name, 0)
            used = node.non_zero_requested.get(name, 0) + requests.get(name, 0)
            if capacity and used <= capacity:
                total += (capacity - used) * framework.MAX_NODE_SCORE // capacity
        return total // len(SCORED_RESOURCES)

    def score_many(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> list[int]:
        """``score`` of each node, in order, from each node's precomputed sums (and memo)."""
        requests = non_zero_requests(state, pod)
        cpu, memory = requests.get("cpu", 0), requests.get("memory", 0)
        return memoized_scores(
            self.name, nodes, cpu, memory, lambda node: least_allocated(node, cpu, memory)
        )

    def normalize(
        self, state: framework.CycleState, pod: dict[str, Any], scores: dict[str, int]
    ) -> None:
        return None


class BalancedAllocation:
    name = "NodeResourcesBalancedAllocation"
    weight = 1
    normalizes = False  # scores are already 0..100: ``normalize`` does nothing
    score_key = staticmethod(score_key)

    def score(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> int:
        requests = non_zero_requests(state, pod)
        allocatable = node.allocatable
        fractions = []
        for name in SCORED_RESOURCES:
            capacity = allocatable.get(name, 0)
            if capacity:
                used = node.non_zero_requested.get(name, 0) + requests.get(name, 0)
                fractions.append(min(used / capacity, 1.0))
        if len(fractions) < 2:
            return framework.MAX_NODE_SCORE
        if len(fractions) == 2:
            std = abs(fractions[0] - fractions[1]) / 2  # as upstream, for exactly two
        else:
            mean = sum(fractions) / len(fractions)
            std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
        return int((1 - std) * framework.MAX_NODE_SCORE)

    def score_many(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> list[int]:
        """``score`` of each node, in order, from each node's precomputed sums (and memo)."""
        requests = non_zero_requests(state, pod)
        cpu, memory = requests.get("cpu", 0), requests.get("memory", 0)
        return memoized_scores(
            self.name,
            nodes,
            cpu,
            memory,
            lambda node: self._balanced(state, pod, node, cpu, memory),
        )

    def _balanced(
        self,
        state: framework.CycleState,
        pod: dict[str, Any],
        node: framework.NodeInfo,
        cpu: int,
        memory: int,
    ) -> int:
        cpu_capacity, memory_capacity = node.allocatable_cpu, node.allocatable_memory
        if not cpu_capacity or not memory_capacity:
            return self.score(state, pod, node)
        cpu_fraction = min((node.non_zero_cpu + cpu) / cpu_capacity, 1.0)
        memory_fraction = min((node.non_zero_memory + memory) / memory_capacity, 1.0)
        # Two fractions: the standard deviation is half their distance (as upstream).
        std = abs(cpu_fraction - memory_fraction) / 2
        return int((1 - std) * framework.MAX_NODE_SCORE)

    def normalize(
        self, state: framework.CycleState, pod: dict[str, Any], scores: dict[str, int]
    ) -> None:
        return None
