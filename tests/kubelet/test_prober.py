"""The prober: the probe worker's state machine on a fake clock, and the manager over a fake runtime."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from tests.kubelet.runtimes.oci.helpers import wait_for
from tests.kubelet.test_kubelet import eventually

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet, prober, status
from kajitori.kubelet.prober import Result, Worker
from kajitori.kubelet.runtimes import interface, simulated

Object = dict[str, Any]


def spec(**fields: Any) -> prober.ProbeSpec:
    return prober.ProbeSpec.from_probe({"exec": {"command": ["true"]}, **fields})


def test_defaults_are_upstreams() -> None:
    defaults = spec()
    assert (defaults.initial_delay, defaults.period, defaults.timeout) == (0.0, 10.0, 1.0)
    assert (defaults.success_threshold, defaults.failure_threshold) == (1, 3)
    assert defaults.action == {"exec": {"command": ["true"]}}


def test_initial_results_readiness_failed_liveness_alive_startup_unknown() -> None:
    assert Worker("readiness", spec(), 0.0).result == Result.FAILURE
    assert Worker("liveness", spec(), 0.0).result == Result.SUCCESS
    assert Worker("startup", spec(), 0.0).result == Result.UNKNOWN


def test_initial_delay_then_every_period() -> None:
    worker = Worker("readiness", spec(initialDelaySeconds=5, periodSeconds=2), started_at=100.0)
    assert not worker.due(104.9)
    assert worker.wait(104.0) == 1.0
    assert worker.due(105.0)
    worker.record(Result.SUCCESS, 105.0)
    assert not worker.due(106.9)
    assert worker.due(107.0)


def test_readiness_needs_success_threshold_in_a_row_and_failure_threshold_to_flip_back() -> None:
    worker = Worker("readiness", spec(successThreshold=2, failureThreshold=2), 0.0)
    assert worker.record(Result.SUCCESS, 1.0) == prober.Verdict(changed=False, kill=False)
    assert worker.record(Result.FAILURE, 2.0).changed is False  # resets the run
    assert worker.record(Result.SUCCESS, 3.0).changed is False
    assert worker.record(Result.SUCCESS, 4.0) == prober.Verdict(changed=True, kill=False)
    assert worker.result == Result.SUCCESS
    assert worker.record(Result.FAILURE, 5.0).changed is False
    assert worker.record(Result.FAILURE, 6.0) == prober.Verdict(changed=True, kill=False)
    assert worker.result == Result.FAILURE
    assert not worker.on_hold  # readiness never kills


def test_liveness_kills_after_failure_threshold_and_holds() -> None:
    worker = Worker("liveness", spec(failureThreshold=3), 0.0)
    assert not worker.record(Result.FAILURE, 1.0).kill
    assert not worker.record(Result.SUCCESS, 2.0).kill  # a success in between starts over
    assert not worker.record(Result.FAILURE, 3.0).kill
    assert not worker.record(Result.FAILURE, 4.0).kill
    verdict = worker.record(Result.FAILURE, 5.0)
    assert verdict == prober.Verdict(changed=True, kill=True)
    assert worker.on_hold and worker.wait(6.0) is None and not worker.due(1e9)


def test_startup_failure_kills_and_success_starts_the_container() -> None:
    failing = Worker("startup", spec(failureThreshold=1), 0.0)
    assert failing.record(Result.FAILURE, 1.0).kill
    workers: dict[prober.Kind, Worker] = {
        "startup": Worker("startup", spec(), 0.0),
        "readiness": Worker("readiness", spec(), 0.0),
    }
    assert not prober.container_started(workers, running=True)
    workers["startup"].record(Result.SUCCESS, 1.0)
    assert prober.container_started(workers, running=True)
    assert not prober.container_ready(workers, running=True)  # readiness still failing
    workers["readiness"].record(Result.SUCCESS, 2.0)
    assert prober.container_ready(workers, running=True)
    assert not prober.container_ready(workers, running=False)


def test_probes_of_reads_all_three_kinds() -> None:
    container = {
        "name": "c",
        "livenessProbe": {"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 3},
        "readinessProbe": {"httpGet": {"port": 80, "path": "/"}, "periodSeconds": 1},
    }
    found = prober.probes_of(container)
    assert set(found) == {"liveness", "readiness"}
    assert found["liveness"].termination_grace == 3.0
    assert found["readiness"].period == 1.0


class FakeRuntime:
    """Answers probes from a table the test changes; records kills."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], bool] = {}  # (container, first action key) → ok
        self.kills: list[tuple[str, float | None]] = []
        self.probed: list[str] = []

    async def probe(
        self, uid: str, container: str, action: Object, *, timeout: float
    ) -> tuple[bool, str]:
        key = next(iter(action["exec"]["command"]))
        self.probed.append(key)
        ok = self.answers.get((container, key), False)
        return ok, "" if ok else f"{key} said no"

    def kill_container(
        self, uid: str, container: str, *, grace_period: float | None, reason: str
    ) -> None:
        self.kills.append((container, grace_period))


def running(name: str, container_id: str = "c-0") -> interface.ContainerStatus:
    return interface.ContainerStatus(name, "busybox", "", container_id, "running", started_at=0.0)


def probe(command: str, **fields: Any) -> Object:
    return {"exec": {"command": [command]}, "periodSeconds": 0.01, **fields}


def pod_with(**probes: Object) -> Object:
    container = {"name": "app", **{f"{kind}Probe": p for kind, p in probes.items()}}
    return {"metadata": {"uid": "u1", "name": "p"}, "spec": {"containers": [container]}}


def pod_status(*containers: interface.ContainerStatus) -> interface.PodStatus:
    return interface.PodStatus("u1", True, (), containers)


async def test_manager_readiness_drives_ready_and_pod_conditions() -> None:
    fake = FakeRuntime()
    changes: list[str] = []
    manager = prober.ProberManager(fake, on_change=changes.append)
    pod = pod_with(readiness=probe("ready"))
    try:
        manager.update(pod, pod_status(running("app")))
        applied = manager.apply(pod_status(running("app")))
        assert applied.containers[0].ready is False and applied.containers[0].started is True
        conditions = {c["type"]: c for c in status.pod_conditions("Running", applied)}
        assert conditions["Ready"]["status"] == "False"
        assert conditions["ContainersReady"]["message"] == "containers with unready status: [app]"
        fake.answers[("app", "ready")] = True
        await wait_for(lambda: changes, timeout=5.0, what="a change")
        applied = manager.apply(pod_status(running("app")))
        assert status.container_status(applied.containers[0])["ready"] is True
        conditions = {c["type"]: c for c in status.pod_conditions("Running", applied)}
        assert conditions["Ready"]["status"] == "True"
    finally:
        await manager.aclose()


async def test_manager_startup_gates_liveness_which_then_kills() -> None:
    fake = FakeRuntime()
    events: list[tuple[str, str, str, str]] = []

    def record(pod: Any, kind: str, reason: str, message: str, /, *, field_path: str = "") -> None:
        events.append((field_path, kind, reason, message))

    manager = prober.ProberManager(fake, on_change=lambda uid: None, record=record)
    pod = pod_with(
        startup=probe("started", failureThreshold=100),
        liveness=probe("alive", failureThreshold=2),
    )
    pod["spec"]["terminationGracePeriodSeconds"] = 7
    try:
        manager.update(pod, pod_status(running("app")))
        await wait_for(lambda: fake.probed.count("started") >= 3, timeout=5.0, what="startups")
        assert "alive" not in fake.probed  # liveness waits for the startup probe
        assert not manager.apply(pod_status(running("app"))).containers[0].started
        fake.answers[("app", "started")] = True
        await wait_for(lambda: fake.kills, timeout=5.0, what="a liveness kill")
        assert fake.kills == [("app", 7.0)]
        app = "spec.containers{app}"  # upstream's fieldPath: the probed container's
        assert (app, "Warning", "Unhealthy", "Liveness probe failed: alive said no") in events
        assert (
            app,
            "Normal",
            "Killing",
            "Container app failed liveness probe, will be restarted",
        ) in events
        # The next run of the container gets fresh workers (and results).
        fake.answers[("app", "alive")] = True
        manager.update(pod, pod_status(running("app", "c-1")))
        applied = manager.apply(pod_status(running("app", "c-1")))
        assert applied.containers[0].started is False
    finally:
        await manager.aclose()


async def test_manager_drops_workers_of_a_stopped_container() -> None:
    fake = FakeRuntime()
    manager = prober.ProberManager(fake, on_change=lambda uid: None)
    pod = pod_with(readiness=probe("ready"))
    manager.update(pod, pod_status(running("app")))
    stopped = dataclasses.replace(running("app"), state="terminated")
    manager.update(pod, pod_status(stopped))
    await asyncio.sleep(0)
    count = len(fake.probed)
    applied = manager.apply(pod_status(stopped))
    assert applied.containers[0].ready is False
    await asyncio.sleep(0.05)
    assert len(fake.probed) <= count + 1  # no worker keeps probing
    await manager.aclose()


def test_status_without_prober_counts_running_as_ready() -> None:
    """Simulated pods: no prober verdict, so running means ready and started, as before."""
    entry = status.container_status(running("app"))
    assert entry["ready"] is True and entry["started"] is True


async def test_simulated_pods_with_a_readiness_probe_still_become_ready(admin: rest.Client) -> None:
    """The simulated runtime runs no probes: its pods are Ready once running, as before."""
    runtime = simulated.SimulatedRuntime(start_delay=0.1)
    assert not isinstance(runtime, interface.ProbingRuntime)
    host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), runtime)
    assert host.prober is None
    await host.start()
    try:
        container = {
            "name": "c",
            "image": "registry.k8s.io/pause:3.10",
            "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1},
        }
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probed", "namespace": "default"},
            "spec": {"nodeName": "kajitori-worker", "containers": [container]},
        }
        await admin.create(rest.PODS, body, namespace="default")

        async def ready() -> Object | None:
            found = await admin.get(rest.PODS, "probed", namespace="default")
            conditions = {c["type"]: c["status"] for c in found["status"].get("conditions") or ()}
            return found if conditions.get("Ready") == "True" else None

        found = await eventually(ready)
        assert found["status"]["containerStatuses"][0]["ready"] is True
    finally:
        await host.stop()
