"""The pod garbage collector (upstream's podgc) against a real API server over HTTPS.

Each test gets its own in-process cluster without kubelets, scheduler or other
controllers (nodes are API objects, pods keep whatever status a test writes),
and runs ``pod-garbage-collector`` through the controller manager as its
kube-system ServiceAccount (a bearer token), so upstream's bootstrap role is
exercised too. The periods are shortened through the constructor options.
Setup and checks use the official ``kubernetes`` client.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kajitori.client import kubeconfig, rest
from kajitori.controllers import manager, podgc
from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False, scheduler=False)

NS = "default"
NAME = "pod-garbage-collector"
FINALIZER = "example.com/hold"
PERIOD = 0.1
Object = dict[str, Any]
T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll ``check`` until it returns something, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout}s (last: {found!r})")
        time.sleep(0.02)


@pytest.fixture
def cluster(kajitori_test_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_test_cluster


@pytest.fixture
def core(cluster: InProcessCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    # Without controllers nothing makes these ServiceAccounts.
    core.create_namespaced_service_account(NS, {"metadata": {"name": "default"}})
    core.create_namespaced_service_account("kube-system", {"metadata": {"name": NAME}})
    yield core
    api.close()


@contextlib.contextmanager
def running_podgc(
    cluster: InProcessCluster, core: client.CoreV1Api, **options: Any
) -> Iterator[None]:
    """Run the controller manager with only ``pod-garbage-collector`` on a thread of its own."""
    token = core.create_namespaced_service_account_token(
        NAME, "kube-system", {"spec": {"expirationSeconds": 3600}}
    ).status.token
    admin_config = kubeconfig.load_kubeconfig(cluster.kubeconfig)
    as_controller = dataclasses.replace(
        admin_config, client_cert_pem=None, client_key_pem=None, token=token
    )
    options = {"gc_check_period": PERIOD, **options}
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        admin = rest.Client.from_kubeconfig(admin_config)
        controllers = manager.ControllerManager(
            admin,
            client_for=lambda _: rest.Client.from_kubeconfig(as_controller),
            controllers=[NAME],
            options={NAME: options},
        )
        controllers.start()
        started.set()
        await stop.wait()
        await controllers.stop()
        await admin.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


def add_node(
    core: client.CoreV1Api, name: str, *, ready: bool = True, taints: list[Object] | None = None
) -> None:
    core.create_node({"metadata": {"name": name}, "spec": {"taints": taints or []}})
    condition = {"type": "Ready", "status": "True" if ready else "False", "reason": "Test"}
    core.patch_node_status(name, {"status": {"conditions": [condition]}})


def add_pod(
    core: client.CoreV1Api,
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    reason: str = "",
    hold: bool = False,
) -> None:
    """A pod bound to ``node`` (unscheduled when empty) with ``phase``; ``hold``: a finalizer."""
    meta: Object = {"name": name, "finalizers": [FINALIZER] if hold else []}
    spec: Object = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    core.create_namespaced_pod(NS, {"metadata": meta, "spec": spec})
    status: Object = {"phase": phase}
    if reason:
        status["reason"] = reason
    core.patch_namespaced_pod_status(name, NS, {"status": status})


def get_pod(core: client.CoreV1Api, name: str) -> Object | None:
    """The pod as JSON (camelCase, as served); None once it is gone."""
    try:
        response = core.read_namespaced_pod(name, NS, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    pod: Object = json.loads(response.data)  # type: ignore[attr-defined]
    return pod


def list_pods(core: client.CoreV1Api) -> list[Object]:
    """The namespace's pods as JSON."""
    response = core.list_namespaced_pod(NS, _preload_content=False)
    pods: list[Object] = json.loads(response.data)["items"]  # type: ignore[attr-defined]
    return pods


def pod_names(core: client.CoreV1Api) -> set[str]:
    return {p["metadata"]["name"] for p in list_pods(core)}


def resource_versions(core: client.CoreV1Api) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in list_pods(core)}


def release(core: client.CoreV1Api, name: str) -> None:
    """Drop the test's finalizer, so the (deleted) pod goes."""
    core.patch_namespaced_pod(name, NS, {"metadata": {"finalizers": None}})
    eventually(lambda: get_pod(core, name) is None)


def condition(pod: Object, kind: str) -> Object | None:
    return next((c for c in pod["status"].get("conditions") or () if c["type"] == kind), None)


def next_second() -> None:
    """Wait for the wall clock's next second: creationTimestamps have second precision."""
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.01)


# ----- pure helpers ------------------------------------------------------------


def _pod(name: str, created: str, phase: str = "Failed", reason: str = "") -> Object:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, "reason": reason},
    }


def test_deletion_order_is_evicted_then_oldest_then_name() -> None:
    pods = [
        _pod("b", "2026-01-01T00:00:02Z"),
        _pod("a", "2026-01-01T00:00:02Z"),
        _pod("z", "2026-01-01T00:00:01Z"),
        _pod("y", "2026-01-01T00:00:09Z", reason="Evicted"),
    ]
    assert [p["metadata"]["name"] for p in sorted(pods, key=podgc.deletion_order)] == [
        "y",
        "z",
        "a",
        "b",
    ]


@pytest.mark.parametrize(
    ("phase", "terminated"),
    [
        ("Pending", False),
        ("Running", False),
        ("Unknown", False),
        ("Succeeded", True),
        ("Failed", True),
        (None, True),
    ],
)
def test_terminated_is_any_phase_but_pending_running_unknown(
    phase: str | None, terminated: bool
) -> None:
    assert podgc.is_terminated({"status": {"phase": phase}}) is terminated


def test_condition_keeps_its_transition_time_when_status_is_unchanged() -> None:
    old = [{"type": "DisruptionTarget", "status": "True", "lastTransitionTime": "T0"}]
    new = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC"}
    assert podgc.with_condition(old, new, "T1")[0]["lastTransitionTime"] == "T0"
    flipped = [{**old[0], "status": "False"}]
    assert podgc.with_condition(flipped, new, "T1")[0]["lastTransitionTime"] == "T1"
    assert podgc.with_condition([], new, "T1") == [{**new, "lastTransitionTime": "T1"}]


def test_status_patch_carries_the_uid_and_only_the_change() -> None:
    pod = {
        "metadata": {"name": "p", "uid": "u-1", "generation": 3},
        "status": {"phase": "Running", "hostIP": "10.0.0.1"},
    }
    new = podgc.failed_status(pod, podgc.orphan_condition(pod), now="T1")
    patch = podgc.status_patch(pod, new)
    assert patch["metadata"] == {"uid": "u-1"}
    assert patch["status"]["phase"] == "Failed"
    assert patch["status"]["observedGeneration"] == 3
    assert "hostIP" not in patch["status"]
    [added] = patch["status"]["conditions"]
    assert added["observedGeneration"] == 3


def test_registered_under_upstreams_name_and_service_account() -> None:
    spec = manager.CONTROLLERS[NAME]
    assert spec.factory is podgc.PodGCController
    assert spec.service_account == NAME
    assert NAME in manager.DEFAULT_CONTROLLERS


# ----- against the API server --------------------------------------------------


def test_terminated_pods_beyond_the_threshold_go_evicted_then_oldest_first(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    add_node(core, "n1")
    add_pod(core, "z-old", node="n1", phase="Succeeded")
    next_second()
    add_pod(core, "a-new", node="n1", phase="Failed")
    add_pod(core, "b-new", node="n1", phase="Succeeded")
    add_pod(core, "m-evicted", node="n1", phase="Failed", reason="Evicted")
    add_pod(core, "running", node="n1", phase="Running")
    add_pod(core, "pending", node="n1", phase="Pending")
    with running_podgc(cluster, core, terminated_pod_gc_threshold=2):
        eventually(lambda: {"z-old", "m-evicted"}.isdisjoint(pod_names(core)))
        # Deleted in the same pass: by now that pass has kept the others.
        assert pod_names(core) == {"a-new", "b-new", "running", "pending"}
    # Left as they were: a terminal pod is deleted, not patched.
    assert get_pod(core, "a-new")["status"]["phase"] == "Failed"  # type: ignore[index]


def test_threshold_zero_keeps_every_terminated_pod(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    add_pod(core, "done", node="gone", phase="Succeeded")
    add_pod(core, "canary", node="ghost", hold=True)
    add_node(core, "gone")
    with running_podgc(cluster, core, terminated_pod_gc_threshold=0, quarantine_time=0.2):
        eventually(
            lambda: (get_pod(core, "canary") or {}).get("metadata", {}).get("deletionTimestamp")
        )
        assert "done" in pod_names(core)
    release(core, "canary")


def test_orphans_are_quarantined_then_failed_with_disruption_target_and_force_deleted(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    add_pod(core, "orphan", node="ghost", phase="Running", hold=True)
    add_pod(core, "orphan-done", node="ghost", phase="Succeeded", hold=True)
    add_pod(core, "late", node="late-node", phase="Running")
    # A spec change: the pod's generation is now 2, which the status must name.
    tolerate = {"key": "example.com/x", "operator": "Exists", "effect": "NoSchedule"}
    add = [{"op": "add", "path": "/spec/tolerations/-", "value": tolerate}]
    core.patch_namespaced_pod("orphan", NS, add)
    assert get_pod(core, "orphan")["metadata"]["generation"] == 2  # type: ignore[index]
    quarantine = 1.5
    started = time.monotonic()
    with running_podgc(cluster, core, quarantine_time=quarantine):
        # The late pod's node shows up during the quarantine: its pod is kept.
        add_node(core, "late-node")
        pod = eventually(
            lambda: (p := get_pod(core, "orphan")) and p["metadata"].get("deletionTimestamp") and p
        )
        assert time.monotonic() - started >= quarantine
        done = eventually(
            lambda: (
                (p := get_pod(core, "orphan-done")) and p["metadata"].get("deletionTimestamp") and p
            )
        )
        assert "late" in pod_names(core)
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 0
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["observedGeneration"] == 2
    target = condition(pod, "DisruptionTarget")
    assert target is not None
    assert {k: target[k] for k in ("status", "reason", "message", "observedGeneration")} == {
        "status": "True",
        "reason": "DeletionByPodGC",
        "message": "PodGC: node no longer exists",
        "observedGeneration": 2,
    }
    assert target["lastTransitionTime"]
    # A pod already terminal is deleted as it is: no phase change, no condition.
    assert done["metadata"]["deletionGracePeriodSeconds"] == 0
    assert done["status"]["phase"] == "Succeeded"
    assert condition(done, "DisruptionTarget") is None
    release(core, "orphan")
    release(core, "orphan-done")


def test_unscheduled_terminating_pods_are_failed_and_force_deleted(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    add_pod(core, "unscheduled", phase="Pending", hold=True)
    add_pod(core, "unscheduled-alive", phase="Pending")
    core.delete_namespaced_pod("unscheduled", NS)
    with running_podgc(cluster, core):
        pod = eventually(
            lambda: (p := get_pod(core, "unscheduled")) and p["status"]["phase"] == "Failed" and p
        )
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 0
    assert condition(pod, "DisruptionTarget") is None
    alive = get_pod(core, "unscheduled-alive")
    assert alive is not None and alive["status"]["phase"] == "Pending"
    assert not alive["metadata"].get("deletionTimestamp")
    release(core, "unscheduled")


def test_terminating_pods_on_out_of_service_nodes_are_force_deleted(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    out_of_service = [{"key": podgc.TAINT_NODE_OUT_OF_SERVICE, "effect": "NoExecute"}]
    add_node(core, "oos", ready=False, taints=out_of_service)
    add_node(core, "not-ready", ready=False)
    add_node(core, "ready-tainted", ready=True, taints=out_of_service)
    for node in ("oos", "not-ready", "ready-tainted"):
        add_pod(core, f"on-{node}", node=node, phase="Running", hold=node == "oos")
        # No kubelet finishes the graceful deletion: the pods stay terminating.
        core.delete_namespaced_pod(f"on-{node}", NS)
    add_pod(core, "alive-on-oos", node="oos", phase="Running")
    with running_podgc(cluster, core):
        pod = eventually(
            lambda: (p := get_pod(core, "on-oos")) and p["status"]["phase"] == "Failed" and p
        )
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 0
    # Not tainted, or Ready: left to the kubelet (the same pass looked at them).
    for name in ("on-not-ready", "on-ready-tainted"):
        kept = get_pod(core, name)
        assert kept is not None and kept["status"]["phase"] == "Running"
        assert kept["metadata"]["deletionGracePeriodSeconds"] == 30
    alive = get_pod(core, "alive-on-oos")
    assert alive is not None and not alive["metadata"].get("deletionTimestamp")
    release(core, "on-oos")


def test_running_pods_on_live_nodes_are_never_touched(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    add_node(core, "live")
    add_pod(core, "running", node="live", phase="Running")
    add_pod(core, "pending", node="live", phase="Pending")
    add_pod(core, "unscheduled", phase="Pending")
    add_pod(core, "canary", node="ghost", phase="Running", hold=True)
    before = resource_versions(core)
    with running_podgc(cluster, core, quarantine_time=0.2):
        eventually(
            lambda: (get_pod(core, "canary") or {}).get("metadata", {}).get("deletionTimestamp")
        )
        # Some more passes over the same pods.
        time.sleep(5 * PERIOD)
    after = resource_versions(core)
    for name in ("running", "pending", "unscheduled"):
        assert after[name] == before[name], name
    release(core, "canary")
