"""Benchmark: the API server's CPU for the requests one pod's life costs, in one process.

Run ``python -m bench.pod_lifecycle`` (about a minute; ``--pods`` and
``--rounds`` to change it). It starts the API server ``kajitori up`` builds
(``cmd.apiserver.APIServerProcess``, SQLite in a temporary directory, with
``up``'s garbage-collector settings) and calls its ASGI app through the
in-process transport the components of ``kajitori up`` use
(``rest.Client.in_process``), each request as the component that makes it
in a cluster:

1. ``create pods`` — the ReplicaSet controller's ServiceAccount creates the
   pod from a ReplicaSet's template (``pod_control.pod_from_template``; the
   ReplicaSet is the one the Deployment controller makes from a realistic
   Deployment, ``deployment_util.new_replica_set``), owner reference included;
2. ``create pods/binding`` — ``system:kube-scheduler`` binds it
   (``default_binder.DefaultBinder``);
3. ``create events`` — the scheduler's ``Scheduled`` Event (events.k8s.io/v1), as its
   recorder writes it;
4. ``patch pods/status`` (ContainerCreating), then
5. ``patch pods/status`` (Running and Ready, with the pod IP) — the node's
   kubelet (``system:node:NAME``), with the strategic merge patches the
   simulated kubelet sends (``kubelet.status.status_patch`` from the pod as
   the kubelet last saw it to ``kubelet.status.generate_pod_status`` of the
   simulated runtime). Their rows keep the names ``update_status_*`` they
   had when the kubelet PUT the whole pod (decision 0068).

Each phase sends the request for every pod, ``--concurrency`` at a time, and
is charged the process's CPU (``time.process_time``: every thread) from its
first request until the server is idle again after the last answer, so work
a request leaves behind (the watch cache taking the event, admission
listers, the garbage collections its allocations cause) counts with it.
Each round begins with a full collection whose survivors are frozen
(``gc.freeze``, as ``kajitori up`` freezes what start-up built), so that
later rounds do not pay for scanning the objects earlier rounds left. Bodies are built before a phase starts; what the
driver adds inside it is the in-process client's encode of the body and
decode of the answer. A round is a fresh namespace; the first round only
warms up. The table shows the median over rounds of CPU µs per request of
each kind and their sum, the CPU per pod's lifecycle.

``--profile FILE`` writes a cProfile of the measured phases of the last
round (do not quote timings from such a run). It prints a table and writes
``bench/results/pod_lifecycle-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench import common
from kajitori.auth import pki
from kajitori.cli import main as cli_main
from kajitori.client import events, rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.controllers.common import controller_ref, deployment_util, pod_control
from kajitori.kubelet import node_status, status
from kajitori.kubelet.runtimes import simulated
from kajitori.machinery import times
from kajitori.scheduler.plugins import default_binder

RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = (
    "create_pod",
    "create_binding",
    "create_event",
    "update_status_creating",
    "update_status_running",
)
SCHEDULER_USER = "system:kube-scheduler"
SCHEDULER_NAME = "default-scheduler"
START_DELAY = 0.5  # the simulated runtime's container start in ``kajitori up``
_IDLE_STEPS = 20

Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Plan:
    pods: int
    rounds: int
    concurrency: int
    nodes: int
    profile: Path | None


# -- objects -----------------------------------------------------------------------


def deployment(namespace: str) -> Object:
    """A web Deployment as people write them: ports, env, resources, probes, a mount."""
    labels = {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop"}
    container = {
        "name": "web",
        "image": "registry.k8s.io/nginx-slim:0.27",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
            },
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 10},
        "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/nginx"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"prometheus.io/scrape": "true"},
                },
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [container],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                },
            },
        },
    }


def scheduled_event(pod: Object, node: str) -> Object:
    """The scheduler's ``Scheduled`` Event, in the shape its events.k8s.io recorder writes."""
    meta = pod["metadata"]
    regarding = {
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "v1",
        "resourceVersion": meta["resourceVersion"],
    }
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "eventTime": times.now_micro_time(),
        "reportingController": SCHEDULER_NAME,
        "reportingInstance": f"{SCHEDULER_NAME}-bench",
        "action": "Binding",
        "reason": "Scheduled",
        "regarding": regarding,
        "note": f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
        "type": "Normal",
    }


# -- the cluster's side --------------------------------------------------------------


class Components:
    """In-process clients acting as the ReplicaSet controller, the scheduler and the kubelets."""

    def __init__(self, process: APIServerProcess, nodes: int) -> None:
        assert process.http is not None and process.pki is not None
        app, ca = process.http.app, process.pki.ca
        self.admin = rest.Client.in_process(app, client_cert_pem=process.pki.admin.cert_pem)
        replicaset = pki.issue_service_account_cert(
            ca, namespace="kube-system", name="replicaset-controller"
        )
        self.replicaset = rest.Client.in_process(app, client_cert_pem=replicaset.cert_pem)
        scheduler = pki.issue_client_cert(ca, user=SCHEDULER_USER, groups=())
        self.scheduler = rest.Client.in_process(app, client_cert_pem=scheduler.cert_pem)
        self.binder = default_binder.DefaultBinder(self.scheduler)
        self.configs = kubelet_cmd.node_configs(nodes)
        certs = pki.issue_node_certs(ca, [config.name for config in self.configs])
        # As ``cmd.kubelet``: one transport, each node's requests under its own certificate.
        kubelet = pki.issue_simulated_kubelet_cert(ca)
        self.kubelet = rest.Client.in_process(app, client_cert_pem=kubelet.cert_pem)
        self.nodes = {
            config.name: self.kubelet.as_identity(certs[config.name].cert_pem)
            for config in self.configs
        }
        self.runtime = simulated.SimulatedRuntime(start_delay=START_DELAY)
        self.pod_ips: dict[str, str] = {}

    async def register_nodes(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        for config in self.configs:
            await self.nodes[config.name].create(rest.NODES, node_status.initial_node(config, now))

    def node_for(self, index: int) -> str:
        return self.configs[index % len(self.configs)].name

    def status_body(self, pod: Object, now: float) -> Object:
        """The kubelet's ``pods/status`` patch for ``pod`` at ``now`` (simulated runtime)."""
        uid = pod["metadata"]["uid"]
        self.runtime.sync_pod(pod, now=now)
        runtime_status = self.runtime.get_pod_status(uid, now=now)
        assert runtime_status is not None
        node = pod["spec"]["nodeName"]
        config = next(c for c in self.configs if c.name == node)
        count = len(self.pod_ips)
        pod_ip = self.pod_ips.setdefault(uid, f"10.244.{count // 250}.{2 + count % 250}")
        new = status.generate_pod_status(
            pod, runtime_status, now=now, pod_ip=pod_ip, host_ip=config.internal_ip
        )
        return status.status_patch(pod, new)

    async def aclose(self) -> None:
        for client in (self.admin, self.replicaset, self.scheduler, self.kubelet):
            await client.aclose()


async def owner_replicaset(components: Components, namespace: str) -> Object:
    """The Deployment created and defaulted, and the ReplicaSet its controller would make."""
    await components.admin.create(
        rest.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    # What the ServiceAccount controller adds to every new namespace.
    await components.admin.create(
        rest.SERVICEACCOUNTS,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        namespace=namespace,
    )
    created = await components.admin.create(rest.DEPLOYMENTS, deployment(namespace))
    rs = deployment_util.new_replica_set(created, replicas=0, revision="1")
    return await components.admin.create(rest.REPLICASETS, rs, namespace=namespace)


# -- measuring -----------------------------------------------------------------------


async def settle() -> None:
    """Let the tasks a request left behind (watch cache, listers) run to the end."""
    for _ in range(_IDLE_STEPS):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)
    for _ in range(_IDLE_STEPS):
        await asyncio.sleep(0)


async def phase(
    calls: Sequence[Callable[[], Awaitable[Object | None]]], concurrency: int
) -> tuple[float, list[Object | None]]:
    """Run ``calls`` ``concurrency`` at a time; (CPU seconds, answers in order)."""
    answers: list[Object | None] = [None] * len(calls)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(calls):
            index = next_index
            next_index += 1
            answers[index] = await calls[index]()

    await settle()
    began = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await settle()
    return time.process_time() - began, answers


async def one_round(
    components: Components, namespace: str, plan: Plan, profiler: cProfile.Profile | None
) -> dict[str, float]:
    """Every request of ``plan.pods`` pods' lives; CPU µs per request of each kind."""
    rs = await owner_replicaset(components, namespace)
    template = rs["spec"]["template"]
    ref = controller_ref.owner_reference(rs, api_version="apps/v1", kind="ReplicaSet")
    bodies = [
        pod_control.pod_from_template(template, owner=rs, owner_ref=ref) for _ in range(plan.pods)
    ]
    cpu: dict[str, float] = {}
    # Each round starts from the same collector state: what earlier rounds left
    # (every pod in the watch cache) is not re-scanned by this round's collections.
    gc.collect()
    gc.freeze()

    def timed(kind: str, seconds: float) -> None:
        cpu[kind] = round(seconds / plan.pods * 1e6, 1)

    if profiler is not None:
        profiler.enable()
    seconds, created = await phase(
        [_create(components.replicaset, rest.PODS, body, namespace) for body in bodies],
        plan.concurrency,
    )
    timed("create_pod", seconds)
    pods = [answer for answer in created if answer is not None]
    nodes = [components.node_for(i) for i in range(len(pods))]
    seconds, _ = await phase(
        [_bind(components.binder, pod, node) for pod, node in zip(pods, nodes, strict=True)],
        plan.concurrency,
    )
    timed("create_binding", seconds)
    scheduled = [scheduled_event(pod, node) for pod, node in zip(pods, nodes, strict=True)]
    seconds, _ = await phase(
        [_create(components.scheduler, events.EVENTS_V1, event, namespace) for event in scheduled],
        plan.concurrency,
    )
    timed("create_event", seconds)
    if profiler is not None:
        profiler.disable()
    bound = await _pods_as_stored(components, namespace)
    now = time.time()
    for kind, at in (("update_status_creating", now), ("update_status_running", now + 2)):
        writes = [
            _update_status(
                components.nodes[pod["spec"]["nodeName"]], pod, components.status_body(pod, at)
            )
            for pod in bound
        ]
        if profiler is not None:
            profiler.enable()
        seconds, answers = await phase(writes, plan.concurrency)
        if profiler is not None:
            profiler.disable()
        timed(kind, seconds)
        bound = [answer for answer in answers if answer is not None]
    _check_running(bound, plan.pods)
    cpu["pod_lifecycle"] = round(sum(cpu[kind] for kind in KINDS), 1)
    return cpu


def _create(
    client: rest.Client, resource: rest.Resource, body: Object, namespace: str
) -> Callable[[], Awaitable[Object]]:
    async def create() -> Object:
        # An API server without upstream's RetryGenerateName answers a taken
        # generated name with AlreadyExists; the controller creates another pod.
        for _ in range(3):
            try:
                return await client.create(resource, body, namespace=namespace)
            except rest.ApiError as exc:
                if exc.code != 409 or not body["metadata"].get("generateName"):
                    raise
        return await client.create(resource, body, namespace=namespace)

    return create


def _bind(
    binder: default_binder.DefaultBinder, pod: Object, node: str
) -> Callable[[], Awaitable[None]]:
    return lambda: binder.bind(pod, node)


def _update_status(
    client: rest.Client, pod: Object, patch: Object
) -> Callable[[], Awaitable[Object]]:
    """The kubelet's status write: a strategic merge PATCH of ``pods/status``."""
    meta = pod["metadata"]
    path = rest.PODS.path(namespace=meta["namespace"], name=meta["name"], subresource="status")
    content_type = rest.PATCH_CONTENT_TYPES["strategic"]
    return lambda: client.request("PATCH", path, body=patch, content_type=content_type)


async def _pods_as_stored(components: Components, namespace: str) -> list[Object]:
    """The bound pods as the kubelet's informer holds them (from watch events: with kind)."""
    listed = await components.admin.list_all(rest.PODS, namespace=namespace)
    return [{"kind": "Pod", "apiVersion": "v1", **pod} for pod in listed.get("items") or ()]


def _check_running(pods: list[Object], expected: int) -> None:
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    if len(running) != expected:
        raise RuntimeError(f"{len(running)} of {expected} pods Running after the kubelet's writes")


# -- running -------------------------------------------------------------------------


async def run(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kj-pod-lifecycle-") as directory:
        gc.disable()  # as ``kajitori up`` starts: no collections while building
        process = APIServerProcess(APIServerConfig(data_dir=Path(directory), port=0))
        await process.start()
        gc.enable()
        cli_main.tune_gc()  # ``kajitori up``'s settings once serving
        components = Components(process, plan.nodes)
        try:
            await components.register_nodes()
            return await _rounds(components, plan)
        finally:
            await components.aclose()
            await process.stop()


async def _rounds(components: Components, plan: Plan) -> dict[str, Any]:
    warmup = dataclasses.replace(plan, pods=min(plan.pods, 200))
    await one_round(components, "bench-lifecycle-warmup", warmup, None)
    rounds: list[dict[str, float]] = []
    profiler = cProfile.Profile(time.thread_time) if plan.profile is not None else None
    for index in range(plan.rounds):
        contention = common.Contention()
        last = index == plan.rounds - 1
        figures = await one_round(
            components, f"bench-lifecycle-{index}", plan, profiler if last else None
        )
        figures["other_cpu_cores"] = contention.other_cpu_cores()
        rounds.append(figures)
    if profiler is not None and plan.profile is not None:
        profiler.dump_stats(str(plan.profile))
    median = {
        kind: round(statistics.median(r[kind] for r in rounds), 1)
        for kind in (*KINDS, "pod_lifecycle")
    }
    return {"rounds": rounds, "median_cpu_us": median}


def report(plan: Plan, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "benchmark": "pod_lifecycle",
        "plan": {
            "pods": plan.pods,
            "rounds": plan.rounds,
            "concurrency": plan.concurrency,
            "nodes": plan.nodes,
            "profiled": plan.profile is not None,
        },
        "machine": common.machine(),
        "unit": "server-process CPU microseconds per request (per pod for pod_lifecycle)",
        **result,
    }


def print_table(data: dict[str, Any]) -> None:
    rounds = data["rounds"]
    header = f"{'request (CPU µs)':<26}{'median':>9}" + "".join(
        f"{f'r{i + 1}':>9}" for i in range(len(rounds))
    )
    print(header)
    for kind in (*KINDS, "pod_lifecycle"):
        cells = "".join(f"{r[kind]:>9.0f}" for r in rounds)
        print(f"{kind:<26}{data['median_cpu_us'][kind]:>9.0f}{cells}")
    others = "".join(f"{r['other_cpu_cores']:>9.2f}" for r in rounds)
    print(f"{'other CPU (cores)':<26}{'':>9}{others}")


def parse(argv: Sequence[str]) -> tuple[Plan, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench.pod_lifecycle", description=__doc__)
    parser.add_argument("--pods", type=int, default=2000, help="pods per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests at once (16)")
    parser.add_argument("--nodes", type=int, default=10, help="nodes the pods spread over (10)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the last round here")
    parser.add_argument("--output", type=Path, help="JSON report path (default bench/results/)")
    args = parser.parse_args(argv)
    plan = Plan(
        pods=args.pods,
        rounds=args.rounds,
        concurrency=args.concurrency,
        nodes=args.nodes,
        profile=args.profile,
    )
    return plan, args.output


def main(argv: Sequence[str] | None = None) -> int:
    plan, output = parse(sys.argv[1:] if argv is None else argv)
    result = asyncio.run(run(plan))
    data = report(plan, result)
    print_table(data)
    if output is None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        RESULTS_DIR.mkdir(exist_ok=True)
        output = RESULTS_DIR / f"pod_lifecycle-{stamp}.json"
    output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
