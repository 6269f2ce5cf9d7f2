"""The Events a pod's life writes, through the real API, the same in process and over HTTPS.

A ReplicaSet's three pods are created, scheduled, run on two simulated nodes
and scaled away by the real components, wired as ``kajitori up`` wires them
(each calling the API server's app directly) or as the split topology runs
them (``kajitori controller-manager``, ``kajitori scheduler`` and ``kajitori
kubelet --nodes 2`` speaking HTTPS). Either way the Events are upstream's,
one set per pod and none depending on how fast the run went (decision 0058):
the ReplicaSet controller's ``SuccessfulCreate``/``SuccessfulDelete``, the
scheduler's ``Scheduled``, and the kubelet's ``Pulling`` (a node's first pull
of the image), ``Pulled``, ``Created``, ``Started`` and ``Killing``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd import controller_manager, kubelet, scheduler
from kajitori.cmd.apiserver import APIServerProcess

Object = dict[str, Any]
Tally = dict[tuple[str, str, str], tuple[int, int]]  # (source, kind, reason) → (Events, count)

CONTROLLERS = ("serviceaccount", "nodeipam", "replicaset")
NODES = 2
REPLICAS = 3
IMAGE = "registry.example/life:1"


@contextlib.asynccontextmanager
async def in_process(apiserver: APIServerProcess) -> AsyncIterator[None]:
    """The components of ``kajitori up``, calling the API server's ASGI app."""
    assert apiserver.http is not None and apiserver.pki is not None
    app, ca = apiserver.http.app, apiserver.pki.ca
    manager = controller_manager.start_in_process(app, ca, controllers=CONTROLLERS)
    default_scheduler = scheduler.start_in_process(app, ca)
    host = await kubelet.start_in_process(app, ca, nodes=NODES, serve_api=False)
    try:
        yield
    finally:
        await kubelet.stop(host)
        await scheduler.stop(default_scheduler)
        await controller_manager.stop(manager)


@contextlib.asynccontextmanager
async def over_https(apiserver: APIServerProcess) -> AsyncIterator[None]:
    """The split topology's components, each with its kubeconfig, over HTTPS (no election)."""
    config = apiserver.config
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            controller_manager.run(
                config.kubeconfig_path, stop, controllers=CONTROLLERS, election=None
            )
        ),
        asyncio.create_task(scheduler.run(config.kubeconfig_path, stop, election=None)),
        asyncio.create_task(
            kubelet.run_nodes(
                config.node_simulator_kubeconfig_path, kubelet.node_configs(NODES), stop
            )
        ),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


TOPOLOGIES: dict[str, Callable[[APIServerProcess], contextlib.AbstractAsyncContextManager[None]]]
TOPOLOGIES = {"in-process": in_process, "https": over_https}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
async def test_a_pods_life_writes_upstreams_events_whatever_the_transport(
    apiserver: APIServerProcess, admin: rest.Client, topology: str
) -> None:
    """Per pod: Scheduled, Pulled, Created, Started, Killing and the ReplicaSet's two."""
    async with TOPOLOGIES[topology](apiserver):
        # Pods only once they can be created and placed: no FailedCreate, no FailedScheduling.
        await eventually(lambda: ready_nodes(admin), NODES)
        await eventually(lambda: service_accounts(admin), 1)
        await admin.create(rest.REPLICASETS, replica_set(REPLICAS), namespace="default")
        running = await eventually(lambda: pods_in_phase("Running", admin), REPLICAS)
        nodes = {pod["spec"]["nodeName"] for pod in running}
        await admin.patch(rest.REPLICASETS, "life", {"spec": {"replicas": 0}}, namespace="default")
        await eventually(lambda: pods_in_phase(None, admin), 0)
        per_pod = {"Scheduled", "Pulled", "Created", "Started", "Killing"}
        expected: Tally = {
            ("replicaset-controller", "ReplicaSet", "SuccessfulCreate"): (REPLICAS, REPLICAS),
            ("replicaset-controller", "ReplicaSet", "SuccessfulDelete"): (REPLICAS, REPLICAS),
            # One pull per node that runs a pod; the node's other pods find the image present.
            ("kubelet", "Pod", "Pulling"): (len(nodes), len(nodes)),
            **{(source(r), "Pod", r): (REPLICAS, REPLICAS) for r in per_pod},
        }
        tally = await eventually(lambda: events_tally(admin), expected)
    assert tally == expected
    present = await admin.list(rest.EVENTS, namespace="default")
    pulled = sorted(e["message"] for e in present["items"] if e["reason"] == "Pulled")
    assert pulled.count(f'Container image "{IMAGE}" already present on machine') == (
        REPLICAS - len(nodes)
    )


def source(reason: str) -> str:
    return "default-scheduler" if reason == "Scheduled" else "kubelet"


def replica_set(replicas: int) -> Object:
    labels = {"app": "life"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "life"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": IMAGE}]},
            },
        },
    }


async def pods_in_phase(phase: str | None, admin: rest.Client) -> list[Object]:
    """The ReplicaSet's pods in ``phase`` (``None``: all of them, whatever their phase)."""
    listed = await admin.list(rest.PODS, namespace="default", label_selector="app=life")
    return [p for p in listed["items"] if phase is None or p["status"].get("phase") == phase]


async def ready_nodes(admin: rest.Client) -> list[Object]:
    """Nodes Ready with a pod CIDR (node IPAM's), where the kubelet starts pods."""
    listed = await admin.list(rest.NODES)
    return [
        node
        for node in listed["items"]
        if node["spec"].get("podCIDR")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node["status"].get("conditions") or ()
        )
    ]


async def service_accounts(admin: rest.Client) -> list[Object]:
    """``default/default``, which ServiceAccount admission wants before a pod is created."""
    listed = await admin.list(rest.SERVICEACCOUNTS, namespace="default")
    return [a for a in listed["items"] if a["metadata"]["name"] == "default"]


async def events_tally(admin: rest.Client) -> Tally:
    """Events in ``default`` by (source component, involved kind, reason): (Events, counts)."""
    listed = await admin.list(rest.EVENTS, namespace="default")
    objects: collections.Counter[tuple[str, str, str]] = collections.Counter()
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for event in listed["items"]:
        if event["involvedObject"].get("kind") == "Node":
            continue  # the nodes' own start-up events are not a pod's
        # The scheduler's events.k8s.io Events name their reporter only there (kubectl's fallback).
        source = event["source"].get("component") or event["reportingComponent"]
        key = (source, event["involvedObject"]["kind"], event["reason"])
        objects[key] += 1
        counts[key] += event.get("count") or 1
    return {key: (objects[key], counts[key]) for key in objects}


async def eventually(check: Callable[[], Awaitable[Any]], want: Any, timeout: float = 30.0) -> Any:
    """``await check()`` until it answers ``want`` (a list: of that length); its last answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if (len(got) if isinstance(got, list) and isinstance(want, int) else got) == want:
            return got
        if asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.1)
