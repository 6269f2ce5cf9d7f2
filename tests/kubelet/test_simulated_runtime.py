"""The simulated runtime's timelines and the pod status the kubelet derives from them."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from kajitori.kubelet import status
from kajitori.kubelet.runtimes import interface, simulated

T0 = 1_700_000_000.0


def make_pod(
    *, restart_policy: str = "Always", runtime: str | None = None, code: str | None = None
) -> dict[str, Any]:
    annotations = {}
    if runtime is not None:
        annotations[simulated.RUNTIME_SECONDS_ANNOTATION] = runtime
    if code is not None:
        annotations[simulated.EXIT_CODE_ANNOTATION] = code
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": annotations},
        "spec": {"restartPolicy": restart_policy, "containers": [{"name": "c", "image": "nginx"}]},
    }


def status_at(
    pod: dict[str, Any], at: float, **runtime_args: float
) -> tuple[interface.ContainerStatus, interface.PodStatus]:
    runtime = simulated.SimulatedRuntime(**runtime_args)
    runtime.sync_pod(pod, now=T0)
    found = runtime.get_pod_status("u1", now=T0 + at)
    assert found is not None
    return found.containers[0], found


def test_a_container_is_created_then_runs_for_ever_without_annotations() -> None:
    """Waiting ContainerCreating during the start delay, then running since it ended."""
    creating, pod_status = status_at(make_pod(), 0.5, start_delay=1.0)
    assert (creating.state, creating.reason, pod_status.next_change) == (
        "waiting",
        "ContainerCreating",
        T0 + 1.0,
    )
    running, pod_status = status_at(make_pod(), 1000.0, start_delay=1.0)
    assert (running.state, running.started_at, pod_status.next_change) == (
        "running",
        T0 + 1.0,
        None,
    )
    assert running.container_id.startswith("simulated://")
    assert running.image == "docker.io/library/nginx:latest"
    assert running.image_id.startswith("docker.io/library/nginx@sha256:")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param("0", "Completed", id="zero-completed"),
        pytest.param("2", "Error", id="two-error"),
    ],
)
def test_an_exiting_container_terminates_with_its_code_and_reason(code: str, reason: str) -> None:
    """With restartPolicy Never the container ends after the runtime with the annotated code."""
    pod = make_pod(restart_policy="Never", runtime="3", code=code)
    container, _ = status_at(pod, 5.0)
    assert container.state == "terminated"
    assert container.termination is not None
    assert (container.termination.exit_code, container.termination.reason) == (int(code), reason)
    assert container.termination.finished_at == T0 + 3.0


def test_a_failing_container_backs_off_exponentially_and_counts_restarts() -> None:
    """Always: CrashLoopBackOff for base·2ⁿ seconds after each exit, restartCount +1 per run."""
    pod = make_pod(runtime="1", code="1")
    # Runs 0–1, backs off 1–3 (2 s), runs 3–4, backs off 4–8 (4 s), runs 8–9.
    timeline = [
        (0.5, "running", 0),
        (2.0, "waiting", 0),
        (3.5, "running", 1),
        (6.0, "waiting", 1),
        (8.5, "running", 2),
    ]
    for at, state, restarts in timeline:
        container, _ = status_at(pod, at, backoff_base=2.0, backoff_cap=100.0)
        assert (container.state, container.restart_count) == (state, restarts), at
    waiting, pod_status = status_at(pod, 6.0, backoff_base=2.0, backoff_cap=100.0)
    assert waiting.reason == "CrashLoopBackOff"
    assert waiting.message == "back-off 4s restarting failed container=c pod=p_ns(u1)"
    assert waiting.last_termination is not None and waiting.last_termination.exit_code == 1
    assert pod_status.next_change == T0 + 8.0


def test_the_back_off_is_capped() -> None:
    """The wait between restarts never exceeds the cap."""
    pod = make_pod(runtime="0", code="1")
    container, pod_status = status_at(pod, 1000.0, backoff_base=1.0, backoff_cap=5.0)
    assert container.restart_count > 100
    assert pod_status.next_change is not None and pod_status.next_change - T0 - 1000.0 <= 5.0


@pytest.mark.parametrize(
    ("policy", "code", "phase"),
    [
        pytest.param("Never", "0", "Succeeded", id="never-zero"),
        pytest.param("Never", "1", "Failed", id="never-nonzero"),
        pytest.param("OnFailure", "0", "Succeeded", id="onfailure-zero"),
        pytest.param("OnFailure", "1", "Running", id="onfailure-nonzero-restarts"),
        pytest.param("Always", "0", "Running", id="always-zero-restarts"),
    ],
)
def test_the_pod_phase_follows_the_restart_policy(policy: str, code: str, phase: str) -> None:
    """Upstream's getPhase over a container that exited once."""
    pod = make_pod(restart_policy=policy, runtime="1", code=code)
    _, pod_status = status_at(pod, 2.0, backoff_base=10.0)
    assert status.pod_phase(pod, pod_status) == phase


def test_a_killed_pod_stops_its_running_containers_and_changes_no_more() -> None:
    """kill_pod terminates running containers at that moment with exit code 0."""
    runtime = simulated.SimulatedRuntime()
    runtime.sync_pod(make_pod(), now=T0)
    runtime.kill_pod("u1", now=T0 + 4.0)
    found = runtime.get_pod_status("u1", now=T0 + 10.0)
    assert found is not None
    container = found.containers[0]
    assert container.state == "terminated" and container.termination is not None
    assert (container.termination.exit_code, container.termination.finished_at) == (0, T0 + 4.0)
    assert (found.sandbox_ready, found.next_change) == (False, None)
    runtime.remove_pod("u1")
    assert runtime.get_pods() == []


def test_a_running_pod_gets_upstreams_conditions_and_container_status() -> None:
    """Running and ready: all five conditions True, ready and started containers, pod IP."""
    pod = make_pod()
    _, pod_status = status_at(pod, 1.0)
    out = status.generate_pod_status(
        pod, pod_status, now=T0 + 1, pod_ip="10.244.0.2", host_ip="172.18.0.2"
    )
    assert out["phase"] == "Running"
    assert [(c["type"], c["status"]) for c in out["conditions"]] == [
        ("PodReadyToStartContainers", "True"),
        ("Initialized", "True"),
        ("Ready", "True"),
        ("ContainersReady", "True"),
        ("PodScheduled", "True"),
    ]
    (container,) = out["containerStatuses"]
    assert (container["ready"], container["started"], container["restartCount"]) == (True, True, 0)
    assert out["podIPs"] == [{"ip": "10.244.0.2"}] and out["hostIP"] == "172.18.0.2"


def test_unready_containers_are_named_and_a_completed_pod_says_so() -> None:
    """ContainersNotReady lists the containers; a finished pod's readiness reason is PodCompleted."""
    creating_pod = make_pod()
    _, creating = status_at(creating_pod, 0.0, start_delay=1.0)
    out = status.generate_pod_status(creating_pod, creating, now=T0, pod_ip="", host_ip="h")
    ready = next(c for c in out["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ContainersNotReady",
        "containers with unready status: [c]",
    )
    done_pod = make_pod(restart_policy="Never", runtime="0")
    _, done = status_at(done_pod, 1.0)
    out = status.generate_pod_status(done_pod, done, now=T0, pod_ip="", host_ip="h")
    ready = next(c for c in out["conditions"] if c["type"] == "Ready")
    assert (out["phase"], ready["reason"]) == ("Succeeded", "PodCompleted")


def test_regenerating_an_unchanged_pod_keeps_its_times() -> None:
    """Transition times and startTime carry over, so an unchanged pod is not rewritten."""
    pod = make_pod()
    _, pod_status = status_at(pod, 1.0)
    first = status.generate_pod_status(
        pod, pod_status, now=T0 + 1, pod_ip="10.244.0.2", host_ip="h"
    )
    again = status.generate_pod_status(
        {**pod, "status": first}, pod_status, now=T0 + 500, pod_ip="10.244.0.2", host_ip="h"
    )
    assert again == first


class Events:
    """The kubelet hooks a runtime records events through, keeping (pod, type, reason, message)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []
        self.paths: list[str] = []  # each event's involvedObject.fieldPath (take keeps them)

    def hooks(self) -> interface.KubeletHooks:
        async def no_secret(node: str, namespace: str, name: str) -> None:
            return None

        return interface.KubeletHooks(self._record, no_secret, lambda node: "10.244.0.0/24")

    def _record(
        self,
        pod: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        /,
        *,
        field_path: str = "",
    ) -> None:
        assert pod["spec"]["nodeName"] == "node-1"  # the kubelet picks the node's recorder by it
        self.seen.append((pod["metadata"]["name"], event_type, reason, message))
        self.paths.append(field_path)

    def take(self) -> list[tuple[str, str, str]]:
        """The events since the last take, without the pod's name."""
        taken = [(kind, reason, message) for _, kind, reason, message in self.seen]
        self.seen.clear()
        return taken


def on_node(pod: dict[str, Any], name: str = "p", uid: str = "u1") -> dict[str, Any]:
    pod["metadata"].update(name=name, uid=uid)
    pod["spec"]["nodeName"] = "node-1"
    return pod


def test_a_pods_life_records_upstreams_events_in_order() -> None:
    """Pulling, then Pulled/Created/Started once it runs, BackOff per exit, Killing on kill."""
    events = Events()
    runtime = simulated.SimulatedRuntime(start_delay=1.5, backoff_base=10.0)
    runtime.set_kubelet_hooks(events.hooks())
    pod = on_node(make_pod(runtime="5", code="1"))
    runtime.sync_pod(pod, now=T0)
    assert events.take() == [("Normal", "Pulling", 'Pulling image "nginx"')]
    runtime.sync_pod(pod, now=T0 + 0.5)  # still creating: nothing new
    assert events.take() == []
    runtime.sync_pod(pod, now=T0 + 1.5)
    size = simulated.image_size("nginx")
    assert events.take() == [
        (
            "Normal",
            "Pulled",
            f'Successfully pulled image "nginx" in 1.5s (1.5s including waiting). '
            f"Image size: {size} bytes.",
        ),
        ("Normal", "Created", "Created container: c"),
        ("Normal", "Started", "Started container c"),
    ]
    runtime.sync_pod(pod, now=T0 + 6.5)  # exited at 6.5, back-off until 16.5
    runtime.sync_pod(pod, now=T0 + 10.0)
    assert events.take() == [
        ("Warning", "BackOff", "Back-off restarting failed container c in pod p_ns(u1)")
    ]
    runtime.sync_pod(pod, now=T0 + 16.5)
    assert events.take() == [
        ("Normal", "Pulled", 'Container image "nginx" already present on machine'),
        ("Normal", "Created", "Created container: c"),
        ("Normal", "Started", "Started container c"),
    ]
    runtime.kill_pod("u1", now=T0 + 17.0)
    runtime.kill_pod("u1", now=T0 + 18.0)
    runtime.sync_pod(pod, now=T0 + 19.0)
    assert events.take() == [("Normal", "Killing", "Stopping container c")]
    # Every one is about the container, as upstream's GenerateContainerRef makes it.
    assert events.paths == ["spec.containers{c}"] * 9


def test_a_node_pulls_an_image_once_and_init_containers_are_announced_first() -> None:
    """The node's second pod finds the image present; init containers come before the rest."""
    events = Events()
    runtime = simulated.SimulatedRuntime()
    runtime.set_kubelet_hooks(events.hooks())
    runtime.sync_pod(on_node(make_pod()), now=T0)
    assert [reason for _, reason, _ in events.take()] == ["Pulling", "Pulled", "Created", "Started"]
    second = on_node(make_pod(), name="q", uid="u2")
    second["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    runtime.sync_pod(second, now=T0 + 1.0)
    assert {name for name, *_ in events.seen} == {"q"}
    assert events.take() == [
        ("Normal", "Pulling", 'Pulling image "busybox"'),
        (
            "Normal",
            "Pulled",
            f'Successfully pulled image "busybox" in 0s (0s including waiting). '
            f"Image size: {simulated.image_size('busybox')} bytes.",
        ),
        ("Normal", "Created", "Created container: init"),
        ("Normal", "Started", "Started container init"),
        ("Normal", "Pulled", 'Container image "nginx" already present on machine'),
        ("Normal", "Created", "Created container: c"),
        ("Normal", "Started", "Started container c"),
    ]
    assert events.paths[-7:] == ["spec.initContainers{init}"] * 4 + ["spec.containers{c}"] * 3


def test_under_always_every_run_pulls_and_without_hooks_nothing_is_recorded() -> None:
    """imagePullPolicy Always pulls again at each restart (at once); no hooks, no events."""
    events = Events()
    runtime = simulated.SimulatedRuntime(backoff_base=10.0)
    runtime.set_kubelet_hooks(events.hooks())
    pod = on_node(make_pod(runtime="5", code="1"))
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    runtime.sync_pod(pod, now=T0)
    runtime.sync_pod(pod, now=T0 + 5.0)
    assert [reason for _, reason, _ in events.take()] == [
        "Pulling",
        "Pulled",
        "Created",
        "Started",
        "BackOff",
    ]
    runtime.sync_pod(pod, now=T0 + 15.0)
    assert events.take()[:2] == [
        ("Normal", "Pulling", 'Pulling image "nginx"'),
        (
            "Normal",
            "Pulled",
            f'Successfully pulled image "nginx" in 0s (0s including waiting). '
            f"Image size: {simulated.image_size('nginx')} bytes.",
        ),
    ]
    quiet = simulated.SimulatedRuntime()
    quiet.sync_pod(on_node(make_pod()), now=T0)
    quiet.kill_pod("u1", now=T0 + 1.0)
    assert quiet.get_pod_status("u1", now=T0 + 2.0) is not None


def test_every_pods_story_is_told_however_many_start_at_once() -> None:
    """As the real kubelet: each pod's events, however many pods a node starts in one instant.

    (An earlier shared token bucket told only as many as wall-clock time allowed; 0058.)
    """
    events = Events()
    runtime = simulated.SimulatedRuntime()
    runtime.set_kubelet_hooks(events.hooks())
    count = 200
    for i in range(count):
        runtime.sync_pod(on_node(make_pod(), name=f"p{i}", uid=f"u{i}"), now=T0)
    for i in range(count):
        runtime.kill_pod(f"u{i}", now=T0 + 1.0)
    told = collections.Counter(reason for _, _, reason, _ in events.seen)
    # The node pulls its image once; every pod is then Pulled, Created, Started and Killing.
    assert told == {
        "Pulling": 1,
        "Pulled": count,
        "Created": count,
        "Started": count,
        "Killing": count,
    }
    assert {name for name, _, _, _ in events.seen} == {f"p{i}" for i in range(count)}
