"""The kubelet reports the generation it acted on (KEP-5067, GA since 1.35).

Upstream's status manager stamps every status it writes with the synced
pod's ``metadata.generation`` (``status.observedGeneration``), and
generateAPIPodStatus does the same on each condition the kubelet owns
(PodReadyToStartContainers, Initialized, Ready, ContainersReady,
PodScheduled); conditions other writers own keep theirs. A rejected pod's
status carries it too. The first tests run an in-process cluster with one
simulated node over HTTPS (official client, real kubectl); the last ones
check ``generate_pod_status`` alone for the shapes a cluster does not reach.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from kajitori.kubelet import status
from kajitori.kubelet.runtimes import interface
from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(nodes=1, controllers=True)

NS = "default"
NODE = "kajitori-worker"
KUBELET_CONDITIONS = {
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
}
Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def core(cluster: InProcessCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    yield client.CoreV1Api(api)
    api.close()


def pod(name: str, **container: Any) -> Object:
    spec: Object = {
        "nodeName": NODE,
        "terminationGracePeriodSeconds": 30,
        "containers": [{"name": "c", "image": "busybox:1.36", **container}],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def created(core: client.CoreV1Api, body: Object) -> None:
    # The ServiceAccount controller makes "default" shortly after the cluster starts.
    for _ in watch.Watch().stream(
        core.list_namespaced_service_account,
        NS,
        field_selector="metadata.name=default",
        timeout_seconds=20,
    ):
        break
    core.create_namespaced_pod(NS, body)


def wait_for_pod(
    core: client.CoreV1Api,
    name: str,
    check: Callable[[Object], bool],
    *,
    what: str,
    since: str | None = None,
) -> Object:
    """The first version of pod ``name`` (raw JSON) for which ``check`` holds, from a watch.

    ``since``: watch the changes after that resourceVersion (a pod that may
    be gone by the time the watch starts).
    """
    stream = watch.Watch()
    options: Object = {"resource_version": since} if since else {}
    for event in stream.stream(
        core.list_namespaced_pod,
        NS,
        field_selector=f"metadata.name={name}",
        timeout_seconds=30,
        **options,
    ):
        found: Object = event["raw_object"]
        if check(found):
            stream.stop()
            return found
    raise AssertionError(f"timed out waiting for {what}")


def observed(found: Object) -> tuple[int, int | None]:
    return found["metadata"].get("generation", 0), found["status"].get("observedGeneration")


def kubelet_conditions(found: Object) -> dict[str, int | None]:
    return {
        c["type"]: c.get("observedGeneration")
        for c in found["status"].get("conditions") or ()
        if c["type"] in KUBELET_CONDITIONS
    }


def running_as_of(generation: int) -> Callable[[Object], bool]:
    def check(found: Object) -> bool:
        return (
            found["status"].get("observedGeneration") == generation
            and found["status"].get("phase") == "Running"
        )

    return check


def test_a_running_pod_reports_generation_1_on_its_status_and_conditions(
    core: client.CoreV1Api,
) -> None:
    """observedGeneration 1 on the status and on each of the five kubelet conditions."""
    created(core, pod("first"))
    found = wait_for_pod(core, "first", running_as_of(1), what="first running, observed 1")
    assert observed(found) == (1, 1)
    assert kubelet_conditions(found) == dict.fromkeys(KUBELET_CONDITIONS, 1)
    typed = core.read_namespaced_pod_status("first", NS).status
    assert typed is not None and typed.conditions is not None
    assert typed.observed_generation == 1
    assert {c.observed_generation for c in typed.conditions} == {1}


def test_a_new_image_is_observed_as_the_next_generation(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    """kubectl set image bumps the generation; the kubelet's next status says so."""
    created(core, pod("rolled"))
    wait_for_pod(core, "rolled", running_as_of(1), what="rolled running, observed 1")
    cluster.kubectl("set", "image", "pod/rolled", "c=busybox:1.37")
    found = wait_for_pod(
        core,
        "rolled",
        lambda p: p["status"].get("observedGeneration") == 2,
        what="rolled observed 2",
    )
    assert found["metadata"]["generation"] == 2
    assert kubelet_conditions(found) == dict.fromkeys(KUBELET_CONDITIONS, 2)
    jsonpath = "{.metadata.generation}/{.status.observedGeneration}"
    assert cluster.kubectl("get", "pod", "rolled", "-o", f"jsonpath={jsonpath}").stdout == "2/2"


def test_a_condition_another_writer_owns_keeps_its_own_generation(
    core: client.CoreV1Api,
) -> None:
    """A readiness gate's condition keeps what its writer set while the kubelet's move on."""
    body = pod("gated")
    body["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}]
    created(core, body)
    wait_for_pod(core, "gated", running_as_of(1), what="gated running")
    gate = {"type": "example.com/lb", "status": "True", "observedGeneration": 1}
    core.patch_namespaced_pod_status("gated", NS, {"status": {"conditions": [gate]}})
    core.patch_namespaced_pod("gated", NS, {"spec": {"activeDeadlineSeconds": 3600}})
    found = wait_for_pod(
        core,
        "gated",
        lambda p: p["status"].get("observedGeneration") == 2,
        what="gated observed 2",
    )
    by_type = {c["type"]: c.get("observedGeneration") for c in found["status"]["conditions"]}
    assert by_type["example.com/lb"] == 1
    assert by_type["Ready"] == 2


def test_a_graceful_deletion_is_observed_before_the_pod_goes(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    """The deletion is generation 2; the kubelet's terminating status reports 2."""
    created(core, pod("leaving"))
    running = wait_for_pod(core, "leaving", running_as_of(1), what="leaving running")
    cluster.kubectl("delete", "pod", "leaving", "--wait=false")
    found = wait_for_pod(
        core,
        "leaving",
        lambda p: p["status"].get("observedGeneration") == 2,
        what="leaving observed 2",
        since=running["metadata"]["resourceVersion"],
    )
    assert found["metadata"]["deletionTimestamp"]
    assert found["metadata"]["generation"] == 2


def test_a_rejected_pod_reports_the_generation_it_rejected(core: client.CoreV1Api) -> None:
    """rejectPod goes through SetPodStatus: Failed/NodePorts with observedGeneration."""
    port = {"ports": [{"containerPort": 80, "hostPort": 18080}]}
    created(core, pod("holder", **port))
    wait_for_pod(core, "holder", running_as_of(1), what="holder running")
    created(core, pod("late", **port))
    found = wait_for_pod(
        core, "late", lambda p: p["status"].get("phase") == "Failed", what="late rejected"
    )
    assert (found["status"]["reason"], observed(found)) == ("NodePorts", (1, 1))


# --- generate_pod_status alone ------------------------------------------------------

T0 = 1_700_000_000.0


def _runtime_status() -> interface.PodStatus:
    container = interface.ContainerStatus(
        name="c",
        image="busybox",
        image_id="sha256:1",
        container_id="sim://c",
        state="running",
        started_at=T0,
    )
    return interface.PodStatus(
        uid="u", sandbox_ready=True, init_containers=(), containers=(container,)
    )


def _generated(meta: Object, old_status: Object | None = None) -> Object:
    synced: Object = {
        "metadata": {"name": "p", "uid": "u", **meta},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": old_status or {},
    }
    return status.generate_pod_status(
        synced, _runtime_status(), now=T0 + 5, pod_ip="10.0.0.5", host_ip="172.18.0.2"
    )


def test_a_pod_without_a_generation_gets_no_observed_generation() -> None:
    """Upstream leaves 0 (unset): a pod stored before generations existed."""
    generated = _generated({})
    assert "observedGeneration" not in generated
    assert all("observedGeneration" not in c for c in generated["conditions"])


def test_only_the_kubelets_conditions_take_the_synced_generation() -> None:
    """A DisruptionTarget written by another component is carried over as it was."""
    disruption = {"type": "DisruptionTarget", "status": "True", "observedGeneration": 3}
    generated = _generated({"generation": 4}, {"conditions": [disruption]})
    assert generated["observedGeneration"] == 4
    by_type = {c["type"]: c.get("observedGeneration") for c in generated["conditions"]}
    assert by_type == {**dict.fromkeys(KUBELET_CONDITIONS, 4), "DisruptionTarget": 3}
    assert json.loads(json.dumps(generated)) == generated  # plain JSON, as patched
