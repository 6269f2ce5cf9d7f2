"""The last two points of every node and container, and the usage they give.

Mirrors metrics-server's pkg/storage and pkg/scraper/client/resource/decode.go:

* ``decode`` turns one kubelet's ``/metrics/resource`` samples into a batch:
  a node point (CPU counter and working set, stamped with the CPU sample's
  time) and, per pod, container points that also carry the container's start
  time. A point missing its CPU or memory, or whose CPU or memory is zero, is
  dropped, as metrics-server drops incomplete points.
* ``Storage.store`` replaces the stored batch: a point newer than the stored
  last one pushes it to ``prev``; a container that restarted (a start time
  after the stored point) starts over. A container younger than the metric
  resolution (but at least 10 s old) gets a synthetic previous point at its
  start with zero CPU, so a fresh pod has usage after one scrape.
* Usage is the CPU counter's growth over the window between the two points,
  in nanocores, and the last point's working set; a pod has usage only when
  every container has two points, with the earliest container's time.
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Iterable

from kajitori.machinery import quantity
from kajitori.metrics_server import prometheus

# metrics-server's freshContainerMinMetricsResolution.
FRESH_CONTAINER_MIN_RESOLUTION = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    """CPU core-nanoseconds used since ``start_time`` at ``timestamp``; working-set bytes."""

    start_time: float
    timestamp: float
    cpu_ns: int
    memory: int


@dataclasses.dataclass(slots=True)
class Batch:
    nodes: dict[str, Point] = dataclasses.field(default_factory=dict)
    # (namespace, pod) → container → point
    pods: dict[tuple[str, str], dict[str, Point]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """What a node or container used over ``window`` seconds ending at ``timestamp``."""

    timestamp: float
    window: float
    cpu_nanocores: int
    memory: int

    def resources(self) -> dict[str, str]:
        """metrics-server's ResourceList: CPU in nanocores (DecimalSI), memory BinarySI."""
        cpu = quantity.Quantity(
            decimal.Decimal(self.cpu_nanocores).scaleb(-9), quantity.Format.DECIMAL_SI
        )
        memory = quantity.Quantity(self.memory, quantity.Format.BINARY_SI)
        return {"cpu": cpu.canonical(), "memory": memory.canonical()}


@dataclasses.dataclass(slots=True)
class _Partial:
    start_time: float = 0.0
    timestamp: float | None = None
    cpu_ns: int | None = None
    memory: int | None = None

    def point(self) -> Point | None:
        if self.timestamp is None or not self.cpu_ns or not self.memory:
            return None
        return Point(self.start_time, self.timestamp, self.cpu_ns, self.memory)


def decode(node: str, samples: Iterable[prometheus.Sample], *, now: float) -> Batch:
    """One kubelet's samples as a batch (``now`` stands in for a missing timestamp)."""
    node_part = _Partial()
    containers: dict[tuple[str, str, str], _Partial] = {}

    def stamp(sample: prometheus.Sample) -> float:
        return now if sample.timestamp_ms is None else sample.timestamp_ms / 1000

    for sample in samples:
        name, labels = sample.name, sample.labels
        if name == "node_cpu_usage_seconds_total":
            node_part.cpu_ns, node_part.timestamp = int(sample.value * 1e9), stamp(sample)
        elif name == "node_memory_working_set_bytes":
            node_part.memory = int(sample.value)
        elif name.startswith("container_"):
            key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
            part = containers.setdefault(key, _Partial())
            if name == "container_cpu_usage_seconds_total":
                part.cpu_ns, part.timestamp = int(sample.value * 1e9), stamp(sample)
            elif name == "container_memory_working_set_bytes":
                part.memory = int(sample.value)
            elif name == "container_start_time_seconds":
                part.start_time = sample.value
    batch = Batch()
    if (point := node_part.point()) is not None:
        batch.nodes[node] = point
    for (namespace, pod, container), part in containers.items():
        if (point := part.point()) is not None:
            batch.pods.setdefault((namespace, pod), {})[container] = point
    return batch


def usage(last: Point, prev: Point) -> Usage | None:
    """metrics-server's resourceUsage (None where it reports an error and skips the point)."""
    if last.start_time < prev.start_time or last.cpu_ns < prev.cpu_ns:
        return None
    # Kubelet timestamps are whole milliseconds: so is the window.
    window = round(last.timestamp - prev.timestamp, 3)
    if window <= 0:
        return None
    return Usage(last.timestamp, window, int((last.cpu_ns - prev.cpu_ns) / window), last.memory)


class Storage:
    """The last two batches' points (metrics-server's nodeStorage and podStorage)."""

    def __init__(self, metric_resolution: float) -> None:
        self.metric_resolution = metric_resolution
        self.last_nodes: dict[str, Point] = {}
        self.prev_nodes: dict[str, Point] = {}
        self.last_pods: dict[tuple[str, str], dict[str, Point]] = {}
        self.prev_pods: dict[tuple[str, str], dict[str, Point]] = {}

    @property
    def ready(self) -> bool:
        """Whether any usage can be reported (metrics-server's readiness)."""
        return bool(self.prev_nodes) or bool(self.prev_pods)

    def store(self, batch: Batch) -> None:
        prev_nodes: dict[str, Point] = {}
        for name, point in batch.nodes.items():
            kept = _previous(point, self.last_nodes.get(name), self.prev_nodes.get(name))
            if kept is not None:
                prev_nodes[name] = kept
        prev_pods: dict[tuple[str, str], dict[str, Point]] = {}
        for key, containers in batch.pods.items():
            found: dict[str, Point] = {}
            last, prev = self.last_pods.get(key, {}), self.prev_pods.get(key, {})
            for name, point in containers.items():
                kept = self._container_previous(point, last.get(name), prev.get(name))
                if kept is not None:
                    found[name] = kept
            if found:
                prev_pods[key] = found
        self.last_nodes, self.prev_nodes = dict(batch.nodes), prev_nodes
        self.last_pods, self.prev_pods = dict(batch.pods), prev_pods

    def _container_previous(
        self, point: Point, last: Point | None, prev: Point | None
    ) -> Point | None:
        age = point.timestamp - point.start_time
        if point.start_time < point.timestamp and FRESH_CONTAINER_MIN_RESOLUTION <= age < (
            self.metric_resolution
        ):
            # A young container: its counter started at zero when it did.
            return dataclasses.replace(point, timestamp=point.start_time, cpu_ns=0)
        if last is None or not point.start_time < last.timestamp:
            return None  # new, or restarted since the stored point
        return _previous(point, last, prev)

    def node_usage(self, name: str) -> Usage | None:
        last, prev = self.last_nodes.get(name), self.prev_nodes.get(name)
        if last is None or prev is None:
            return None
        return usage(last, prev)

    def pod_usage(self, namespace: str, name: str) -> tuple[Usage, dict[str, Usage]] | None:
        """The pod's earliest container time and each container's usage; None if incomplete."""
        last, prev = self.last_pods.get((namespace, name)), self.prev_pods.get((namespace, name))
        if last is None or prev is None:
            return None
        found: dict[str, Usage] = {}
        for container, point in last.items():
            before = prev.get(container)
            if before is None:
                return None
            got = usage(point, before)
            if got is not None:
                found[container] = got
        if not found:
            return None
        earliest = min(found.values(), key=lambda u: u.timestamp)
        return earliest, found


def _previous(point: Point, last: Point | None, prev: Point | None) -> Point | None:
    """Which stored point becomes ``point``'s previous one (None: none yet)."""
    if last is None:
        return None
    if point.timestamp > last.timestamp:
        return last
    if prev is not None and prev.timestamp < point.timestamp:
        return prev
    return None


# ----- what the API serves (registry/metrics reads these through its own protocol) -----


class Readings:
    """``registry/metrics``'s view of a ``Storage``: plain timestamps, windows and usage."""

    def __init__(self, store: Storage) -> None:
        self.store = store

    def node(self, name: str) -> tuple[float, float, dict[str, str]] | None:
        got = self.store.node_usage(name)
        return None if got is None else (got.timestamp, got.window, got.resources())

    def pod(
        self, namespace: str, name: str
    ) -> tuple[float, float, list[tuple[str, dict[str, str]]]] | None:
        got = self.store.pod_usage(namespace, name)
        if got is None:
            return None
        earliest, containers = got
        return (
            earliest.timestamp,
            earliest.window,
            [(container, u.resources()) for container, u in containers.items()],
        )
