"""The oci runtime runs pods as runc containers: states, restarts, namespaces, termination, exec."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, leaks, make_pod, sh, wait_for

from kajitori.kubelet.runtimes import interface
from kajitori.kubelet.runtimes.oci import runtime

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def record_events(oci: Harness, paths: list[str] | None = None) -> list[tuple[str, str, str]]:
    """The events the runtime records through the kubelet's hooks, as (type, reason, message).

    Their involvedObject.fieldPath go to ``paths``, when given.
    """
    events: list[tuple[str, str, str]] = []

    async def no_secret(node: str, namespace: str, name: str) -> None:
        return None

    def record(
        pod: dict[str, object],
        event_type: str,
        reason: str,
        message: str,
        /,
        *,
        field_path: str = "",
    ) -> None:
        events.append((event_type, reason, message))
        if paths is not None:
            paths.append(field_path)

    oci.runtime.set_kubelet_hooks(interface.KubeletHooks(record, no_secret, lambda node: ""))
    return events


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F (.*)$")


@pytest.mark.parametrize(
    ("script", "code", "reason"),
    [
        pytest.param("echo hello; echo oops >&2", 0, "Completed", id="zero-completed"),
        pytest.param("echo hello; echo oops >&2; exit 3", 3, "Error", id="three-error"),
    ],
)
async def test_a_container_runs_to_its_exit_code_and_logs_in_cri_format(
    oci: Harness, script: str, code: int, reason: str
) -> None:
    """The exit code and reason are upstream's; stdout and stderr land in the CRI log."""
    uid = oci.start(make_pod([sh("c", script)]))
    done = await oci.wait_state(uid, "c", "terminated")
    assert done.termination is not None
    assert (done.termination.exit_code, done.termination.reason) == (code, reason)
    assert done.container_id.startswith("runc://")
    assert done.image == "docker.io/library/busybox:latest"
    assert done.image_id.startswith("docker.io/library/busybox@sha256:")
    lines = [LOG_LINE.match(line) for line in oci.log(uid, "c").splitlines()]
    assert all(lines), oci.log(uid, "c")
    assert sorted((m.group(1), m.group(2)) for m in lines if m) == [
        ("stderr", "oops"),
        ("stdout", "hello"),
    ]
    assert uid in oci.changes


async def test_restart_policy_always_backs_off_exponentially(oci: Harness) -> None:
    """A crashing container waits in CrashLoopBackOff, twice as long each time, counting restarts."""
    uid = oci.start(make_pod([sh("c", "exit 1")], restart_policy="Always"))
    starts: dict[int, float] = {}

    def observe() -> bool:
        container = oci.container(uid, "c")
        if container.last_termination is not None:
            starts.setdefault(container.restart_count, container.last_termination.started_at)
        return container.restart_count >= 3 and container.reason == "CrashLoopBackOff"

    await wait_for(observe, timeout=10, what="three restarts")
    backing_off = oci.container(uid, "c")
    assert backing_off.last_termination is not None
    assert backing_off.last_termination.exit_code == 1
    assert "back-off" in backing_off.message
    # base 0.2 s: the gap between runs n and n+1 is at least 0.2·2ⁿ.
    gaps = [starts[n + 1] - starts[n] for n in (1, 2) if n + 1 in starts]
    assert gaps and gaps[-1] >= 0.4
    # Only the current run's log and the previous one are kept (kubectl logs [--previous]).
    current = oci.container(uid, "c").restart_count
    kept = {p.name for p in oci.runtime.log_path(uid, "c", 0).parent.iterdir()}
    assert len(kept) <= 2 and kept <= {f"{n}.log" for n in (current - 1, current, current + 1)}


async def test_on_failure_does_not_restart_a_container_that_succeeded(oci: Harness) -> None:
    """OnFailure: exit 0 stays terminated Completed; restartCount stays 0."""
    uid = oci.start(make_pod([sh("c", "true")], restart_policy="OnFailure"))
    done = await oci.wait_state(uid, "c", "terminated")
    assert (done.restart_count, done.termination and done.termination.reason) == (0, "Completed")


async def test_init_containers_run_in_order_before_the_containers(oci: Harness) -> None:
    """Each init container starts after the previous one completed; sidecars keep running."""
    pod = make_pod(
        [sh("main", "sleep 0.1")],
        initContainers=[
            sh("first", "sleep 0.2"),
            {
                **sh("sidecar", "trap 'exit 0' TERM; while true; do sleep 0.05; done"),
                "restartPolicy": "Always",
            },
            sh("second", "true"),
        ],
    )
    uid = oci.start(pod)
    main = await oci.wait_state(uid, "main", "terminated")
    first = oci.container(uid, "first").termination
    second = oci.container(uid, "second").termination
    sidecar = oci.container(uid, "sidecar")
    assert first is not None and second is not None and main.termination is not None
    assert sidecar.state == "running" and sidecar.started_at is not None
    assert first.finished_at <= sidecar.started_at <= second.started_at
    assert second.finished_at <= main.termination.started_at
    assert [c.name for c in oci.status(uid).init_containers] == ["first", "sidecar", "second"]


async def test_a_failed_init_container_under_never_keeps_the_containers_waiting(
    oci: Harness,
) -> None:
    """restartPolicy Never: init exit 2 is final and the containers never start."""
    uid = oci.start(make_pod([sh("main", "true")], initContainers=[sh("init", "exit 2")]))
    failed = await oci.wait_state(uid, "init", "terminated")
    assert failed.termination is not None and failed.termination.exit_code == 2
    main = oci.container(uid, "main")
    assert (main.state, main.reason) == ("waiting", "PodInitializing")


async def test_the_containers_of_a_pod_share_network_ipc_and_uts(oci: Harness) -> None:
    """Both containers see the pod's hostname and the same net/ipc/uts namespaces, not pid."""
    forever = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    uid = oci.start(make_pod([sh("a", forever), sh("b", forever)], name="web-0", hostname="box"))
    await oci.wait_state(uid, "a", "running")
    await oci.wait_state(uid, "b", "running")
    probe = ["sh", "-c", "hostname; for n in net ipc uts; do readlink /proc/self/ns/$n; done"]
    seen_a = await oci.runtime.exec(uid, "a", probe)
    seen_b = await oci.runtime.exec(uid, "b", probe)
    assert seen_a[0] == seen_b[0] == 0
    assert seen_a[1] == seen_b[1]
    assert seen_a[1].split(b"\n")[0] == b"box"
    # A POSIX message queue made in one container is there in the other: one IPC namespace.
    assert (await oci.runtime.exec(uid, "a", ["touch", "/dev/mqueue/shared"]))[0] == 0
    assert (await oci.runtime.exec(uid, "b", ["ls", "/dev/mqueue"]))[1] == b"shared\n"
    pid_a = await oci.runtime.exec(uid, "a", ["readlink", "/proc/1/ns/pid"])
    pid_b = await oci.runtime.exec(uid, "b", ["readlink", "/proc/1/ns/pid"])
    assert pid_a[1] != pid_b[1]
    links = await oci.runtime.exec(uid, "a", ["ip", "-o", "link"])
    assert b"lo:" in links[1] and b"eth0" not in links[1]  # loopback only: CNI is not wired yet


async def test_exec_returns_exit_code_stdout_and_stderr(oci: Harness) -> None:
    """exec runs in the container with its environment and reports what it printed."""
    container = sh("c", "sleep 1000", env=[{"name": "GREETING", "value": "hi"}])
    uid = oci.start(make_pod([container]))
    await oci.wait_state(uid, "c", "running")
    result = await oci.runtime.exec(uid, "c", ["sh", "-c", "echo $GREETING; echo err >&2; exit 5"])
    assert result == (5, b"hi\n", b"err\n")
    with pytest.raises(LookupError):
        await oci.runtime.exec(uid, "missing", ["true"])


@pytest.mark.parametrize(
    ("script", "grace", "code", "at_least", "under"),
    [
        pytest.param(
            "trap 'exit 0' TERM; while true; do sleep 0.05; done", 5.0, 0, 0.0, 2.0, id="handled"
        ),
        pytest.param("exec sleep 1000", 1.0, 137, 1.0, 4.0, id="ignored-then-sigkill"),
    ],
)
async def test_termination_sends_sigterm_then_sigkill_after_the_grace_period(
    oci: Harness, script: str, grace: float, code: int, at_least: float, under: float
) -> None:
    """A process that handles SIGTERM exits at once; PID 1 sleep ignores it and is killed (137)."""
    uid = oci.start(make_pod([sh("c", script)]))
    await oci.wait_state(uid, "c", "running")
    began = time.monotonic()
    oci.runtime.kill_pod(uid, now=time.time(), grace_period=grace)
    done = await oci.wait_state(uid, "c", "terminated", timeout=grace + 10)
    took = time.monotonic() - began
    assert done.termination is not None and done.termination.exit_code == code
    assert at_least <= took < under
    await wait_for(lambda: not oci.status(uid).sandbox_ready, what="pod killed")


async def test_post_start_and_pre_stop_hooks_run_in_the_container(oci: Harness) -> None:
    """postStart runs before the container counts as running; preStop before SIGTERM."""
    to_log = "echo {} > /proc/1/fd/1"
    container = sh(
        "c",
        "trap 'echo term; exit 0' TERM; while true; do sleep 0.05; done",
        lifecycle={
            "postStart": {"exec": {"command": ["sh", "-c", to_log.format("post-start")]}},
            "preStop": {"exec": {"command": ["sh", "-c", to_log.format("pre-stop")]}},
        },
    )
    uid = oci.start(make_pod([container]))
    await oci.wait_state(uid, "c", "running")
    assert "post-start" in oci.log(uid, "c")
    oci.runtime.kill_pod(uid, now=time.time(), grace_period=5)
    await oci.wait_state(uid, "c", "terminated")
    said = [line.rsplit(" ", 1)[-1] for line in oci.log(uid, "c").splitlines()]
    assert said == ["post-start", "pre-stop", "term"]


@pytest.mark.parametrize(
    ("security", "code"),
    [
        pytest.param({"readOnlyRootFilesystem": True}, 1, id="read-only"),
        pytest.param({}, 0, id="writable"),
    ],
)
async def test_read_only_root_filesystem(
    oci: Harness, security: dict[str, bool], code: int
) -> None:
    """Writing to / fails with readOnlyRootFilesystem and succeeds without it."""
    uid = oci.start(make_pod([sh("c", "touch /written", securityContext=security)]))
    done = await oci.wait_state(uid, "c", "terminated")
    assert done.termination is not None and done.termination.exit_code == code


async def test_run_as_user_and_group(oci: Harness) -> None:
    """The container's process and its execs run as runAsUser/runAsGroup (pod level, overridden)."""
    container = sh("c", "id -u; id -g; sleep 1000", securityContext={"runAsUser": 65534})
    uid = oci.start(make_pod([container], securityContext={"runAsUser": 1000, "runAsGroup": 2000}))
    await oci.wait_state(uid, "c", "running")
    await wait_for(lambda: "2000" in oci.log(uid, "c"), what="id output")
    assert [line.rsplit(" ", 1)[-1] for line in oci.log(uid, "c").splitlines()] == ["65534", "2000"]
    assert (await oci.runtime.exec(uid, "c", ["id", "-u"]))[1] == b"65534\n"


@pytest.mark.parametrize(
    ("capabilities", "effective"),
    [
        pytest.param(None, "00000000a80425fb", id="default-set"),
        pytest.param({"drop": ["ALL"]}, "0000000000000000", id="drop-all"),
        pytest.param({"drop": ["ALL"], "add": ["NET_ADMIN"]}, "0000000000001000", id="add-one"),
        pytest.param("privileged", "bounding-set", id="privileged-all-the-runtime-has"),
    ],
)
async def test_capabilities_follow_the_default_set_and_security_context(
    oci: Harness, capabilities: dict[str, list[str]] | str | None, effective: str
) -> None:
    """CapEff is containerd's default set, less drop, plus add; privileged has every one."""
    security: dict[str, object] = {}
    if capabilities == "privileged":
        security["privileged"] = True
    elif capabilities:
        security["capabilities"] = capabilities
    uid = oci.start(make_pod([sh("c", "grep CapEff /proc/self/status", securityContext=security)]))
    await oci.wait_state(uid, "c", "terminated")
    if effective == "bounding-set":
        status = Path("/proc/self/status").read_text().splitlines()
        effective = next(line.split()[1] for line in status if line.startswith("CapBnd:"))
    assert oci.log(uid, "c").split()[-1] == effective


async def test_cpu_and_memory_limits_are_set_in_the_containers_cgroups(oci: Harness) -> None:
    """limits.cpu 250m → a 25 ms CFS quota; limits.memory 32Mi → the memory limit (v1 or v2 files)."""
    script = (
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; "
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    )
    limits = {"limits": {"cpu": "250m", "memory": "32Mi"}}
    uid = oci.start(make_pod([sh("c", script, resources=limits)]))
    await oci.wait_state(uid, "c", "terminated")
    cpu, memory = [line.split(" F ", 1)[1] for line in oci.log(uid, "c").splitlines()]
    assert cpu.split()[0] == "25000"
    assert memory == str(32 * 2**20)


async def test_a_container_over_its_memory_limit_is_oom_killed(oci: Harness) -> None:
    """limits.memory is enforced through the memory cgroup and reported as OOMKilled, 137."""
    hog = sh(
        "c",
        "a=$(head -c 64000000 /dev/zero | tr '\\0' x); echo survived",
        resources={"limits": {"memory": "16Mi"}},
    )
    uid = oci.start(make_pod([hog]))
    done = await oci.wait_state(uid, "c", "terminated", timeout=20)
    assert done.termination is not None
    assert (done.termination.exit_code, done.termination.reason) == (137, "OOMKilled")


async def test_a_new_runtime_over_the_same_root_finds_running_containers(oci: Harness) -> None:
    """After the runtime object is gone the container still runs, and a new one takes it over."""
    uid = oci.start(make_pod([sh("c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")]))
    running = await oci.wait_state(uid, "c", "running")
    await oci.runtime.aclose()
    oci.runtime = oci.new_runtime()
    assert oci.runtime.get_pods() == [uid]
    again = oci.container(uid, "c")
    assert (again.state, again.container_id, again.started_at) == (
        "running",
        running.container_id,
        running.started_at,
    )
    assert (await oci.runtime.exec(uid, "c", ["true"]))[0] == 0
    oci.changes.clear()
    oci.runtime.kill_pod(uid, now=time.time(), grace_period=5)
    done = await oci.wait_state(uid, "c", "terminated")
    assert done.termination is not None and done.termination.exit_code == 0
    assert uid in oci.changes


async def test_removing_a_running_pod_leaves_nothing_behind(oci: Harness) -> None:
    """No runc container, mount, cgroup, shim or file is left once remove_pod is done."""
    forever = "while true; do sleep 1; done"
    uid = oci.start(make_pod([sh("a", forever), sh("b", forever)]))
    await oci.wait_state(uid, "a", "running")
    await oci.wait_state(uid, "b", "running")
    before = await leaks(oci.runtime, uid)
    assert len(before.runc) == 2 and len(before.mounts) == 5 and len(before.shims) == 2
    oci.runtime.remove_pod(uid)
    await oci.runtime.aclose()
    assert (await leaks(oci.runtime, uid)).empty()
    assert oci.runtime.get_pods() == []


async def test_an_image_that_cannot_be_pulled_waits_in_err_image_pull(oci: Harness) -> None:
    """The provider's failure shows as ErrImagePull, then ImagePullBackOff on the retry."""
    uid = oci.start(make_pod([{"name": "c", "image": "nginx:1.27"}]))
    await wait_for(lambda: oci.container(uid, "c").reason == "ErrImagePull", what="ErrImagePull")
    assert "nginx:1.27" in oci.container(uid, "c").message
    await wait_for(
        lambda: oci.container(uid, "c").reason == "ImagePullBackOff", what="ImagePullBackOff"
    )


def test_check_host_names_what_is_missing() -> None:
    """On this machine (root, runc installed) nothing is missing; a missing binary is named."""
    assert runtime.check_host() is None
    assert "no-such-runc" in (runtime.check_host("no-such-runc") or "")


async def test_run_as_non_root_refuses_an_image_that_runs_as_root(oci: Harness) -> None:
    """CreateContainerConfigError with upstream's message; runAsUser 1000 satisfies the policy."""
    refused = sh("refused", "true")
    allowed = sh("allowed", "true", securityContext={"runAsUser": 1000})
    uid = oci.start(make_pod([refused, allowed], securityContext={"runAsNonRoot": True}))
    await oci.wait_state(uid, "allowed", "terminated")
    waiting = oci.container(uid, "refused")
    assert (waiting.state, waiting.reason) == ("waiting", "CreateContainerConfigError")
    assert waiting.message == (
        f'container has runAsNonRoot and image will run as root (pod: "pod_default({uid})", '
        "container: refused)"
    )


@pytest.mark.parametrize(
    "delay", [0.0, 0.02, 0.05, 0.1, 0.15], ids=["0ms", "20ms", "50ms", "100ms", "150ms"]
)
async def test_removing_a_pod_while_it_starts_leaves_nothing_behind(
    oci: Harness, delay: float
) -> None:
    """remove_pod in the middle of sandbox or container creation still cleans up everything."""
    uid = oci.start(make_pod([sh("c", "sleep 1000")]))
    await asyncio.sleep(delay)
    oci.runtime.remove_pod(uid)
    await oci.runtime.aclose()
    assert (await leaks(oci.runtime, uid)).empty()


async def test_a_missing_executable_is_a_start_error_with_runcs_message(oci: Harness) -> None:
    """runc cannot start it: terminated StartError, exit code 128, runc's message (as containerd)."""
    uid = oci.start(make_pod([{"name": "c", "image": "busybox", "command": ["/no/such/binary"]}]))
    done = await oci.wait_state(uid, "c", "terminated")
    assert done.termination is not None
    assert (done.termination.exit_code, done.termination.reason) == (128, "StartError")
    assert "/no/such/binary" in done.message


async def test_a_failing_post_start_hook_kills_the_container(oci: Harness) -> None:
    """The container is killed (137), the hook's failure is in the message, not in the events."""
    events = record_events(oci)
    hook = {"postStart": {"exec": {"command": ["sh", "-c", "echo nope >&2; exit 7"]}}}
    uid = oci.start(make_pod([sh("c", "sleep 1000", lifecycle=hook)]))
    done = await oci.wait_state(uid, "c", "terminated")
    assert done.termination is not None and done.termination.exit_code == 137
    assert done.message.startswith("PostStartHookError") and "nope" in done.message
    assert events == [
        ("Normal", "Created", "Created container: c"),
        ("Normal", "Started", "Started container c"),
        ("Warning", "FailedPostStartHook", "PostStartHook failed"),
        ("Normal", "Killing", "FailedPostStartHook"),
    ]


async def test_a_pods_life_records_upstreams_container_events(oci: Harness) -> None:
    """Created, Started (init container first); on kill Killing, then FailedPreStopHook.

    Each is about its container: fieldPath spec.initContainers{setup} or
    spec.containers{c}, as upstream's kubelet records them.
    """
    paths: list[str] = []
    events = record_events(oci, paths)
    pre_stop = {"preStop": {"exec": {"command": ["sh", "-c", "echo secret; exit 3"]}}}
    script = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    init = sh("setup", "true")
    pod = make_pod([sh("c", script, lifecycle=pre_stop)], name="life", initContainers=[init])
    uid = oci.start(pod)
    await oci.wait_state(uid, "c", "running")
    assert events == [
        ("Normal", "Created", "Created container: setup"),
        ("Normal", "Started", "Started container setup"),
        ("Normal", "Created", "Created container: c"),
        ("Normal", "Started", "Started container c"),
    ]
    oci.runtime.kill_pod(uid, now=time.time(), grace_period=5)
    await oci.wait_state(uid, "c", "terminated")
    assert events[4:] == [
        ("Normal", "Killing", "Stopping container c"),
        ("Warning", "FailedPreStopHook", "PreStopHook failed"),
    ]
    assert paths == ["spec.initContainers{setup}"] * 2 + ["spec.containers{c}"] * 4


async def test_sidecars_are_stopped_after_the_main_containers(oci: Harness) -> None:
    """On kill the regular container gets SIGTERM first; the sidecar only once it has exited."""
    slow_exit = "trap 'sleep 0.3; exit 0' TERM; while true; do sleep 0.05; done"
    quick_exit = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    sidecar = {**sh("proxy", quick_exit), "restartPolicy": "Always"}
    uid = oci.start(make_pod([sh("main", slow_exit)], initContainers=[sidecar]))
    await oci.wait_state(uid, "main", "running")
    oci.runtime.kill_pod(uid, now=time.time(), grace_period=5)
    main = await oci.wait_state(uid, "main", "terminated")
    proxy = await oci.wait_state(uid, "proxy", "terminated")
    assert main.termination is not None and proxy.termination is not None
    assert proxy.termination.exit_code == 0
    assert proxy.termination.finished_at >= main.termination.finished_at


async def test_the_back_off_starts_over_after_a_run_longer_than_twice_the_cap(
    oci: Harness,
) -> None:
    """Quick failures double it (0.15 s, 0.3 s); after a run over 2 × 0.6 s it is 0.15 s again."""
    await oci.runtime.aclose()
    oci.runtime = runtime.OciRuntime(oci.root, oci.images, backoff_base=0.15, backoff_cap=0.6)
    # Runs count themselves in the pod's IPC namespace, which outlives each run.
    script = "n=$(ls /dev/mqueue | wc -l); touch /dev/mqueue/run$n; [ $n = 2 ] && sleep 1.3; exit 1"
    uid = oci.start(make_pod([sh("c", script)], restart_policy="Always"))
    messages: dict[int, str] = {}

    def observe() -> bool:
        container = oci.container(uid, "c")
        if container.reason == "CrashLoopBackOff":
            messages.setdefault(container.restart_count, container.message)
        return 2 in messages

    await wait_for(observe, timeout=15, what="back-off after the long run")
    assert messages[0].startswith("back-off 0.15s")
    assert messages[1].startswith("back-off 0.3s")
    assert messages[2].startswith("back-off 0.15s")
