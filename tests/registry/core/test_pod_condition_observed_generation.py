"""The pod conditions the API server itself writes carry the pod's generation (KEP-5067).

pods/eviction adds ``DisruptionTarget=True`` (``EvictionByEvictionAPI``) and
pods/binding sets ``PodScheduled=True``; each names the ``metadata.generation``
the pod had when the condition was written, a spec change before that
included, and replaces any older condition of its type. Over HTTPS against an
in-process API server (no controllers, no scheduler), through the official
client and the real kubectl.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

NS = "default"
Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def core(cluster: InProcessCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    # Without controllers nothing makes the namespace's default ServiceAccount.
    core.create_namespaced_service_account(NS, {"metadata": {"name": "default"}})
    yield core
    api.close()


def create_pod(core: client.CoreV1Api, name: str, *, node: str = "") -> None:
    spec: Object = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    core.create_namespaced_pod(
        NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    )


def raw(core: client.CoreV1Api, name: str) -> Object:
    """The stored pod as JSON (the typed models would hide a missing field)."""
    found: Object = json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)
    return found


def bump(core: client.CoreV1Api, name: str) -> int:
    """A spec change (activeDeadlineSeconds); the pod's new generation."""
    core.patch_namespaced_pod(name, NS, {"spec": {"activeDeadlineSeconds": 600}})
    generation: int = raw(core, name)["metadata"]["generation"]
    return generation


def write_condition(core: client.CoreV1Api, name: str, condition: Object) -> None:
    """Store ``condition`` through pods/status, as another component would have."""
    body = raw(core, name)
    body["status"]["conditions"] = [condition]
    core.replace_namespaced_pod_status(name, NS, body, _preload_content=False)


def conditions(pod: Object, kind: str) -> list[Object]:
    return [c for c in pod["status"].get("conditions") or () if c["type"] == kind]


STALE_DISRUPTION = {
    "type": "DisruptionTarget",
    "status": "False",
    "reason": "Other",
    "observedGeneration": 1,
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "earlier",
    [
        pytest.param(None, id="new-condition"),
        pytest.param(STALE_DISRUPTION, id="replaces-an-older-one"),
    ],
)
def test_an_eviction_marks_the_pod_at_the_generation_it_has_then(
    core: client.CoreV1Api, earlier: Object | None
) -> None:
    """DisruptionTarget names generation 2 (after a spec change); the delete then makes it 3."""
    name = "evicted-" + ("fresh" if earlier is None else "stale")
    create_pod(core, name, node="node-a")
    if earlier is not None:
        write_condition(core, name, earlier)
    assert bump(core, name) == 2
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    core.create_namespaced_pod_eviction(name, NS, eviction, _preload_content=False)

    evicted = raw(core, name)
    (marked,) = conditions(evicted, "DisruptionTarget")
    assert {k: marked.get(k) for k in ("status", "reason", "message", "observedGeneration")} == {
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "observedGeneration": 2,
    }
    # A scheduled pod is deleted gracefully: marked, and one generation further.
    assert evicted["metadata"]["deletionTimestamp"]
    assert evicted["metadata"]["generation"] == 3


def bind_with_client(cluster: InProcessCluster, core: client.CoreV1Api, name: str) -> None:
    """POST pods/{name}/binding, as kube-scheduler's DefaultBinder does."""
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"kind": "Node", "name": "node-b"},
    }
    core.create_namespaced_pod_binding(name, NS, binding, _preload_content=False)


def bind_with_kubectl(cluster: InProcessCluster, core: client.CoreV1Api, name: str) -> None:
    """kubectl create of a Binding: the older POST .../bindings, pods/binding's twin."""
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": NS},
        "target": {"kind": "Node", "name": "node-b"},
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(binding))


UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/1 nodes are available: 1 Insufficient cpu.",
    "observedGeneration": 1,
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}

Bind = Callable[[InProcessCluster, client.CoreV1Api, str], None]


@pytest.mark.parametrize(
    "bind",
    [
        pytest.param(bind_with_client, id="pods-binding"),
        pytest.param(bind_with_kubectl, id="kubectl-bindings"),
    ],
)
@pytest.mark.parametrize(
    "earlier",
    [
        pytest.param(None, id="new-condition"),
        pytest.param(UNSCHEDULABLE, id="replaces-unschedulable"),
    ],
)
def test_a_binding_marks_the_pod_scheduled_at_its_current_generation(
    cluster: InProcessCluster, core: client.CoreV1Api, bind: Bind, earlier: Object | None
) -> None:
    """PodScheduled=True names generation 2 (after a spec change); binding bumps nothing."""
    name = f"bound-{bind.__name__.rsplit('_', 1)[-1]}-{'fresh' if earlier is None else 'stale'}"
    create_pod(core, name)
    if earlier is not None:
        write_condition(core, name, earlier)
    assert bump(core, name) == 2
    bind(cluster, core, name)

    bound = raw(core, name)
    assert bound["spec"]["nodeName"] == "node-b"
    (scheduled,) = conditions(bound, "PodScheduled")
    assert (scheduled["status"], scheduled["observedGeneration"]) == ("True", 2)
    assert "reason" not in scheduled and "message" not in scheduled
    assert bound["metadata"]["generation"] == 2
