"""Benchmark: a 1,000-node simulated cluster — start-up, scheduling, rollouts and memory.

Run ``python -m bench.scale`` (a few minutes; ``--quick`` for 100 nodes and
1,000 pods). It starts ``python -m kajitori up --nodes N --runtime
simulated`` pinned to core 0 (``bench.common.ServerProcess``): API server,
controllers, scheduler and the N simulated kubelets in that one process.
This driver, pinned to core 1, watches the cluster over HTTPS with the
client library's informers and times, in one run:

* **start-up**: from spawn to every Node ``Ready`` (as the driver's node
  informer sees it), the server's VmRSS then, and the CPU the cluster takes
  over the next 10 s with no pods (Lease renewals — a node renews every
  quarter of ``--lease-seconds``, upstream's 40 s by default, so 1,000
  nodes renew 100 Leases a second — and the tail of start-up: node IPAM's
  podCIDR patches);
* **rollout**: ``--deployments`` Deployments (default 10) sharing
  ``--pods`` replicas (default 10,000), from their creation to every pod
  ``Running``; per pod the driver records when it first saw it, saw it
  bound (``spec.nodeName``) and saw it ``Running``. The bind rate over the
  rollout and the most pods created but not yet bound are reported beside
  it, and the server's VmRSS and VmHWM once all are Running. Events trail
  the pods (each pod's are written in the background by the scheduler and
  its kubelet), so the run then waits until no event has been written for
  two seconds and reports the CPU and the API requests per pod again,
  with those writes in (``settled``);
* **scheduler throughput**: ``--burst`` pods (default a fifth of
  ``--pods``) created directly, 16 requests at a time, beside the pods
  already running. Pods bound per second are counted from the first bind to
  the last; ``bind_rate_after_creates`` counts only the binds after the
  last create was answered, when the scheduler alone works through its
  backlog. The create rate of the same run is the floor the scheduler is
  compared with: ``bind_vs_create`` near 1.0 means the scheduler keeps up
  with the API server's writes;
* **scheduler on a backlog** (upstream scheduler_perf's way: the pods
  exist first, then the scheduler works through them): ``--backlog`` pods
  (default as many as ``--burst``) created with ``schedulerName:
  bench-backlog-scheduler``, which the cluster's default scheduler leaves
  alone (upstream: a scheduler takes only the pods that name it). Once the
  driver sees them all, it starts ``kajitori scheduler --config`` with a
  ``KubeSchedulerConfiguration`` whose profile has that name, as a process
  of its own on core 1, and counts pods bound per second from its first
  bind to its last, with that process's CPU per pod over the same span
  (``scheduler_cpu_ms_per_pod``; its inverse, ``scheduler_pods_per_cpu_s``,
  is the rate a core of its own would allow) and its share of a core
  (``scheduler_cpu_cores``: near 1.0, the scheduler itself is the limit;
  well below, it waits on the API server, whose CPU over the same span is
  ``cluster_cpu_ms_per_pod``). The CPU span starts at the first bind, when
  up to 32 bindings are already in flight, so it leaves out those pods'
  decisions (under 2% of a 2,000-pod backlog). The pods then run on the
  simulated nodes like the others; once its Events are written (beyond
  1,000 pending it drops them, as upstream's broadcaster does) the
  scheduler process is stopped;
* **StatefulSet**: a 100-replica ``OrderedReady`` StatefulSet, from its
  creation to ``readyReplicas == 100`` (each pod waits for the one before to
  be Ready, so this is 100 round trips through controller, scheduler and
  kubelet, each with the simulated runtime's 0.5 s container start);
* **soak** (only with ``--soak SECONDS``): the Deployments scaled so that
  ``--soak-pods`` (default 100,000) pods run, held for that long while the
  server's VmRSS is sampled every ``--soak-interval`` seconds (default 60);
  the least-squares slope in MiB per minute says whether memory is flat.
  The issue's hour: ``python -m bench.scale --soak 3600``.

Targets (2-core machine): at least 300 pods/s scheduled, 10,000 pods
Running within 60 s, under 1.5 GiB RSS at 10,000 pods, flat memory at
100,000. The machine is shared: the report carries the load average at the
start and the CPU other processes used during each phase
(``other_cpu_cores``). The rollout also reports ``api_requests_per_pod``:
the server's ``apiserver_request_total`` (``/metrics``) scraped before and
after it, by verb and resource, over the pods rolled out. ``--profile DIR`` records the server with py-spy
during the rollout and the burst, and the backlog's scheduler process while it binds (do not quote
timings from such a run).

``--split`` runs the cluster as upstream deploys it: ``kajitori apiserver``
pinned to core 0, and ``kajitori controller-manager``, ``kajitori
scheduler`` and ``kajitori kubelet --nodes N`` (decision 0049) as processes
of their own beside the driver on core 1, over HTTPS. The server figures are
then sums over the four processes (CPU, VmRSS, VmHWM: the sum of each one's
peak), and each phase adds ``cpu_s_by_process``; ``rss_mib_by_process`` at
the end.

It prints a table and writes ``bench/results/scale-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from bench import common, loadgen
from kajitori.client import informer, kubeconfig, rest
from kajitori.controllers import nodeipam
from kajitori.server import metrics

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NAMESPACE = "bench-scale"
BURST_NAMESPACE = "bench-scale-burst"
BACKLOG_NAMESPACE = "bench-scale-backlog"
BACKLOG_SCHEDULER = "bench-backlog-scheduler"
STATEFUL_NAMESPACE = "bench-scale-sts"
STATEFUL_REPLICAS = 100
BURST_CONCURRENCY = 16
IDLE_SECONDS = 10.0
IMAGE = "registry.k8s.io/pause:3.10"
APP_LABEL = "bench.kajitori.io/app"
TARGETS = {
    "pods_scheduled_per_second": 300,
    "rollout_seconds": 60,
    "rss_at_pods_mib": 1536,
    "soak_slope_mib_per_minute": 1.0,
}
_JSON = (("content-type", "application/json"), ("accept", "application/json"))
_MIB = 1024


@dataclasses.dataclass(frozen=True)
class Plan:
    nodes: int
    pods: int
    deployments: int
    burst: int
    statefulset: int
    soak_seconds: float
    soak_pods: int
    soak_interval: float
    lease_seconds: int
    timeout: float
    profile_dir: Path | None
    split: bool = False
    backlog: int = 0


# -- what the driver sees ----------------------------------------------------------


class PodTimes:
    """When the driver first saw each pod, saw it bound, and saw it Running."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.changed = asyncio.Event()
        # Called with the count of pods bound each time one more is seen bound.
        self.on_bound: Callable[[int], None] | None = None

    def handler(self) -> informer.EventHandler:
        return informer.EventHandler(
            on_add=self.observe, on_update=lambda _, new: self.observe(new)
        )

    def observe(self, pod: dict[str, Any]) -> None:
        now = time.perf_counter()
        key = informer.meta_namespace_key(pod)
        self.seen.setdefault(key, now)
        if (pod.get("spec") or {}).get("nodeName") and key not in self.bound:
            self.bound[key] = now
            if self.on_bound is not None:
                self.on_bound(len(self.bound))
        if (pod.get("status") or {}).get("phase") == "Running":
            if key not in self.running:
                self.running[key] = now
                self.changed.set()

    async def wait_running(self, count: int, deadline: float, what: str) -> float:
        """Wait until ``count`` pods run; the perf_counter at which the last one was seen."""
        while len(self.running) < count:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(
                    f"{what}: {len(self.running)}/{count} Running, {len(self.bound)} bound,"
                    f" {len(self.seen)} seen"
                )
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=min(left, 5.0))
            except TimeoutError:
                pass
        return max(self.running.values())


def rates(times: PodTimes, began: float) -> dict[str, Any]:
    """Bind throughput and the largest backlog of pods seen but not yet bound."""
    binds = sorted(times.bound.values())
    if len(binds) < 2:
        return {"pods_bound": len(binds)}
    span = binds[-1] - binds[0]
    low, high = binds[len(binds) // 10], binds[(len(binds) * 9) // 10]
    middle = (len(binds) * 9) // 10 - len(binds) // 10
    events = [(t, 1) for t in times.seen.values()] + [(t, -1) for t in binds]
    backlog = peak = 0
    for _, step in sorted(events):
        backlog += step
        peak = max(peak, backlog)
    return {
        "pods_bound": len(binds),
        "first_bind_s": round(binds[0] - began, 2),
        "last_bind_s": round(binds[-1] - began, 2),
        "bind_rate": round((len(binds) - 1) / max(span, 1e-9), 1),
        "bind_rate_p10_p90": round(middle / max(high - low, 1e-9), 1),
        "max_unbound_backlog": peak,
    }


class Memory:
    """The server's VmRSS / VmHWM in MiB."""

    def __init__(self, server: common.ServerProcess) -> None:
        self.server = server

    def now(self) -> dict[str, float]:
        return {
            "rss_mib": round(self.server.status_kb("VmRSS") / _MIB, 1),
            "hwm_mib": round(self.server.status_kb("VmHWM") / _MIB, 1),
            # Heap, as opposed to mapped files (SQLite, shared libraries).
            "rss_anon_mib": round(self.server.status_kb("RssAnon") / _MIB, 1),
        }


# -- objects -----------------------------------------------------------------------


def pod_spec() -> dict[str, Any]:
    return {
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "app",
                "image": IMAGE,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }
        ],
    }


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {APP_LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec()},
        },
    }


def statefulset(replicas: int) -> dict[str, Any]:
    labels = {APP_LABEL: "ordered"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "ordered", "namespace": STATEFUL_NAMESPACE},
        "spec": {
            "replicas": replicas,
            "serviceName": "ordered",
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec()},
        },
    }


def burst_pod(index: int, *, prefix: str = "burst", scheduler_name: str = "") -> bytes:
    spec = pod_spec()
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{prefix}-{index}", "labels": {APP_LABEL: prefix}},
        "spec": spec,
    }
    return orjson.dumps(body)


def backlog_scheduler_config(path: Path) -> Path:
    """The second scheduler's ``KubeSchedulerConfiguration``: one profile, no election."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "profiles": [{"schedulerName": BACKLOG_SCHEDULER}],
                "leaderElection": {"leaderElect": False},
            }
        )
    )
    return path


def split(total: int, parts: int) -> list[int]:
    """``total`` replicas over ``parts`` Deployments, as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- phases ------------------------------------------------------------------------


class Run:
    """One cluster under test and the driver's informers on it."""

    def __init__(self, plan: Plan, server: common.ServerProcess) -> None:
        self.plan = plan
        self.server = server
        self.memory = Memory(server)
        config = kubeconfig.load_kubeconfig(server.data_dir / "kubeconfig")
        self.client = rest.Client.from_kubeconfig(config)
        self.context = common.client_ssl_context(server.data_dir)
        self.informers: list[informer.Informer] = []
        self.rollout_times: PodTimes | None = None

    def watch_pods(self, namespace: str) -> PodTimes:
        times = PodTimes()
        pods = informer.Informer(self.client, rest.PODS, namespace=namespace)
        pods.add_event_handler(times.handler())
        pods.start()
        self.informers.append(pods)
        return times

    async def close(self) -> None:
        for each in self.informers:
            await each.stop()
        await self.client.aclose()

    async def api_requests(self) -> dict[str, float]:
        """The API server's requests so far by "VERB resource[/subresource]" (from /metrics)."""
        response = await self.client.http.get("/metrics")
        response.raise_for_status()
        return metrics.requests_by_verb_resource(response.text)

    async def namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.client.create(rest.NAMESPACES, body)
        # Pods need the namespace's default ServiceAccount (ServiceAccount admission).
        deadline = time.monotonic() + 30
        while True:
            try:
                await self.client.get(rest.SERVICEACCOUNTS, "default", namespace=name)
                return
            except rest.ApiError as exc:
                if not exc.not_found or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)

    async def nodes_ready(self, spawned: float) -> dict[str, Any]:
        """Wait for every node to be Ready; seconds since spawn and the server's memory."""
        ready: set[str] = set()
        changed = asyncio.Event()

        def observe(node: dict[str, Any]) -> None:
            conditions = (node.get("status") or {}).get("conditions") or ()
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                ready.add(node["metadata"]["name"])
                changed.set()

        nodes = informer.Informer(self.client, rest.NODES)
        nodes.add_event_handler(
            informer.EventHandler(on_add=observe, on_update=lambda _, new: observe(new))
        )
        nodes.start()
        self.informers.append(nodes)
        deadline = time.perf_counter() + self.plan.timeout
        while len(ready) < self.plan.nodes:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(ready)}/{self.plan.nodes} nodes Ready")
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=1.0)
        row = {
            "nodes_ready": len(ready),
            "ready_line_s": round(self.server.ready_line_seconds, 2),
            "all_nodes_ready_s": round(time.perf_counter() - spawned, 2),
            **self.memory.now(),
        }
        # What the cluster costs with no pods: Lease renewals, nodes / (lease / 4) per
        # second, and just after start-up node IPAM's podCIDR patches and their echoes.
        cpu_before, idle_began = self.server.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        idle = self.server.cpu_seconds() - cpu_before
        row["idle_server_cpu_share"] = round(idle / (time.perf_counter() - idle_began), 3)
        row["lease_renewals_per_s"] = round(self.plan.nodes / (self.plan.lease_seconds / 4), 1)
        return row

    async def rollout(self) -> dict[str, Any]:
        """``plan.pods`` replicas over ``plan.deployments`` Deployments, to all Running."""
        await self.namespace(NAMESPACE)
        times = self.rollout_times = self.watch_pods(NAMESPACE)
        await self.informers[-1].wait_for_sync()
        contention = common.Contention()
        cpu_before = self.server.cpu_seconds()
        began = time.perf_counter()
        sizes = split(self.plan.pods, self.plan.deployments)
        with _Profiling(self.plan.profile_dir, self.server.pid, "rollout", 30):
            await asyncio.gather(
                *(
                    self.client.create(rest.DEPLOYMENTS, deployment(f"app-{i}", size))
                    for i, size in enumerate(sizes)
                )
            )
            deadline = began + self.plan.timeout
            last = await times.wait_running(self.plan.pods, deadline, "rollout")
        return {
            "pods": self.plan.pods,
            "deployments": self.plan.deployments,
            "all_running_s": round(last - began, 2),
            "pods_running": len(times.running),
            # More than ``pods`` means a ReplicaSet created extras (its expectations
            # expire after 5 minutes, so a slow enough rollout over-creates).
            "pods_created": len(times.seen),
            **rates(times, began),
            "server_cpu_s": round(self.server.cpu_seconds() - cpu_before, 1),
            "other_cpu_cores": contention.other_cpu_cores(),
            **self.memory.now(),
        }

    async def burst(self) -> dict[str, Any]:
        """Pods created directly as fast as the API takes them; the scheduler's bind rate."""
        count = self.plan.burst
        await self.namespace(BURST_NAMESPACE)
        times = self.watch_pods(BURST_NAMESPACE)
        await self.informers[-1].wait_for_sync()
        bodies = [burst_pod(i) for i in range(count)]
        path = f"/api/v1/namespaces/{BURST_NAMESPACE}/pods"
        contention = common.Contention()
        cpu_before = self.server.cpu_seconds()
        began = time.perf_counter()
        with _Profiling(self.plan.profile_dir, self.server.pid, "burst", 10):
            created = await loadgen.run(
                host="127.0.0.1", port=self.server.port, ssl_context=self.context,
                connections=BURST_CONCURRENCY, total_requests=count,
                make_request=lambda i: ("POST", path, _JSON, bodies[i]),
            )  # fmt: skip
            creates_done = time.perf_counter()
            if created.statuses.get(201) != count:
                raise RuntimeError(f"burst creates: {dict(created.statuses)}")
            last = await times.wait_running(count, began + self.plan.timeout, "burst")
        after = sorted(t for t in times.bound.values() if t > creates_done)
        row = {
            "pods": count,
            "create_rate": round(count / max(creates_done - began, 1e-9), 1),
            "creates_s": round(creates_done - began, 2),
            **rates(times, began),
            "bound_after_creates": len(after),
            "all_running_s": round(last - began, 2),
            "pods_running": len(times.running),
            "server_cpu_s": round(self.server.cpu_seconds() - cpu_before, 1),
            "other_cpu_cores": contention.other_cpu_cores(),
        }
        if len(after) >= 2:
            row["bind_rate_after_creates"] = round(
                len(after) / max(after[-1] - creates_done, 1e-9), 1
            )
        row["bind_vs_create"] = round(row.get("bind_rate", 0.0) / max(row["create_rate"], 1e-9), 3)
        return row

    async def backlog(self) -> dict[str, Any]:
        """Pods for a second scheduler, created first; then that scheduler's own bind rate."""
        count = self.plan.backlog
        await self.namespace(BACKLOG_NAMESPACE)
        times = self.watch_pods(BACKLOG_NAMESPACE)
        await self.informers[-1].wait_for_sync()
        bodies = [
            burst_pod(i, prefix="backlog", scheduler_name=BACKLOG_SCHEDULER) for i in range(count)
        ]
        path = f"/api/v1/namespaces/{BACKLOG_NAMESPACE}/pods"
        deadline = time.perf_counter() + self.plan.timeout
        created = await loadgen.run(
            host="127.0.0.1", port=self.server.port, ssl_context=self.context,
            connections=BURST_CONCURRENCY, total_requests=count,
            make_request=lambda i: ("POST", path, _JSON, bodies[i]),
        )  # fmt: skip
        if created.statuses.get(201) != count:
            raise RuntimeError(f"backlog creates: {dict(created.statuses)}")
        while len(times.seen) < count:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"backlog: {len(times.seen)}/{count} pods seen")
            await asyncio.sleep(0.05)
        if times.bound:
            raise RuntimeError(f"the default scheduler bound {len(times.bound)} backlog pods")
        scheduler = _BacklogScheduler(self.server.data_dir)
        marks: dict[str, tuple[float, float]] = {}

        def mark(bound: int) -> None:
            # The CPU of the scheduler and of the cluster at its first and last bind.
            if bound in (1, count):
                when = "first" if bound == 1 else "last"
                marks[when] = (scheduler.cpu_seconds(), self.server.cpu_seconds())

        times.on_bound = mark
        contention = common.Contention()
        spawned = time.perf_counter()
        scheduler.start()
        try:
            await _bound(times, 1, deadline, scheduler)
            # The profile starts with the binds: start-up (imports, the first list) is not in it.
            with _Profiling(self.plan.profile_dir, scheduler.pid, "backlog-scheduler", 15):
                await _bound(times, count, deadline, scheduler)
            other = contention.other_cpu_cores()
            last = await times.wait_running(count, deadline, "backlog")
            # Its Events are written one at a time behind the binds (those beyond
            # 1,000 waiting are dropped, as upstream's broadcaster drops them):
            # stopping it while it still writes would cut a request off.
            events = await self._settled_events(BACKLOG_NAMESPACE, "Scheduled", count, deadline)
        finally:
            times.on_bound = None
            total_cpu = scheduler.stop()
        row = {"pods": count, **rates(times, spawned)}
        row["all_running_s"] = round(last - spawned, 2)
        row["pods_running"] = len(times.running)
        span = max(times.bound.values()) - min(times.bound.values())
        (first_cpu, first_server), (last_cpu, last_server) = marks["first"], marks["last"]
        binds = max(count - 1, 1)
        row["scheduler_cpu_ms_per_pod"] = round((last_cpu - first_cpu) * 1000 / binds, 2)
        row["scheduler_cpu_cores"] = round((last_cpu - first_cpu) / max(span, 1e-9), 2)
        # What one core of its own would let it bind, were the API server not the limit.
        row["scheduler_pods_per_cpu_s"] = round(binds / max(last_cpu - first_cpu, 1e-9), 1)
        row["scheduler_cpu_s_to_first_bind"] = round(first_cpu, 2)
        row["scheduler_cpu_s_total"] = round(total_cpu, 2)
        # The rest of the cluster (API server, controllers, kubelets) over the same span.
        row["cluster_cpu_ms_per_pod"] = round((last_server - first_server) * 1000 / binds, 2)
        row["cluster_cpu_cores"] = round((last_server - first_server) / max(span, 1e-9), 2)
        row["other_cpu_cores"] = other
        row["scheduled_events"] = events
        return row

    async def _settled_events(
        self, namespace: str, reason: str, count: int, deadline: float
    ) -> int:
        """How many ``reason`` Events exist once there are ``count`` or 2 s add none."""
        selector = f"reason={reason}"
        seen, since = -1, time.perf_counter()
        while True:
            found = await self.client.list(
                rest.EVENTS, namespace=namespace, field_selector=selector, metadata_only=True
            )
            now, total = time.perf_counter(), len(found.get("items") or ())
            if total >= count or (total == seen and now - since >= 2.0) or now > deadline:
                return total
            if total != seen:
                seen, since = total, now
            await asyncio.sleep(0.25)

    async def ordered_statefulset(self) -> dict[str, Any]:
        """A ``plan.statefulset``-replica OrderedReady StatefulSet, to all Ready."""
        replicas = self.plan.statefulset
        await self.namespace(STATEFUL_NAMESPACE)
        contention = common.Contention()
        began = time.perf_counter()
        await self.client.create(rest.STATEFULSETS, statefulset(replicas))
        deadline = began + self.plan.timeout
        ready = 0
        while ready < replicas:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"StatefulSet: {ready}/{replicas} Ready")
            await asyncio.sleep(0.2)
            current = await self.client.get(
                rest.STATEFULSETS, "ordered", namespace=STATEFUL_NAMESPACE
            )
            ready = (current.get("status") or {}).get("readyReplicas") or 0
        seconds = time.perf_counter() - began
        return {
            "replicas": replicas,
            "all_ready_s": round(seconds, 2),
            "seconds_per_pod": round(seconds / max(replicas, 1), 3),
            "other_cpu_cores": contention.other_cpu_cores(),
        }

    async def soak(self, running_now: int) -> dict[str, Any]:
        """Scale the Deployments so ``plan.soak_pods`` pods run; sample memory while held."""
        extra = max(self.plan.soak_pods - running_now, 0)
        deployment_pods = self.plan.pods + extra
        # The rollout's informer goes on counting: a second one would hold every pod
        # again in this process (GBs at 100,000 pods).
        times = self.rollout_times or self.watch_pods(NAMESPACE)
        await self.informers[-1].wait_for_sync()
        began = time.perf_counter()
        for i, size in enumerate(split(deployment_pods, self.plan.deployments)):
            await self.client.patch(
                rest.DEPLOYMENTS, f"app-{i}", {"spec": {"replicas": size}},
                namespace=NAMESPACE, patch_type="merge",
            )  # fmt: skip
        # Scaling 100,000 pods takes far longer than the usual phase timeout.
        deadline = began + max(self.plan.timeout, deployment_pods / 20)
        last = await times.wait_running(deployment_pods, deadline, "soak scale-up")
        reached = {"pods_running": deployment_pods + running_now - self.plan.pods}
        reached["scale_up_s"] = round(last - began, 1)
        reached.update(self.memory.now())
        _progress(f"soak: {reached}")
        samples = await self._sample_memory(self.plan.soak_seconds, self.plan.soak_interval)
        return {
            **reached,
            "held_s": self.plan.soak_seconds,
            "samples": samples,
            "rss_slope_mib_per_minute": slope([(s["t_s"], s["rss_mib"]) for s in samples]),
        }

    async def _sample_memory(self, seconds: float, interval: float) -> list[dict[str, float]]:
        began = time.perf_counter()
        samples = []
        while True:
            elapsed = time.perf_counter() - began
            samples.append({"t_s": round(elapsed, 1), **self.memory.now()})
            _progress(f"soak sample {samples[-1]}")
            if elapsed >= seconds:
                return samples
            await asyncio.sleep(min(interval, seconds - elapsed))


def slope(points: Iterable[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) in MiB per minute (0.0 with fewer than 2 points)."""
    pairs = list(points)
    if len(pairs) < 2:
        return 0.0
    mean_t = sum(t for t, _ in pairs) / len(pairs)
    mean_m = sum(m for _, m in pairs) / len(pairs)
    var = sum((t - mean_t) ** 2 for t, _ in pairs)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in pairs)
    return round(cov / max(var, 1e-9) * 60, 3)


async def _bound(
    times: PodTimes, count: int, deadline: float, scheduler: _BacklogScheduler
) -> None:
    """Wait until ``count`` pods are bound (or the scheduler exited, or the deadline passed)."""
    while len(times.bound) < count:
        if time.perf_counter() > deadline or scheduler.exited():
            raise TimeoutError(f"backlog: {len(times.bound)}/{count} bound")
        await asyncio.sleep(0.02)


class _BacklogScheduler:
    """``kajitori scheduler --config`` for the backlog phase, on the driver's core."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        config = backlog_scheduler_config(self.data_dir / "backlog-scheduler.json")
        command = [sys.executable, "-m", "kajitori", "scheduler", "--config", str(config),
                   "--kubeconfig", str(self.data_dir / "kubeconfig")]  # fmt: skip
        # Its log sits with the cluster's, so its ERROR lines are counted with theirs.
        with (self.data_dir / "backlog-scheduler.log").open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        common.pin(common.CLIENT_CORE, self.process.pid)

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def cpu_seconds(self) -> float:
        return sum(_cpu_times(self.pid))

    def stop(self) -> float:
        """Stop it; the CPU seconds it used in all."""
        if self.process is None:
            return 0.0
        spent = self.cpu_seconds() if not self.exited() else 0.0
        if (status := common.stop_process(self.process)) not in (0, -15):
            log = (self.data_dir / "backlog-scheduler.log").read_text()[-2000:]
            _progress(f"backlog scheduler exited with {status}:\n{log}")
        return spent


class _Profiling:
    """py-spy on process ``pid`` for ``seconds`` of a phase, when a directory was given."""

    def __init__(self, directory: Path | None, pid: int, phase: str, seconds: int) -> None:
        self.directory, self.pid, self.phase, self.seconds = directory, pid, phase, seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.output = Path()

    def __enter__(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.output = self.directory / f"scale-{self.phase}.txt"
        self.process = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self.pid), "--duration", str(self.seconds),
             "--rate", "100", "--nonblocking", "--gil", "--format", "raw",
             "--output", str(self.output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def __exit__(self, *_: object) -> None:
        if self.process is None:
            return
        self.process.wait(timeout=self.seconds + 60)
        summary = common.summarise_profile(self.output)
        print(f"\n{self.phase}: {summary['samples']} samples", file=sys.stderr)
        for label in ("self", "inclusive"):
            print(f"  top {label}:", file=sys.stderr)
            for name, share in summary[label][:20]:
                print(f"    {share:6.1%}  {name}", file=sys.stderr)


# -- the split cluster -------------------------------------------------------------


class SplitCluster(common.ServerProcess):
    """``kajitori apiserver`` and the components in processes of their own (``--split``).

    Looks to ``Run`` like the one ``up`` process: ``cpu_times`` and
    ``status_kb`` are sums over all four; ``pid`` is the API server's (py-spy).
    """

    def __init__(self, data_dir: Path, plan: Plan) -> None:
        super().__init__(data_dir)
        self.plan = plan
        self.components: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kajitori", "apiserver", "--data-dir", str(self.data_dir)]
        began = time.perf_counter()
        with (self.data_dir / "server.log").open("a") as log:
            self.process = subprocess.Popen(
                [*cmd, "--port", "0"], stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
            )
        common.pin(common.SERVER_CORE, self.process.pid)
        self.port = self._read_ready_line(timeout)
        self.ready_line_seconds = time.perf_counter() - began
        self._first_request(timeout)
        self.first_request_seconds = time.perf_counter() - began
        for name, args in self._component_args().items():
            with (self.data_dir / f"{name}.log").open("a") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "kajitori", *args], stdout=log, stderr=log
                )
            common.pin(common.CLIENT_CORE, child.pid)  # the API server keeps its core
            self.components[name] = child

    def _component_args(self) -> dict[str, list[str]]:
        admin = str(self.data_dir / "kubeconfig")
        simulator = str(self.data_dir / "node-simulator.kubeconfig")
        cidr = nodeipam.cluster_cidr_for(self.plan.nodes)  # as ``up --nodes`` chooses it
        return {
            "controller-manager": ["controller-manager", "--kubeconfig", admin,
                                   "--leader-elect=false", "--cluster-cidr", cidr],
            "scheduler": ["scheduler", "--kubeconfig", admin, "--leader-elect=false"],
            "kubelet": ["kubelet", "--kubeconfig", simulator, "--nodes", str(self.plan.nodes),
                        "--node-lease-duration-seconds", str(self.plan.lease_seconds)],
        }  # fmt: skip

    def pids(self) -> dict[str, int]:
        return {"apiserver": self.pid, **{n: c.pid for n, c in self.components.items()}}

    def cpu_times(self) -> tuple[float, float]:
        times = [_cpu_times(pid) for pid in self.pids().values()]
        return sum(t[0] for t in times), sum(t[1] for t in times)

    def status_kb(self, field: str) -> int:
        return sum(_status_kb(pid, field) for pid in self.pids().values())

    def stop(self) -> None:
        for child in self.components.values():
            if child.poll() is None:
                child.terminate()
        for name, child in self.components.items():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.returncode not in (0, -15):
                log = (self.data_dir / f"{name}.log").read_text()[-2000:]
                _progress(f"{name} exited with {child.returncode}:\n{log}")
        self.components = {}
        super().stop()


def logged_errors(data_dir: Path) -> dict[str, Any]:
    """ERROR lines the cluster's processes logged (``*.log`` in its data dir).

    A handler that raises is logged, not fatal, so a run can look fine while
    a controller misbehaves: the count is part of every report.
    """
    count, first = 0, ""
    for log in sorted(data_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if " ERROR " in line:
                count += 1
                first = first or f"{log.name}: {line[:300]}"
    return {"count": count, "first": first}


def _cpu_times(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def by_process(server: common.ServerProcess) -> dict[str, int]:
    """Each process of the cluster by pid: ``up`` alone, or the split cluster's four."""
    return server.pids() if isinstance(server, SplitCluster) else {"up": server.pid}


def cpu_by_process(server: common.ServerProcess) -> dict[str, float]:
    return {name: sum(_cpu_times(pid)) for name, pid in by_process(server).items()}


def cpu_spent(before: dict[str, float], server: common.ServerProcess) -> dict[str, float]:
    """CPU seconds each process used since ``before`` (``cpu_by_process``)."""
    now = cpu_by_process(server)
    return {name: round(now[name] - before.get(name, 0.0), 2) for name in now}


def rss_by_process(server: common.ServerProcess) -> dict[str, float]:
    pids = by_process(server)
    return {name: round(_status_kb(pid, "VmRSS") / _MIB, 1) for name, pid in pids.items()}


# -- the run -----------------------------------------------------------------------


async def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    common.pin(common.CLIENT_CORE)
    measured_on = common.machine()  # its load average is the one at the start
    args = ["--nodes", str(plan.nodes), "--runtime", "simulated"]
    args += ["--node-lease-duration-seconds", str(plan.lease_seconds)]
    server = common.ServerProcess(workdir / "server", extra_args=args)
    if plan.split:
        server = SplitCluster(workdir / "server", plan)
    spawned = time.perf_counter()
    server.start(timeout=plan.timeout)
    phases: dict[str, Any] = {}
    bench = Run(plan, server)
    try:
        phases["startup"] = await bench.nodes_ready(spawned)
        _progress(f"startup: {phases['startup']}")
        before = cpu_by_process(server)
        requests_before = await bench.api_requests()
        phases["rollout"] = await bench.rollout()
        _per_pod(phases["rollout"], cpu_spent(before, server))
        _requests_per_pod(phases["rollout"], requests_before, await bench.api_requests())
        phases["rollout"]["settled"] = await _settled(bench, server, before, requests_before)
        _progress(f"rollout: {phases['rollout']}")
        if plan.burst:
            before = cpu_by_process(server)
            phases["burst"] = await bench.burst()
            _per_pod(phases["burst"], cpu_spent(before, server))
            _progress(f"burst: {phases['burst']}")
        if plan.backlog:
            phases["backlog"] = await bench.backlog()
            _progress(f"backlog: {phases['backlog']}")
        if plan.statefulset:
            phases["statefulset"] = await bench.ordered_statefulset()
            _progress(f"statefulset: {phases['statefulset']}")
        phases["end"] = {**bench.memory.now(), "rss_mib_by_process": rss_by_process(server)}
        if plan.soak_seconds > 0:
            running = plan.pods + plan.burst + plan.backlog + plan.statefulset
            phases["soak"] = await bench.soak(running)
    finally:
        await bench.close()
        server.stop()
    phases["end"] = {**phases.get("end", {}), "server_log_errors": logged_errors(server.data_dir)}
    return {
        "benchmark": "scale",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": measured_on,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "plan": {
            **{k: v for k, v in dataclasses.asdict(plan).items() if k != "profile_dir"},
            "profiled": plan.profile_dir is not None,
        },
        "phases": phases,
        "targets": TARGETS,
    }


def print_report(report: dict[str, Any]) -> None:
    plan, phases = report["plan"], report["phases"]
    load = report["machine"]["load_average_at_start"]
    shape = "apiserver + 3 component processes" if plan.get("split") else "one process"
    print(f"{plan['nodes']} simulated nodes, {shape} (load average {load})")
    start = phases["startup"]
    print(f"{'phase':<28}{'figure':>12}  target")
    rows = [
        ("nodes Ready (s)", start["all_nodes_ready_s"], ""),
        ("  RSS then (MiB)", start["rss_mib"], ""),
        ("  idle server CPU (cores)", start["idle_server_cpu_share"], ""),
    ]
    roll = phases["rollout"]
    rows += [
        (
            f"{roll['pods']} pods Running (s)",
            roll["all_running_s"],
            f"<= {TARGETS['rollout_seconds']}",
        ),
        ("  bind rate (pods/s)", roll.get("bind_rate", 0), ""),
        ("  max unbound backlog", roll.get("max_unbound_backlog", 0), ""),
        ("  CPU per pod (ms)", roll.get("cpu_ms_per_pod", "-"), ""),
        *_by_process_rows(roll),
        *_requests_rows(roll),
        *_settled_rows(roll.get("settled")),
        (
            "  RSS / HWM (MiB)",
            f"{roll['rss_mib']}/{roll['hwm_mib']}",
            f"< {TARGETS['rss_at_pods_mib']}",
        ),
    ]
    if "burst" in phases:
        burst = phases["burst"]
        rows += [
            (f"burst {burst['pods']}: creates/s", burst["create_rate"], ""),
            ("  binds/s", burst.get("bind_rate", 0), f">= {TARGETS['pods_scheduled_per_second']}"),
            ("  binds/s after creates", burst.get("bind_rate_after_creates", "-"), ""),
            ("  all Running (s)", burst["all_running_s"], ""),
        ]
    if "backlog" in phases:
        backlog = phases["backlog"]
        rows += [
            (
                f"backlog {backlog['pods']}: binds/s",
                backlog.get("bind_rate", 0),
                f">= {TARGETS['pods_scheduled_per_second']}",
            ),
            ("  scheduler CPU/pod (ms)", backlog["scheduler_cpu_ms_per_pod"], ""),
            ("  scheduler CPU (cores)", backlog["scheduler_cpu_cores"], ""),
            ("  scheduler pods/CPU-s", backlog["scheduler_pods_per_cpu_s"], ""),
            ("  cluster CPU/pod (ms)", backlog["cluster_cpu_ms_per_pod"], ""),
            ("  cluster CPU (cores)", backlog["cluster_cpu_cores"], ""),
            ("  all Running (s)", backlog["all_running_s"], ""),
            ("  Scheduled events written", backlog["scheduled_events"], ""),
        ]
    if "statefulset" in phases:
        sts = phases["statefulset"]
        rows.append((f"StatefulSet {sts['replicas']} Ready (s)", sts["all_ready_s"], ""))
    end = phases["end"]
    rows.append(("end RSS / HWM (MiB)", f"{end['rss_mib']}/{end['hwm_mib']}", ""))
    if len(end.get("rss_mib_by_process", {})) > 1:
        rows += [(f"  RSS {n} (MiB)", v, "") for n, v in end["rss_mib_by_process"].items()]
    if "soak" in phases:
        soak = phases["soak"]
        rows += [
            (f"soak {soak['pods_running']} pods RSS", soak["rss_mib"], ""),
            ("  RSS slope (MiB/min)", soak["rss_slope_mib_per_minute"], "~0"),
        ]
    errors = end.get("server_log_errors") or {"count": 0, "first": ""}
    rows.append(("ERROR lines in server logs", errors["count"], "0"))
    for name, value, target in rows:
        print(f"{name:<28}{value!s:>12}  {target}")
    if errors["first"]:
        print(f"first: {errors['first']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="100 nodes, 1,000 pods, 20 StatefulSet replicas"
    )
    parser.add_argument("--nodes", type=int, help="simulated nodes (default 1000)")
    parser.add_argument("--pods", type=int, help="Deployment replicas in all (default 10000)")
    parser.add_argument("--deployments", type=int, default=10, help="Deployments sharing --pods")
    parser.add_argument("--burst", type=int, help="pods created directly (default --pods / 5)")
    parser.add_argument(
        "--backlog", type=int, help="pods for a second scheduler started after (default --burst)"
    )
    parser.add_argument(
        "--statefulset", type=int, help="OrderedReady StatefulSet replicas (default 100)"
    )
    parser.add_argument(
        "--soak", type=float, default=0.0, help="hold --soak-pods this many seconds"
    )
    parser.add_argument("--soak-pods", type=int, default=100_000, help="pods held during the soak")
    parser.add_argument(
        "--soak-interval", type=float, default=60.0, help="seconds between RSS samples"
    )
    parser.add_argument(
        "--lease-seconds", type=int, default=40, help="--node-lease-duration-seconds"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="limit for each phase, seconds"
    )
    parser.add_argument("--profile", type=Path, help="py-spy the server into this directory")
    parser.add_argument(
        "--split",
        action="store_true",
        help="API server, controller manager, scheduler and kubelets in separate processes",
    )
    parser.add_argument(
        "--output", type=Path, help="JSON path (default bench/results/scale-<ts>.json)"
    )
    args = parser.parse_args(argv)
    nodes = args.nodes or (100 if args.quick else 1000)
    pods = args.pods or (1000 if args.quick else 10_000)
    plan = Plan(
        nodes=nodes,
        pods=pods,
        deployments=args.deployments,
        burst=pods // 5 if args.burst is None else args.burst,
        statefulset=(20 if args.quick else STATEFUL_REPLICAS)
        if args.statefulset is None
        else args.statefulset,
        soak_seconds=args.soak,
        soak_pods=args.soak_pods,
        soak_interval=args.soak_interval,
        lease_seconds=args.lease_seconds,
        timeout=args.timeout,
        profile_dir=args.profile,
        split=args.split,
    )
    plan = dataclasses.replace(plan, backlog=plan.burst if args.backlog is None else args.backlog)
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-scale-") as directory:
        report = asyncio.run(run(plan, Path(directory)))
    print_report(report)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.output or RESULTS_DIR / f"scale-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")


async def _settled(
    bench: Run,
    server: common.ServerProcess,
    cpu_before: dict[str, float],
    requests_before: dict[str, float],
) -> dict[str, Any]:
    """Once no event has been written for 2 s (at most 120 s): the rollout's cost per pod."""
    began = time.perf_counter()
    written, quiet_since = -1.0, began
    while time.perf_counter() - began < 120:
        requests = await bench.api_requests()
        events = sum(n for k, n in requests.items() if k.endswith(" events"))
        if events != written:
            written, quiet_since = events, time.perf_counter()
        elif time.perf_counter() - quiet_since >= 2:
            break
        await asyncio.sleep(0.5)
    pods = bench.plan.pods
    spent = cpu_spent(cpu_before, server)
    row: dict[str, Any] = {
        "pods": pods,
        "after_running_s": round(quiet_since - began, 1),
        "cpu_ms_per_pod": round(sum(spent.values()) * 1000 / max(pods, 1), 2),
        "cpu_s_by_process": spent,
    }
    _requests_per_pod(row, requests_before, await bench.api_requests())
    return row


def _per_pod(row: dict[str, Any], spent: dict[str, float]) -> None:
    """The phase's CPU per pod summed over the cluster's processes, and each one's CPU."""
    row["cpu_ms_per_pod"] = round(row["server_cpu_s"] * 1000 / max(row["pods"], 1), 2)
    row["cpu_s_by_process"] = spent


def _requests_per_pod(
    row: dict[str, Any], before: dict[str, float], after: dict[str, float]
) -> None:
    """The phase's API requests per pod by verb and resource, most frequent first."""
    pods = max(row["pods"], 1)
    spent = {k: v - before.get(k, 0.0) for k, v in after.items()}
    per_pod = {k: round(n / pods, 2) for k, n in spent.items() if n > 0}
    row["api_requests_per_pod"] = dict(sorted(per_pod.items(), key=lambda kv: -kv[1]))


def _settled_rows(settled: dict[str, Any] | None) -> list[tuple[str, Any, str]]:
    if not settled:
        return []
    rows: list[tuple[str, Any, str]] = [
        ("  events written until (s after Running)", settled["after_running_s"], ""),
        ("  with them: CPU per pod, all processes (ms)", settled["cpu_ms_per_pod"], ""),
    ]
    per_pod = settled.get("api_requests_per_pod", {})
    rows.append(("  with them: API requests per pod", round(sum(per_pod.values()), 2), ""))
    return rows


def _requests_rows(row: dict[str, Any]) -> list[tuple[str, Any, str]]:
    per_pod = row.get("api_requests_per_pod", {})
    if not per_pod:
        return []
    rows: list[tuple[str, Any, str]] = [
        ("  API requests per pod", round(sum(per_pod.values()), 2), "")
    ]
    rows += [(f"    {k}", v, "") for k, v in per_pod.items() if v >= 0.05]
    return rows


def _by_process_rows(row: dict[str, Any]) -> list[tuple[str, Any, str]]:
    spent = row.get("cpu_s_by_process", {})
    return [(f"  CPU {n} (s)", v, "") for n, v in spent.items()] if len(spent) > 1 else []


def _progress(message: str) -> None:
    print(f"[bench.scale] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
