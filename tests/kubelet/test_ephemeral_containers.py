"""Ephemeral containers in the simulated runtime and in the status the kubelet writes.

Upstream's kubelet starts an ephemeral container added to a running pod,
never restarts it, and reports it in ``ephemeralContainerStatuses`` without
letting it count for the phase or readiness.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.kubelet import status
from kajitori.kubelet.runtimes import interface, simulated

T0 = 1_700_000_000.0
Object = dict[str, Any]


def _pod(**annotations: str) -> Object:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": annotations},
        "spec": {
            "nodeName": "n1",
            "restartPolicy": "Always",
            "containers": [{"name": "c", "image": "nginx"}],
        },
    }


def _with_debugger(pod: Object, name: str = "debugger") -> Object:
    debugged = copy.deepcopy(pod)
    debugged["spec"].setdefault("ephemeralContainers", []).append(
        {"name": name, "image": "busybox"}
    )
    return debugged


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(
        self, pod: Object, event_type: str, reason: str, message: str, /, *, field_path: str = ""
    ) -> None:
        self.seen.append((reason, field_path))


async def _no_secret(node: str, namespace: str, name: str) -> Object | None:
    return None


def _runtime(events: _Events | None = None) -> simulated.SimulatedRuntime:
    runtime = simulated.SimulatedRuntime(start_delay=1.0)
    if events is not None:
        runtime.set_kubelet_hooks(interface.KubeletHooks(events, _no_secret, lambda node: ""))
    return runtime


def _status(runtime: simulated.SimulatedRuntime, at: float) -> interface.PodStatus:
    found = runtime.get_pod_status("u1", now=T0 + at)
    assert found is not None
    return found


def test_an_added_ephemeral_container_is_created_then_runs() -> None:
    runtime = _runtime()
    pod = _pod()
    runtime.sync_pod(pod, now=T0)
    assert _status(runtime, 5).ephemeral_containers == ()
    runtime.sync_pod(_with_debugger(pod), now=T0 + 10)
    (creating,) = _status(runtime, 10.5).ephemeral_containers
    assert (creating.name, creating.state, creating.reason) == (
        "debugger",
        "waiting",
        "ContainerCreating",
    )
    assert _status(runtime, 10.5).next_change == T0 + 11  # the kubelet looks again then
    (running,) = _status(runtime, 500).ephemeral_containers
    assert (running.state, running.started_at, running.restart_count) == ("running", T0 + 11, 0)
    assert running.image == "docker.io/library/busybox:latest"


def test_it_never_exits_with_the_pod_containers_and_stops_with_the_pod() -> None:
    """The simulate-exit annotations time the pod's containers, not a debug session."""
    runtime = _runtime()
    pod = _pod(**{simulated.RUNTIME_SECONDS_ANNOTATION: "5"})
    runtime.sync_pod(pod, now=T0)
    runtime.sync_pod(_with_debugger(pod), now=T0)
    later = _status(runtime, 8)
    assert later.containers[0].reason == "CrashLoopBackOff"  # restarted per restartPolicy
    assert later.ephemeral_containers[0].state == "running"
    runtime.kill_pod("u1", now=T0 + 20)
    (killed,) = _status(runtime, 30).ephemeral_containers
    assert killed.state == "terminated" and killed.termination is not None
    assert (killed.termination.exit_code, killed.termination.reason) == (0, "Completed")
    assert killed.restart_count == 0


def test_a_killed_pod_takes_no_new_ephemeral_containers() -> None:
    runtime = _runtime()
    pod = _pod()
    runtime.sync_pod(pod, now=T0)
    runtime.kill_pod("u1", now=T0 + 2)
    runtime.sync_pod(_with_debugger(pod), now=T0 + 3)
    assert _status(runtime, 10).ephemeral_containers == ()


def test_events_name_the_ephemeral_container() -> None:
    events = _Events()
    runtime = _runtime(events)
    pod = _pod()
    runtime.sync_pod(pod, now=T0)
    runtime.sync_pod(pod, now=T0 + 2)
    events.seen.clear()
    debugged = _with_debugger(pod)
    runtime.sync_pod(debugged, now=T0 + 3)
    runtime.sync_pod(debugged, now=T0 + 5)
    runtime.sync_pod(debugged, now=T0 + 6)  # announced once
    path = "spec.ephemeralContainers{debugger}"
    assert events.seen == [
        ("Pulling", path),
        ("Pulled", path),
        ("Created", path),
        ("Started", path),
    ]
    events.seen.clear()
    runtime.kill_pod("u1", now=T0 + 7)
    assert ("Killing", path) in events.seen and ("Killing", "spec.containers{c}") in events.seen


def test_status_reports_them_without_readiness_or_phase() -> None:
    runtime = _runtime()
    pod = _pod()
    runtime.sync_pod(pod, now=T0)
    debugged = _with_debugger(pod)
    runtime.sync_pod(debugged, now=T0 + 10)
    pod_status = _status(runtime, 10.5)  # the debugger is still being created
    new = status.generate_pod_status(
        debugged, pod_status, now=T0 + 10.5, pod_ip="10.0.0.5", host_ip="192.168.0.2"
    )
    assert new["phase"] == "Running"
    ready = {c["type"]: c["status"] for c in new["conditions"]}
    assert ready["Ready"] == "True" and ready["ContainersReady"] == "True"
    (entry,) = new["ephemeralContainerStatuses"]
    assert entry["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert entry["ready"] is False and "started" not in entry
    plain = _runtime()
    plain.sync_pod(pod, now=T0)
    without = status.generate_pod_status(
        pod, _status(plain, 5), now=T0 + 5, pod_ip="10.0.0.5", host_ip="192.168.0.2"
    )
    assert "ephemeralContainerStatuses" not in without
