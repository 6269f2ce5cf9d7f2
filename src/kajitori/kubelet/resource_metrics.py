"""What a node's containers use: the kubelet's ``/metrics/resource`` and ``/stats/summary``.

Upstream's kubelet asks cAdvisor (or the CRI) for each running container's
cumulative CPU time and memory working set, and serves them twice: as the
summary API (``/stats/summary``, pkg/kubelet/server/stats) and as Prometheus
text (``/metrics/resource``, pkg/kubelet/metrics/collectors/resource_metrics.go),
which metrics-server scrapes. This module owns both renderings and where the
numbers come from:

* ``CgroupUsage`` (the ``oci`` runtime): the container's cgroup, found from
  its ``runc://<id>`` containerID under ``/<CGROUP_PARENT>/pod<uid>/<id>``.
  cgroup v2: ``cpu.stat`` ``usage_usec`` and ``memory.current`` minus
  ``memory.stat`` ``inactive_file``; cgroup v1: ``cpuacct.usage`` (ns) and
  ``memory.usage_in_bytes`` minus ``total_inactive_file``: cAdvisor's working
  set, never below zero. A container without a cgroup (the rootless runtime
  makes none) has no sample, as a container cAdvisor cannot see.
* ``SimulatedUsage`` (the ``simulated`` runtime): nothing runs, so a model.
  Each running container uses ``kajitori.io/simulate-cpu-usage`` and
  ``kajitori.io/simulate-memory-usage`` (quantities, per container) when the
  pod carries them; otherwise a tenth of its CPU request (1m without one) and
  half of its memory request (8Mi without one). CPU time accumulates at that
  rate from the container's start, and keeps accumulating at the new rate
  when the annotation changes, so a counter never goes back.

A node's usage is its pods' plus a fixed baseline for what a node runs
besides pods (kubelet, runtime, system daemons: 25m CPU and 128Mi), not the
machine's: kajitori's nodes share one machine, whose usage would be counted
once per node. The node's CPU counter only grows: it adds each container's
growth since the last look (a new container's whole counter), so a pod that
goes away takes nothing back. Swap is not reported (no series, as upstream on
a node without swap stats).
"""

from __future__ import annotations

import dataclasses
import decimal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kajitori.kubelet.runtimes.oci import containers as oci_containers
from kajitori.machinery import quantity, times

Object = dict[str, Any]
Clock = Callable[[], float]

CPU_USAGE_ANNOTATION = "kajitori.io/simulate-cpu-usage"
MEMORY_USAGE_ANNOTATION = "kajitori.io/simulate-memory-usage"
# The simulated defaults: a small, deterministic share of what the container asks for.
DEFAULT_CPU_SHARE = decimal.Decimal("0.1")
DEFAULT_MEMORY_SHARE = decimal.Decimal("0.5")
DEFAULT_CPU_CORES = decimal.Decimal("0.001")
DEFAULT_MEMORY_BYTES = 8 << 20
# What a node uses besides its pods (see the module docstring).
NODE_BASELINE_CPU_CORES = 0.025
NODE_BASELINE_MEMORY_BYTES = 128 << 20
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerSample:
    """One container at one moment: cumulative CPU core-seconds and working-set bytes."""

    name: str
    start_time: float  # seconds since the epoch
    timestamp: float
    cpu_seconds: float
    memory_bytes: int


@dataclasses.dataclass(frozen=True, slots=True)
class PodSample:
    namespace: str
    name: str
    uid: str
    start_time: float
    containers: tuple[ContainerSample, ...]

    @property
    def timestamp(self) -> float:
        return max((c.timestamp for c in self.containers), default=0.0)

    @property
    def cpu_seconds(self) -> float:
        return sum(c.cpu_seconds for c in self.containers)

    @property
    def memory_bytes(self) -> int:
        return sum(c.memory_bytes for c in self.containers)


class UsageSource(Protocol):
    """Samples the running containers of one pod (``running``: name → start time)."""

    def sample(
        self, pod: Object, running: dict[str, float], now: float
    ) -> list[ContainerSample]: ...


def running_containers(pod: Object) -> dict[str, float]:
    """The pod's running (regular and sidecar) containers and when each started."""
    status = pod.get("status") or {}
    found: dict[str, float] = {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for entry in status.get(key) or ():
            running = ((entry or {}).get("state") or {}).get("running")
            if not isinstance(running, dict):
                continue
            started = times.parse_time(running.get("startedAt"))
            if started is not None:
                found[str(entry.get("name") or "")] = started.timestamp()
    return found


# ----- simulated usage -------------------------------------------------------------------


def _quantity(text: object) -> decimal.Decimal | None:
    if text is None:
        return None
    try:
        return quantity.parse_quantity(str(text)).number
    except quantity.QuantityError:
        return None


def _requested(container: Object, name: str) -> decimal.Decimal | None:
    requests = ((container.get("resources") or {}).get("requests")) or {}
    return _quantity(requests.get(name))


def simulated_rates(pod: Object, container: Object) -> tuple[decimal.Decimal, int]:
    """(CPU cores, memory bytes) a simulated container uses now (see the module docstring)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    cpu = _quantity(annotations.get(CPU_USAGE_ANNOTATION))
    if cpu is None:
        request = _requested(container, "cpu")
        cpu = DEFAULT_CPU_CORES if not request else request * DEFAULT_CPU_SHARE
    memory = _quantity(annotations.get(MEMORY_USAGE_ANNOTATION))
    if memory is None:
        request = _requested(container, "memory")
        memory = (
            decimal.Decimal(DEFAULT_MEMORY_BYTES) if not request else request * DEFAULT_MEMORY_SHARE
        )
    return max(cpu, decimal.Decimal(0)), max(int(memory), 0)


@dataclasses.dataclass(slots=True)
class _Counter:
    """A container's CPU counter: its value at ``at``, growing at ``rate`` cores since."""

    at: float
    seconds: float
    rate: float


# A counter not read for this long belongs to a container that is gone (one source serves
# every node of a host, so no single node can tell which pods left).
_COUNTER_EXPIRY = 600.0


class SimulatedUsage:
    """The usage model of simulated containers; a counter lives while it is read."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, float], _Counter] = {}
        self._purged = 0.0

    def sample(self, pod: Object, running: dict[str, float], now: float) -> list[ContainerSample]:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        specs = {
            str(c.get("name")): c
            for key in ("initContainers", "containers")
            for c in (pod.get("spec") or {}).get(key) or ()
            if isinstance(c, dict)
        }
        samples = []
        for name, started in running.items():
            spec = specs.get(name)
            if spec is None:
                continue
            cpu, memory = simulated_rates(pod, spec)
            seconds = self._advance((uid, name, started), started, float(cpu), now)
            samples.append(ContainerSample(name, started, now, seconds, memory))
        if now - self._purged > _COUNTER_EXPIRY:
            self._purged = now
            stale = [k for k, c in self._counters.items() if c.at < now - _COUNTER_EXPIRY]
            for key in stale:
                del self._counters[key]
        return samples

    def _advance(
        self, key: tuple[str, str, float], started: float, rate: float, now: float
    ) -> float:
        counter = self._counters.get(key)
        if counter is None:
            # First look: as if it had used this rate since it started.
            counter = self._counters[key] = _Counter(now, rate * max(now - started, 0.0), rate)
            return counter.seconds
        counter.seconds += counter.rate * max(now - counter.at, 0.0)
        counter.at, counter.rate = max(now, counter.at), rate
        return counter.seconds


# ----- real containers: cgroups ------------------------------------------------------------


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _stat(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def read_cgroup(relative: str, root: Path = CGROUP_ROOT) -> tuple[float, int] | None:
    """(CPU core-seconds, working-set bytes) of cgroup ``relative``; None when it is gone."""
    relative = relative.strip("/")
    unified = root / relative
    if (unified / "cpu.stat").is_file():
        usec = _stat(unified / "cpu.stat", "usage_usec")
        current = _read_int(unified / "memory.current")
        if usec is None or current is None:
            return None
        inactive = _stat(unified / "memory.stat", "inactive_file") or 0
        return usec / 1e6, max(current - inactive, 0)
    nanoseconds = _read_int(root / "cpuacct" / relative / "cpuacct.usage")
    memory_dir = root / "memory" / relative
    usage = _read_int(memory_dir / "memory.usage_in_bytes")
    if nanoseconds is None or usage is None:
        return None
    inactive = _stat(memory_dir / "memory.stat", "total_inactive_file") or 0
    return nanoseconds / 1e9, max(usage - inactive, 0)


def container_cgroup(pod_uid: str, container_id: str) -> str | None:
    """Where the oci runtime put a container's cgroup (``runc://<id>`` → its cgroupsPath)."""
    scheme, _, ident = container_id.partition("://")
    if scheme != "runc" or not ident:
        return None
    return f"/{oci_containers.CGROUP_PARENT}/pod{pod_uid}/{ident}"


class CgroupUsage:
    """Real containers' usage, read from their cgroups at each scrape (cAdvisor's numbers)."""

    def __init__(self, root: Path = CGROUP_ROOT) -> None:
        self.root = root

    def sample(self, pod: Object, running: dict[str, float], now: float) -> list[ContainerSample]:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        status = pod.get("status") or {}
        samples = []
        for key in ("initContainerStatuses", "containerStatuses"):
            for entry in status.get(key) or ():
                name = str(entry.get("name") or "")
                if name not in running:
                    continue
                cgroup = container_cgroup(uid, str(entry.get("containerID") or ""))
                read = None if cgroup is None else read_cgroup(cgroup, self.root)
                if read is not None:
                    samples.append(ContainerSample(name, running[name], now, read[0], read[1]))
        return samples


# ----- the node's samples and their renderings ----------------------------------------------


class ResourceMetrics:
    """Samples ``node_name``'s running pods through ``source`` and renders them as upstream."""

    def __init__(
        self,
        node_name: str,
        *,
        list_pods: Callable[[], list[Object]],
        source: UsageSource,
        clock: Clock = time.time,
    ) -> None:
        self.node_name = node_name
        self.list_pods = list_pods
        self.source = source
        self.clock = clock
        self.start_time = clock()
        # The node counter's pod part, and each container's counter when last seen.
        self._pods_cpu = 0.0
        self._seen: dict[tuple[str, str, float], float] = {}

    def node_usage(self, pods: list[PodSample], now: float) -> tuple[float, int]:
        """(CPU core-seconds since start, working-set bytes) of the node."""
        seen: dict[tuple[str, str, float], float] = {}
        for pod in pods:
            for c in pod.containers:
                key = (pod.uid, c.name, c.start_time)
                self._pods_cpu += max(c.cpu_seconds - self._seen.get(key, 0.0), 0.0)
                seen[key] = max(c.cpu_seconds, self._seen.get(key, 0.0))
        self._seen = seen
        baseline = NODE_BASELINE_CPU_CORES * max(now - self.start_time, 0.0)
        memory = NODE_BASELINE_MEMORY_BYTES + sum(p.memory_bytes for p in pods)
        return baseline + self._pods_cpu, memory

    def collect(self) -> list[PodSample]:
        now = self.clock()
        pods = [
            p for p in self.list_pods() if (p.get("spec") or {}).get("nodeName") == self.node_name
        ]
        samples = []
        for pod in pods:
            running = running_containers(pod)
            if not running:
                continue
            containers = self.source.sample(pod, running, now)
            if not containers:
                continue
            meta = pod.get("metadata") or {}
            started = times.parse_time((pod.get("status") or {}).get("startTime"))
            samples.append(
                PodSample(
                    str(meta.get("namespace") or ""),
                    str(meta.get("name") or ""),
                    str(meta.get("uid") or ""),
                    started.timestamp() if started else min(running.values()),
                    tuple(containers),
                )
            )
        return samples

    def prometheus(self) -> bytes:
        """``/metrics/resource``: Prometheus text format 0.0.4."""
        pods, now = self.collect(), self.clock()
        return render_prometheus(pods, self.node_usage(pods, now), now=now).encode()

    def summary(self) -> Object:
        """``/stats/summary``: the node and its pods (CPU and memory only)."""
        pods, now = self.collect(), self.clock()
        node = self.node_usage(pods, now)
        return render_summary(self.node_name, self.start_time, pods, node, now=now)


PROMETHEUS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

# name → (type, HELP text with its stability level), as component-base prints them.
_FAMILIES = {
    "container_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    ),
    "container_memory_working_set_bytes": (
        "gauge",
        "[STABLE] Current working set of the container in bytes",
    ),
    "container_start_time_seconds": (
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    ),
    "node_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    ),
    "node_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the node in bytes"),
    "pod_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    ),
    "pod_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the pod in bytes"),
    "resource_scrape_error": (
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    ),
}


def go_float(value: float) -> str:
    """A float as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` (the exposition format's)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    point = len(text) + exponent  # the decimal point's place after the first digit run
    magnitude = point - 1
    prefix = "-" if sign else ""
    if magnitude < -4 or magnitude >= 6:  # strconv: shortest precision decides at 6
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def _labels(**pairs: str) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(pairs.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_prometheus(pods: list[PodSample], node: tuple[float, int], *, now: float) -> str:
    """The resource metrics collector's output: families sorted by name, series by labels."""
    series: dict[str, list[str]] = {name: [] for name in _FAMILIES}

    def add(name: str, labels: str, value: float, timestamp: float | None) -> None:
        suffix = "" if timestamp is None else f" {int(timestamp * 1000)}"
        series[name].append(f"{name}{labels} {go_float(value)}{suffix}")

    node_cpu, node_memory = node
    add("node_cpu_usage_seconds_total", "", node_cpu, now)
    add("node_memory_working_set_bytes", "", float(node_memory), now)
    for pod in pods:
        for c in pod.containers:
            labels = _labels(container=c.name, pod=pod.name, namespace=pod.namespace)
            add("container_start_time_seconds", labels, c.start_time, None)
            add("container_cpu_usage_seconds_total", labels, c.cpu_seconds, c.timestamp)
            add("container_memory_working_set_bytes", labels, float(c.memory_bytes), c.timestamp)
        labels = _labels(pod=pod.name, namespace=pod.namespace)
        add("pod_cpu_usage_seconds_total", labels, pod.cpu_seconds, pod.timestamp)
        add("pod_memory_working_set_bytes", labels, float(pod.memory_bytes), pod.timestamp)
    series["resource_scrape_error"].append("resource_scrape_error 0")
    lines: list[str] = []
    for name, (kind, help_text) in _FAMILIES.items():
        if not series[name]:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(sorted(series[name]))
    return "\n".join(lines) + "\n"


def _stamp(seconds: float) -> str:
    return times.rfc3339(int(seconds))


def _usage(at: float, cpu_seconds: float, memory: int) -> tuple[Object, Object]:
    cpu = {"time": _stamp(at), "usageCoreNanoSeconds": int(cpu_seconds * 1e9)}
    return cpu, {"time": _stamp(at), "workingSetBytes": memory}


def render_summary(
    node: str, started: float, pods: list[PodSample], usage: tuple[float, int], *, now: float
) -> Object:
    """The summary API's shape (``k8s.io/kubelet/pkg/apis/stats/v1alpha1``), CPU and memory."""
    cpu, memory = _usage(now, *usage)
    out_pods = []
    for pod in pods:
        pod_cpu, pod_memory = _usage(pod.timestamp, pod.cpu_seconds, pod.memory_bytes)
        containers = []
        for c in pod.containers:
            c_cpu, c_memory = _usage(c.timestamp, c.cpu_seconds, c.memory_bytes)
            containers.append(
                {
                    "name": c.name,
                    "startTime": _stamp(c.start_time),
                    "cpu": c_cpu,
                    "memory": c_memory,
                }
            )
        out_pods.append(
            {
                "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "startTime": _stamp(pod.start_time),
                "containers": containers,
                "cpu": pod_cpu,
                "memory": pod_memory,
            }
        )
    return {
        "node": {"nodeName": node, "startTime": _stamp(started), "cpu": cpu, "memory": memory},
        "pods": out_pods,
    }
