"""NodeMetrics and PodMetrics (``metrics.k8s.io/v1beta1``) as metrics-server serves them.

Upstream's metrics-server answers these from its own API server behind the
remote APIService ``v1beta1.metrics.k8s.io``; kajitori serves them in process
as read-only virtual resources (``ResourceInfo.virtual_reads``, as
componentstatuses), so the aggregator lists the group version as a Local
APIService. Usage comes from ``Readings`` (the in-process metrics-server's
storage, ``kajitori.metrics_server``); the objects it describes come from the
node and pod stores, as metrics-server reads its listers:

* a list covers the nodes (or the namespace's pods) sorted by name, leaving out
  those without usage yet and pods not ``Running``; label and field selectors
  apply to the object's labels and name, as upstream's lister does;
* a get of an unknown node or pod answers the store's NotFound; of one without
  usage, ``nodemetrics.metrics.k8s.io "<name>" not found`` (pods:
  ``podmetrics.metrics.k8s.io "<ns>/<name>" not found``);
* ``metadata`` holds name, (namespace,) labels and ``creationTimestamp`` (the
  time of the request); ``timestamp`` and ``window`` describe the two scrapes
  the usage came from (for a pod, its earliest container's); usage is CPU in
  nanocores and memory in bytes, in metrics-server's quantity formats;
* Table output has metrics-server's columns: Name, cpu, memory, Window.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kajitori.machinery import errors, quantity, times
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables
from kajitori.registry.generic.store import ListOptions

Object = dict[str, Any]
Lookup = Callable[[str, str, str], Any]
Usage = dict[str, str]

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
NODE_METRICS = errors.GroupResource(GROUP, "nodemetrics")
POD_METRICS = errors.GroupResource(GROUP, "podmetrics")


class Readings(Protocol):
    """Scraped usage: (timestamp, window seconds, usage) per node; per pod, per container."""

    def node(self, name: str) -> tuple[float, float, Usage] | None: ...

    def pod(
        self, namespace: str, name: str
    ) -> tuple[float, float, list[tuple[str, Usage]]] | None: ...


def go_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration.String`` prints it (``15.001s``, ``1m0.5s``)."""
    total = round(seconds * 1e9)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if total >= size:
                return sign + _fraction(total, size) + unit
    hours, rest = divmod(total, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _fraction(value: int, size: int) -> str:
    whole, part = divmod(value, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{str(part).zfill(digits).rstrip('0')}"


def _now() -> str:
    return times.format_time(datetime.datetime.now(datetime.UTC))


def _meta(obj: Object, *, namespaced: bool) -> Object:
    source = obj.get("metadata") or {}
    meta: Object = {"name": source.get("name", "")}
    if namespaced:
        meta["namespace"] = source.get("namespace", "")
    meta["creationTimestamp"] = _now()
    if source.get("labels"):
        meta["labels"] = dict(source["labels"])
    return meta


def node_metrics(node: Object, reading: tuple[float, float, Usage]) -> Object:
    timestamp, window, usage = reading
    return {
        "kind": "NodeMetrics",
        "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": _meta(node, namespaced=False),
        "timestamp": times.rfc3339(int(timestamp)),
        "window": go_duration(window),
        "usage": usage,
    }


def pod_metrics(pod: Object, reading: tuple[float, float, list[tuple[str, Usage]]]) -> Object:
    timestamp, window, containers = reading
    return {
        "kind": "PodMetrics",
        "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": _meta(pod, namespaced=True),
        "timestamp": times.rfc3339(int(timestamp)),
        "window": go_duration(window),
        "containers": [{"name": name, "usage": usage} for name, usage in containers],
    }


class _Reads:
    """Shared lookups of the stores the metrics describe."""

    def __init__(self, lookup: Lookup, readings: Readings) -> None:
        self.lookup = lookup
        self.readings = readings

    def _store(self, plural: str) -> Any:
        store = self.lookup("", "v1", plural)
        if store is None:
            raise errors.internal_error(f"{plural} are not served")
        return store

    async def _list(self, plural: str, namespace: str) -> list[Object]:
        items: list[Object] = (await self._store(plural).list(namespace, ListOptions())).items
        return sorted(items, key=_sort_key)


def _sort_key(obj: Object) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class NodeMetricsReads(_Reads):
    """``nodemetrics``: one per node with usage."""

    async def get(self, namespace: str, name: str) -> Object:
        node = await self._store("nodes").get("", name)
        reading = self.readings.node(name)
        if reading is None:
            raise errors.not_found(NODE_METRICS, name)
        return node_metrics(node, reading)

    async def list(self, namespace: str) -> list[Object]:
        found = []
        for node in await self._list("nodes", ""):
            reading = self.readings.node(str(node["metadata"].get("name", "")))
            if reading is not None:
                found.append(node_metrics(node, reading))
        return found


def _running(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


class PodMetricsReads(_Reads):
    """``podmetrics``: one per running pod with usage of all its containers."""

    def _reading(self, pod: Object) -> Object | None:
        meta = pod.get("metadata") or {}
        if not _running(pod):
            return None
        reading = self.readings.pod(str(meta.get("namespace", "")), str(meta.get("name", "")))
        return None if reading is None else pod_metrics(pod, reading)

    async def get(self, namespace: str, name: str) -> Object:
        pod = await self._store("pods").get(namespace, name)
        found = self._reading(pod)
        if found is None:
            raise errors.not_found(POD_METRICS, f"{namespace}/{name}")
        return found

    async def list(self, namespace: str) -> list[Object]:
        found = []
        for pod in await self._list("pods", namespace):
            if (item := self._reading(pod)) is not None:
                found.append(item)
        return found


def _usage_total(obj: Object) -> Usage:
    if "usage" in obj:
        return dict(obj["usage"])
    totals: dict[str, quantity.Quantity] = {}
    for container in obj.get("containers") or ():
        for key, value in (container.get("usage") or {}).items():
            parsed = quantity.parse_quantity(value)
            totals[key] = parsed if key not in totals else totals[key] + parsed
    return {k: v.canonical() for k, v in totals.items()}


COLUMNS = (
    tables.Column("Name", format="name", description="Name of the resource"),
    tables.Column("cpu", format="quantity"),
    tables.Column("memory", format="quantity"),
    tables.Column("Window", format="duration"),
)


def _row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    usage = _usage_total(obj)
    return [tables.name(obj), usage.get("cpu", "0"), usage.get("memory", "0"), obj.get("window")]


def _info(
    kind: str, plural: str, namespaced: bool, reads: resource.VirtualReads
) -> resource.ResourceInfo:
    return resource.ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        verbs=("get", "list"),
        strategy=strategies.Strategy(),
        virtual_reads=reads,
        table=tables.Table(columns=COLUMNS, row=_row),
    )


def resources_for(lookup: Lookup, readings: Readings) -> list[resource.ResourceInfo]:
    """``metrics.k8s.io/v1beta1`` nodes and pods, answered from ``readings``."""
    return [
        _info("NodeMetrics", "nodes", False, NodeMetricsReads(lookup, readings)),
        _info("PodMetrics", "pods", True, PodMetricsReads(lookup, readings)),
    ]
