"""Who reports what, as upstream: each controller's own source, the scheduler on events.k8s.io.

Through the real API server and the real kubectl (decision 0060): a
Deployment's rollout on a one-node cluster (``kajitori up``'s components)
writes ``ScalingReplicaSet`` from ``deployment-controller``,
``SuccessfulCreate`` from ``replicaset-controller`` and the scheduler's
``Scheduled`` as an events.k8s.io/v1 Event (``reportingController
default-scheduler``, action ``Binding``), which ``kubectl get events`` and
``kubectl describe pod`` read through core/v1 as they read upstream's. A pod
that fits nowhere fails again and again: its ``FailedScheduling`` repeats
become one EventSeries, counted in memory and written when it ends.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.client import events, rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.scheduler import queue, scheduler
from kajitori.testing import inprocess
from kajitori.testing.cluster import wait_until

Object = dict[str, Any]
NODE = "kajitori-worker"  # the one node of `kajitori up --nodes 1`
SCHEDULER_INSTANCE = f"default-scheduler-{socket.gethostname()}"

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: registry.example/web:1}]}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[inprocess.InProcessCluster]:
    data_dir = tmp_path_factory.mktemp("sources")
    with inprocess.InProcessCluster(data_dir, inprocess.ClusterOptions(nodes=1)) as running:
        running.kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
        running.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        yield running


def listed(cluster: inprocess.InProcessCluster, resource: str, reason: str) -> list[Object]:
    out = cluster.kubectl("get", resource, "-n", "default", "-o", "json").stdout
    return [e for e in json.loads(out)["items"] if e["reason"] == reason]


def one(cluster: inprocess.InProcessCluster, resource: str, reason: str) -> Object:
    found: list[Object] = []

    def present() -> bool:
        found[:] = listed(cluster, resource, reason)
        return bool(found)

    wait_until(present, timeout=30.0, what=f"a {reason} Event")
    assert len(found) == 1, found
    return found[0]


def test_each_controller_reports_under_its_own_name(cluster: inprocess.InProcessCluster) -> None:
    """ScalingReplicaSet from deployment-controller, SuccessfulCreate from replicaset-controller."""
    scaled = one(cluster, "events", "ScalingReplicaSet")
    assert scaled["source"] == {"component": "deployment-controller"}
    assert scaled["reportingComponent"] == "deployment-controller"
    assert scaled["involvedObject"]["kind"] == "Deployment"
    created = one(cluster, "events", "SuccessfulCreate")
    assert created["source"] == {"component": "replicaset-controller"}
    assert created["involvedObject"]["kind"] == "ReplicaSet"
    described = cluster.kubectl("describe", "deployment", "web").stdout
    assert "ScalingReplicaSet" in described.split("Events:")[1]
    assert "deployment-controller" in described.split("Events:")[1]


def test_scheduled_is_an_events_k8s_io_event(cluster: inprocess.InProcessCluster) -> None:
    """reportingController/Instance, action Binding, a note; no deprecated fields."""
    event = one(cluster, "events.v1.events.k8s.io", "Scheduled")
    pod = event["regarding"]["name"]
    assert event["apiVersion"] == "events.k8s.io/v1"
    assert (event["reportingController"], event["reportingInstance"], event["action"]) == (
        "default-scheduler",
        SCHEDULER_INSTANCE,
        "Binding",
    )
    assert event["note"] == f"Successfully assigned default/{pod} to {NODE}"
    assert event["type"] == "Normal" and event["eventTime"].endswith("Z")
    assert event["regarding"]["kind"] == "Pod" and event["regarding"]["uid"]
    assert event["deprecatedSource"] == {}
    assert "deprecatedCount" not in event and "series" not in event


def test_kubectl_reads_the_scheduler_event_through_core_v1(
    cluster: inprocess.InProcessCluster,
) -> None:
    """The same object as a core Event: the reporter in SOURCE, count 1, in describe's From."""
    core = one(cluster, "events", "Scheduled")
    assert core["apiVersion"] == "v1"
    assert core["source"] == {} and core["reportingComponent"] == "default-scheduler"
    assert core["firstTimestamp"] is None and "count" not in core
    assert core["message"].startswith("Successfully assigned default/web-")
    wide = cluster.kubectl(
        "get", "events", "-o", "wide", "--field-selector", "reason=Scheduled"
    ).stdout.splitlines()
    assert wide[0].split()[:6] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT"]
    row = wide[1]
    assert f"default-scheduler, {SCHEDULER_INSTANCE}" in row
    assert row.split()[-2:] == ["1", core["metadata"]["name"]]  # COUNT NAME
    pod = core["involvedObject"]["name"]
    described = cluster.kubectl("describe", "pod", pod).stdout.split("Events:")[1]
    scheduled = next(line for line in described.splitlines() if "Scheduled" in line)
    assert scheduled.split()[0:2] == ["Normal", "Scheduled"]
    assert f"default-scheduler  Successfully assigned default/{pod} to {NODE}" in scheduled


async def test_failed_scheduling_repeats_become_an_event_series(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """The pod's repeats: one Event whose series counts them, as describe shows (x2 over ...)."""
    retry_fast = queue.SchedulingQueue(initial_backoff=0.01, max_backoff=0.01, max_unschedulable=0)
    component = scheduler.Scheduler(admin, scheduling_queue_=retry_fast)
    await admin.create(rest.SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace="default")
    component.start()
    try:
        await admin.create(rest.PODS, stuck_pod(), namespace="default")
        series = await eventually(lambda: failed_scheduling(admin), lambda es: any_series(es))
    finally:
        await component.stop()
    event = next(e for e in series if e.get("series"))
    assert event["series"]["count"] == 2 and event["series"]["lastObservedTime"].endswith("Z")
    assert event["note"] == "no nodes available to schedule pods"  # upstream's ErrNoNodesAvailable
    assert (event["action"], event["type"]) == ("Scheduling", "Warning")
    # The first failure's pod had another resourceVersion: at most one Event before the series.
    assert len(series) <= 2
    described = await run_kubectl(apiserver.config.kubeconfig_path, "describe", "pod", "stuck")
    lines = [line for line in described.splitlines() if "FailedScheduling" in line]
    assert any("(x2 over " in line and "default-scheduler" in line for line in lines), lines


async def test_a_series_counts_in_memory_and_is_written_when_it_ends(admin: rest.Client) -> None:
    """Create, then series count 2 at once; the 3rd and 4th only when the series ends."""
    broadcaster = events.EventsBroadcaster(admin)
    now = [100.0]
    broadcaster.clock = lambda: now[0]
    recorder = broadcaster.new_recorder("test-controller", "test-controller-a")
    subject = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u1"}}
    broadcaster.start()
    try:
        for attempt in range(4):
            recorder.event(subject, "Warning", "Failed", "Checking", f"attempt {attempt}")
        await broadcaster.flush()
        written = await node_events(admin)
        assert [(e["note"], e["series"]["count"]) for e in written] == [("attempt 0", 2)]
        now[0] += events.SERIES_FINISH
        broadcaster.finish_series()
        await broadcaster.flush()
        assert [e["series"]["count"] for e in await node_events(admin)] == [4]
        recorder.event(subject, "Warning", "Failed", "Checking", "after the end")
        await broadcaster.flush()
    finally:
        await broadcaster.stop()
    notes = sorted(e["note"] for e in await node_events(admin))
    assert notes == ["after the end", "attempt 0"]  # a new Event once the series ended
    assert all(e["metadata"]["namespace"] == "default" for e in await node_events(admin))


def stuck_pod() -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stuck"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/stuck:1"}]},
    }


async def failed_scheduling(admin: rest.Client) -> list[Object]:
    listed = await admin.list(events.EVENTS_V1, namespace="default")
    return [e for e in listed["items"] if e["reason"] == "FailedScheduling"]


def any_series(found: list[Object]) -> bool:
    return any(e.get("series") for e in found)


async def node_events(admin: rest.Client) -> list[Object]:
    listed = await admin.list(events.EVENTS_V1, namespace="default")
    return [e for e in listed["items"] if e["regarding"].get("name") == "n1"]


async def eventually(
    check: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 30.0
) -> Any:
    """``await check()`` until ``done`` says yes (or the timeout); its last answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if done(got) or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.1)


async def run_kubectl(kubeconfig: Path, *args: str) -> str:
    """The real kubectl, without blocking the loop the API server runs on."""
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
