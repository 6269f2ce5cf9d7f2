"""The scheduling framework: plugin protocols, node snapshots, statuses and the fit error.

Mirrors upstream's pkg/scheduler/framework (interface.go, types.go) at the
size kajitori needs. A scheduling cycle sees the cluster as a snapshot of
``NodeInfo`` values (a node plus the pods assigned to it, with their summed
requests and host ports), so every plugin is a pure function of
(pod, snapshot): no I/O, trivially table-tested. Extension points, in order:

* ``PreFilter`` — once per pod; may compute state into the ``CycleState``
  or reject the pod outright (then no node is tried);
* ``Filter`` — per node; a ``Status`` that is not success carries reasons
  that end up counted in the FailedScheduling message;
* ``Score`` — per feasible node, 0..100 after ``normalize``; weighted sum;
* ``Bind`` — writes the decision (``default_binder``).

``FitError.message`` renders upstream's diagnosis: ``0/3 nodes are available:
1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu.`` — reasons are
counted across nodes and the ``"<count> <reason>"`` strings sorted as text.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kajitori.machinery import quantity

Object = dict[str, Any]
CycleState = dict[str, Any]

MAX_NODE_SCORE = 100
DEFAULT_SCHEDULER_NAME = "default-scheduler"
# Upstream's DefaultMilliCPURequest / DefaultMemoryRequest: what a container
# without requests counts as when scoring (never when filtering).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    # Preemption cannot help on this node (a taint, a selector, a name).
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    SKIP = 4


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    """A plugin's verdict; ``reasons`` are the user-facing strings counted per node."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code in (Code.SUCCESS, Code.SKIP)

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


SUCCESS = Status()


def unschedulable(*reasons: str, unresolvable: bool = False) -> Status:
    code = Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE
    return Status(code, reasons)


# --- quantities -----------------------------------------------------------------


# Parsed amounts by (is cpu, quantity text): a cluster's pods and nodes repeat a
# handful of quantities ("100m", "128Mi"), and the scheduler sums every pod's
# requests when it is placed, assumed and re-read. Bounded: cleared when full.
_AMOUNTS: dict[tuple[bool, str], int] = {}
_AMOUNTS_MAX = 4096


def amount(name: str, value: Any) -> int:
    """A resource amount as an int: milli-units for cpu, whole units otherwise."""
    cpu = name == "cpu"
    if isinstance(value, str):
        key = (cpu, value)
        known = _AMOUNTS.get(key)
        if known is not None:
            return known
    parsed = quantity.parse_quantity(value)
    result: int = parsed.milli_value() if cpu else parsed.value()
    if isinstance(value, str):
        if len(_AMOUNTS) >= _AMOUNTS_MAX:
            _AMOUNTS.clear()
        _AMOUNTS[key] = result
    return result


def resource_list(values: Mapping[str, Any] | None) -> dict[str, int]:
    return {name: amount(name, value) for name, value in (values or {}).items()}


def pod_requests(pod: Object, *, non_zero: bool = False) -> dict[str, int]:
    """Upstream's PodRequests: sum of containers, max with each init container, plus overhead.

    Sidecars (init containers with ``restartPolicy: Always``) run alongside
    the app containers, so they add to the sum. ``non_zero`` counts cpu and
    memory left unset as upstream's scoring defaults.
    """
    spec = pod.get("spec") or {}
    resized = resize_view(pod)
    total: dict[str, int] = {}
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for container in spec.get("initContainers") or ():
        requests = _container_requests(container, non_zero=non_zero, resized=resized)
        if container.get("restartPolicy") == "Always":
            _add(sidecars, requests)
            _add(total, requests)
            continue
        # A regular init container runs with the sidecars started before it.
        _max(init_max, {k: v + sidecars.get(k, 0) for k, v in requests.items()})
    for container in spec.get("containers") or ():
        _add(total, _container_requests(container, non_zero=non_zero, resized=resized))
    _max(total, init_max)
    _add(total, resource_list(spec.get("overhead")))
    return total


ResizeView = tuple[dict[str, tuple[Any, Any]], bool]


def resize_view(pod: Object) -> ResizeView | None:
    """What an in-place resize makes count besides the spec (upstream's UseStatusResources).

    Per container status that reports ``resources``: its actual requests and
    its ``allocatedResources``; and whether the resize is Infeasible (then
    the spec's requests, which the node refused, do not count). ``None``
    while the pod's spec never changed (generation 1): the kubelet then
    runs and reports exactly the spec, and this costs nothing per pod.
    """
    if ((pod.get("metadata") or {}).get("generation") or 0) <= 1:
        return None
    status = pod.get("status") or {}
    views: dict[str, tuple[Any, Any]] = {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for entry in status.get(key) or ():
            if entry.get("resources") is not None:
                actual = (entry.get("resources") or {}).get("requests")
                views[entry.get("name") or ""] = (actual, entry.get("allocatedResources"))
    if not views:
        return None
    infeasible = any(
        c.get("type") == "PodResizePending" and c.get("reason") == "Infeasible"
        for c in status.get("conditions") or ()
    )
    return views, infeasible


def _container_requests(
    container: Object, *, non_zero: bool, resized: ResizeView | None = None
) -> dict[str, int]:
    requests = resource_list((container.get("resources") or {}).get("requests"))
    view = None if resized is None else resized[0].get(container.get("name") or "")
    if view is not None and resized is not None:
        # determineContainerReqs: the most of the spec (unless Infeasible), actual, allocated.
        if resized[1]:
            requests = {}
        _max(requests, resource_list(view[0]))
        _max(requests, resource_list(view[1]))
    if non_zero:
        requests.setdefault("cpu", DEFAULT_MILLI_CPU_REQUEST)
        requests.setdefault("memory", DEFAULT_MEMORY_REQUEST)
    return requests


def _add(into: dict[str, int], values: Mapping[str, int]) -> None:
    for name, value in values.items():
        into[name] = into.get(name, 0) + value


def _max(into: dict[str, int], values: Mapping[str, int]) -> None:
    for name, value in values.items():
        into[name] = max(into.get(name, 0), value)


# --- snapshot -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HostPort:
    ip: str
    protocol: str
    port: int

    def conflicts(self, other: HostPort) -> bool:
        if self.port != other.port or self.protocol != other.protocol:
            return False
        wildcard = ("", "0.0.0.0")
        return self.ip in wildcard or other.ip in wildcard or self.ip == other.ip


def host_ports(pod: Object) -> list[HostPort]:
    ports = []
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("hostPort"):
                ip = port.get("hostIP") or "0.0.0.0"
                ports.append(HostPort(ip, port.get("protocol") or "TCP", port["hostPort"]))
    return ports


@dataclasses.dataclass(slots=True)
class NodeInfo:
    """A node and the pods assigned to it, with their summed requests and host ports."""

    node: Object
    pods: list[Object] = dataclasses.field(default_factory=list)
    requested: dict[str, int] = dataclasses.field(default_factory=dict)
    non_zero_requested: dict[str, int] = dataclasses.field(default_factory=dict)
    used_ports: list[HostPort] = dataclasses.field(default_factory=list)
    # Pods with required pod anti-affinity: InterPodAffinity must look at
    # these for every incoming pod, and only at these (upstream keeps the same list).
    pods_with_required_anti_affinity: list[Object] = dataclasses.field(default_factory=list)
    # The node's allocatable, parsed once: filters and scorers read it per cycle.
    _allocatable: dict[str, int] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )
    # Read for every node of every cycle (scores are keyed by it): kept, not looked up.
    name: str = dataclasses.field(default="", init=False, compare=False)
    # From the node's spec, read once (a changed node gets a fresh NodeInfo): PreFilter
    # scans them over every node to skip the per-node Filters when none is cordoned or
    # tainted, the usual case in a large cluster.
    unschedulable: bool = dataclasses.field(default=False, init=False, compare=False)
    taints: tuple[Mapping[str, Any], ...] = dataclasses.field(default=(), init=False, compare=False)
    # Read for hundreds of nodes per pod by NodeResourcesFit's Filter and the two
    # resource scores, so kept as plain ints, recomputed (``_refresh``) whenever
    # a pod is added or removed: room left for cpu, memory and pods, allocatable
    # cpu and memory, and the non-zero (scoring) requests of the node's pods.
    free_cpu: int = dataclasses.field(default=0, init=False, compare=False)
    free_memory: int = dataclasses.field(default=0, init=False, compare=False)
    free_pods: int = dataclasses.field(default=0, init=False, compare=False)
    allocatable_cpu: int = dataclasses.field(default=0, init=False, compare=False)
    allocatable_memory: int = dataclasses.field(default=0, init=False, compare=False)
    non_zero_cpu: int = dataclasses.field(default=0, init=False, compare=False)
    non_zero_memory: int = dataclasses.field(default=0, init=False, compare=False)
    # Scores of this node as it is now, by scorer (or weighted set of scorers) and
    # pod requests, as text: pods of one ReplicaSet ask for the same, and between
    # two of them most nodes did not change, so a rollout computes each node's
    # score once per change, not per pod. Cleared by ``_refresh``.
    score_memo: dict[str, int] = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    # The snapshot (``NodeList``) listing this node last, and where: the
    # answers it remembers by position are told when this node's pods change.
    snapshot: NodeList | None = dataclasses.field(
        default=None, init=False, compare=False, repr=False
    )
    position: int = dataclasses.field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.node["metadata"]["name"]
        spec = self.node.get("spec") or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints = tuple(spec.get("taints") or ())
        self._refresh()

    def _refresh(self) -> None:
        allocatable, requested, non_zero = self.allocatable, self.requested, self.non_zero_requested
        self.allocatable_cpu = allocatable.get("cpu", 0)
        self.allocatable_memory = allocatable.get("memory", 0)
        self.free_cpu = self.allocatable_cpu - requested.get("cpu", 0)
        self.free_memory = self.allocatable_memory - requested.get("memory", 0)
        self.free_pods = allocatable.get("pods", 0) - len(self.pods)
        self.non_zero_cpu = non_zero.get("cpu", 0)
        self.non_zero_memory = non_zero.get("memory", 0)
        self.score_memo.clear()
        if self.snapshot is not None:
            self.snapshot.forget(self.position)

    @property
    def labels(self) -> Mapping[str, str]:
        labels: Mapping[str, str] = self.node["metadata"].get("labels") or {}
        return labels

    @property
    def allocatable(self) -> dict[str, int]:
        if self._allocatable is None:
            self._allocatable = resource_list((self.node.get("status") or {}).get("allocatable"))
        return self._allocatable

    def add_pod(self, pod: Object) -> None:
        self.pods.append(pod)
        self._count(pod, 1)
        self._refresh()

    def _count(self, pod: Object, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) ``pod``'s requests, host ports and anti-affinity."""
        requested, non_zero = pod_requests(pod), pod_requests(pod, non_zero=True)
        if sign < 0:
            requested = {k: -v for k, v in requested.items()}
            non_zero = {k: -v for k, v in non_zero.items()}
        _add(self.requested, requested)
        _add(self.non_zero_requested, non_zero)
        if sign > 0:
            self.used_ports.extend(host_ports(pod))
            if has_required_anti_affinity(pod):
                self.pods_with_required_anti_affinity.append(pod)
            return
        for port in host_ports(pod):
            self.used_ports.remove(port)

    def remove_pod(self, pod: Object) -> None:
        """Take back what ``add_pod(pod)`` added (``pod`` is the object that was added)."""
        self.pods = [p for p in self.pods if p is not pod]
        self.pods_with_required_anti_affinity = [
            p for p in self.pods_with_required_anti_affinity if p is not pod
        ]
        self._count(pod, -1)
        self._refresh()

    def replace_pod(self, old: Object, new: Object) -> bool:
        """Put ``new`` where ``old`` was added when their specs are equal (no re-summing).

        False, changing nothing, when the specs differ: the caller then
        removes ``old`` and adds ``new``. Pod updates are mostly status
        writes, and re-parsing every request quantity for each was a large
        part of the scheduler's event handling.
        """
        if old.get("spec") != new.get("spec") or resize_view(old) != resize_view(new):
            return False
        for index, pod in enumerate(self.pods):
            if pod is old:
                self.pods[index] = new
                break
        else:
            return False
        anti = self.pods_with_required_anti_affinity
        for index, pod in enumerate(anti):
            if pod is old:
                anti[index] = new
        return True

    def without(self, removed: Iterable[Object]) -> NodeInfo:
        """A copy without ``removed`` pods (by uid), as preemption's what-if needs."""
        gone = {p["metadata"].get("uid") for p in removed}
        copy = NodeInfo(self.node)
        for pod in self.pods:
            if pod["metadata"].get("uid") not in gone:
                copy.add_pod(pod)
        return copy


class NodeList(list[NodeInfo]):
    """The cache's snapshot: the NodeInfos, plus what PreFilters would otherwise scan for.

    Whether any node is cordoned and which taint effects occur are fixed for
    one list (a changed node makes a new one); the nodes holding pods with
    required anti-affinity are a live mapping the cache keeps current as pods
    come and go. Plain lists (tests, preemption's what-ifs) are scanned instead.
    """

    def __init__(
        self, infos: Iterable[NodeInfo], with_anti_affinity: Mapping[str, NodeInfo]
    ) -> None:
        super().__init__(infos)
        self.cordoned = any(info.unschedulable for info in self)
        self.taint_effects = frozenset(
            taint.get("effect") for info in self for taint in info.taints
        )
        self.with_anti_affinity = with_anti_affinity
        # Answers by key (weighted score totals as ``NodeInfo.score_memo``, whether a
        # pod has room), one slot per position: a cycle slices out those of the run
        # of nodes it looks at instead of reading each node (hundreds of nodes per
        # pod, each node's objects a cache miss on a shared core, decision 0077).
        self.retired = False
        self._totals: dict[str, WindowTotals] = {}
        for position, info in enumerate(self):
            if info.snapshot is not None and info.snapshot is not self:
                info.snapshot.retire()  # its nodes now tell this list of their changes
            info.snapshot, info.position = self, position

    def retire(self) -> None:
        """A newer snapshot lists these nodes: their changes no longer reach this one."""
        self.retired = True
        self._totals.clear()

    def replace(self, position: int, info: NodeInfo) -> None:
        """``info`` (the same node, neither cordoned nor tainted otherwise) takes ``position``."""
        self[position] = info
        info.snapshot, info.position = self, position
        self.forget(position)

    def forget(self, position: int) -> None:
        """The node at ``position`` changed: its remembered answers are stale."""
        for totals in self._totals.values():
            totals.stale.add(position)

    def totals(self, key: str) -> WindowTotals:
        """The answers remembered for ``key`` (all stale when new)."""
        totals = self._totals.get(key)
        if totals is None:
            if len(self._totals) >= MAX_WINDOW_KEYS:
                self._totals.clear()
            totals = self._totals[key] = WindowTotals([0] * len(self), set(range(len(self))))
        return totals

    def window(
        self, key: str, start: int, count: int, compute: Callable[[list[NodeInfo]], Sequence[int]]
    ) -> list[int]:
        """``compute``'s answers for the ``count`` nodes from position ``start`` (wrapping).

        Remembered by position under ``key`` (what else the answer depends on):
        only the nodes that changed since are computed, a few per cycle.
        """
        remembered, size = self.totals(key), len(self)
        stale = remembered.stale
        if stale:
            offsets = [o for o in ((p - start) % size for p in stale) if o < count]
            if offsets:
                positions = [(start + offset) % size for offset in offsets]
                computed = compute([self[position] for position in positions])
                values = remembered.values
                for position, value in zip(positions, computed, strict=True):
                    values[position] = value
                stale.difference_update(positions)
        values, end = remembered.values, start + count
        return values[start:end] if end <= size else values[start:] + values[: end - size]


# Distinct keys (pod requests x scorers) remembered per snapshot: a rollout asks a
# few; past this many they are all dropped (8 KiB each per 1,000 nodes).
MAX_WINDOW_KEYS = 32


@dataclasses.dataclass(slots=True)
class WindowTotals:
    """One key's answers by snapshot position, and the positions not yet (re)computed."""

    values: list[int]
    stale: set[int]


def any_cordoned(nodes: list[NodeInfo]) -> bool:
    """Whether some node is ``spec.unschedulable``."""
    if isinstance(nodes, NodeList):
        return nodes.cordoned
    return any(info.unschedulable for info in nodes)


def has_taint_effect(nodes: list[NodeInfo], effects: Iterable[str]) -> bool:
    """Whether some node has a taint with one of ``effects``."""
    wanted = set(effects)
    if isinstance(nodes, NodeList):
        return not wanted.isdisjoint(nodes.taint_effects)
    return any(taint.get("effect") in wanted for info in nodes for taint in info.taints)


def nodes_with_anti_affinity(nodes: list[NodeInfo]) -> Iterable[NodeInfo]:
    """The nodes (of ``nodes``) holding pods with required pod anti-affinity."""
    if isinstance(nodes, NodeList):
        return nodes.with_anti_affinity.values()
    return [info for info in nodes if info.pods_with_required_anti_affinity]


def has_required_anti_affinity(pod: Object) -> bool:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    anti = affinity.get("podAntiAffinity") or {}
    return bool(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))


def counts_on_node(pod: Object) -> bool:
    """Whether an assigned pod takes room on its node (terminal pods do not)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def snapshot(nodes: Iterable[Object], pods: Iterable[Object]) -> list[NodeInfo]:
    """NodeInfos for ``nodes`` with every assigned, non-terminal pod of ``pods``."""
    infos = {n["metadata"]["name"]: NodeInfo(n) for n in nodes}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node_name in infos and phase not in ("Succeeded", "Failed"):
            infos[node_name].add_pod(pod)
    return sorted(infos.values(), key=lambda info: info.name)


# --- plugins --------------------------------------------------------------------


class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(self, state: CycleState, pod: Object, nodes: list[NodeInfo]) -> Status:
        """Once per cycle before any Filter; may store data in ``state`` for later points."""


class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: Object, node: NodeInfo) -> Status:
        """Whether ``pod`` fits ``node``; must not mutate either."""


class ScorePlugin(Protocol):
    name: str
    weight: int

    def score(self, state: CycleState, pod: Object, node: NodeInfo) -> int:
        """A raw score for a feasible node; ``normalize`` maps all of them to 0..100."""

    def normalize(self, state: CycleState, pod: Object, scores: dict[str, int]) -> None:
        """Rescale ``scores`` (node name -> raw score) in place; may do nothing."""


def default_normalize(scores: dict[str, int], *, reverse: bool = False) -> None:
    """Upstream's DefaultNormalizeScore: scale to 0..100 by the maximum (reversed if asked)."""
    highest = max(scores.values(), default=0)
    if highest == 0:
        if reverse:
            for name in scores:
                scores[name] = MAX_NODE_SCORE
        return
    for name, value in scores.items():
        scaled = MAX_NODE_SCORE * value // highest
        scores[name] = MAX_NODE_SCORE - scaled if reverse else scaled


# --- diagnosis ------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Diagnosis:
    """Why no node fits: each node's rejecting status, or one PreFilter message for all."""

    node_statuses: dict[str, Status] = dataclasses.field(default_factory=dict)
    pre_filter_message: str = ""
    post_filter_message: str = ""


class PluginError(Exception):
    """A plugin failed (``Code.ERROR``): the cycle is aborted with upstream's wrapping,
    ``running PreFilter plugin "X": ...`` or ``running "X" filter plugin: ...``."""


@dataclasses.dataclass(slots=True)
class FitError(Exception):
    """No node fits the pod; ``message`` is upstream's FitError text."""

    num_nodes: int
    diagnosis: Diagnosis

    @property
    def message(self) -> str:
        text = f"0/{self.num_nodes} nodes are available:"
        if self.diagnosis.pre_filter_message:
            text += _sentence(self.diagnosis.pre_filter_message)
        else:
            histogram = reason_histogram(self.diagnosis.node_statuses.values())
            if histogram:
                text += _sentence(histogram)
        if self.diagnosis.post_filter_message:
            text += _sentence(self.diagnosis.post_filter_message)
        return text

    def __str__(self) -> str:
        return self.message


def _sentence(message: str) -> str:
    # Messages that already end a sentence (preemption's own diagnosis) get
    # no second period, as upstream's events show.
    return f" {message.removesuffix('.')}."


def reason_histogram(statuses: Iterable[Status]) -> str:
    """``"<count> <reason>"`` for each distinct reason, sorted as strings, comma-joined."""
    counts: dict[str, int] = {}
    for status in statuses:
        for reason in status.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))
