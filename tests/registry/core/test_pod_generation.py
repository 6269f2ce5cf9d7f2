"""Pod ``metadata.generation`` and ``status.observedGeneration`` in the API server (KEP-5067).

Upstream 1.37 (PodObservedGenerationTracking, GA and locked on since 1.35):
a new pod is generation 1 whatever the client sent; an update that changes
the spec (an image, activeDeadlineSeconds, a toleration, by PUT, patch or
server-side apply) is the next generation, and nothing else is (labels,
annotations, status, a client's own ``generation``); the first graceful
deletion bumps it, a shorter grace later does not. ``pods/status`` keeps the
stored ``observedGeneration`` of the status and of each condition when a
write leaves it unset, takes any other value (a regression too), and
refuses a negative one. Each case runs over HTTPS against an in-process
cluster, through the official client and the real kubectl.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import causes, refused

from kajitori.registry.core import pods
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


def pod(name: str, *, node: str = "", **meta: Any) -> Object:
    spec: Object = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def raw(core: client.CoreV1Api, name: str) -> Object:
    """The stored pod as JSON (the typed client's models would hide a missing field)."""
    response = core.read_namespaced_pod(name, NS, _preload_content=False)
    found: Object = json.loads(response.data)
    return found


def generation(core: client.CoreV1Api, name: str) -> int:
    value: int = raw(core, name)["metadata"]["generation"]
    return value


def kubectl_generation(cluster: InProcessCluster, name: str) -> str:
    return cluster.kubectl("get", "pod", name, "-o", "jsonpath={.metadata.generation}").stdout


def write_status(core: client.CoreV1Api, name: str, status: Object) -> Object:
    """PUT ``pods/status`` with ``status`` on the stored pod; the answer as JSON."""
    body = raw(core, name)
    body["status"] = status
    response = core.replace_namespaced_pod_status(name, NS, body, _preload_content=False)
    answered: Object = json.loads(response.data)
    return answered


def condition(kind: str, observed: int | None = None, status: str = "True") -> Object:
    found: Object = {"type": kind, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if observed is not None:
        found["observedGeneration"] = observed
    return found


def test_a_new_pod_is_generation_1_whatever_the_client_sent(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    """PrepareForCreate sets generation 1 and a fresh status without observedGeneration."""
    sent = pod("born", generation=7)
    sent["status"] = {"observedGeneration": 7}
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(sent))
    stored = raw(core, "born")
    assert stored["metadata"]["generation"] == 1
    assert "observedGeneration" not in stored["status"]
    assert kubectl_generation(cluster, "born") == "1"


def test_a_spec_change_is_the_next_generation_metadata_changes_are_not(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    """Image (kubectl set image), a toleration (JSON patch) bump; labels, annotations do not."""
    core.create_namespaced_pod(NS, pod("grows"))
    cluster.kubectl("label", "pod", "grows", "tier=web")
    cluster.kubectl("annotate", "pod", "grows", "note=x")
    assert generation(core, "grows") == 1
    cluster.kubectl("set", "image", "pod/grows", "c=busybox:1.37")
    assert kubectl_generation(cluster, "grows") == "2"
    toleration = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    add = [{"op": "add", "path": "/spec/tolerations/-", "value": toleration}]
    core.patch_namespaced_pod("grows", NS, add)  # a JSON patch: only additions are allowed
    assert generation(core, "grows") == 3
    cluster.kubectl("label", "pod", "grows", "tier=db", "--overwrite")
    assert generation(core, "grows") == 3


def test_a_client_cannot_set_the_generation_on_update(core: client.CoreV1Api) -> None:
    """BeforeUpdate takes the stored generation; only a spec change moves it."""
    core.create_namespaced_pod(NS, pod("pinned"))
    body = raw(core, "pinned")
    body["metadata"]["generation"] = 99
    body["metadata"]["labels"] = {"a": "b"}
    replaced = core.replace_namespaced_pod("pinned", NS, body, _preload_content=False)
    assert json.loads(replaced.data)["metadata"]["generation"] == 1
    body = raw(core, "pinned")
    body["metadata"]["generation"] = 99
    body["spec"]["activeDeadlineSeconds"] = 600
    replaced = core.replace_namespaced_pod("pinned", NS, body, _preload_content=False)
    assert json.loads(replaced.data)["metadata"]["generation"] == 2


def test_server_side_apply_of_a_new_image_is_the_next_generation(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    """kubectl apply --server-side runs the same update steps."""
    manifest = json.dumps(pod("applied"))
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifest)
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifest)
    assert generation(core, "applied") == 1
    changed = pod("applied")
    changed["spec"]["containers"][0]["image"] = "busybox:1.37"
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(changed))
    assert generation(core, "applied") == 2


def test_a_status_write_never_bumps_and_cannot_set_the_generation(
    core: client.CoreV1Api,
) -> None:
    """pods/status keeps the stored generation and stores the observedGeneration sent."""
    core.create_namespaced_pod(NS, pod("reported", node="node-a"))
    body = raw(core, "reported")
    body["metadata"]["generation"] = 5
    body["status"]["observedGeneration"] = 1
    response = core.replace_namespaced_pod_status("reported", NS, body, _preload_content=False)
    answered = json.loads(response.data)
    assert answered["metadata"]["generation"] == 1
    assert answered["status"]["observedGeneration"] == 1
    typed = core.read_namespaced_pod_status("reported", NS)
    assert typed.status.observed_generation == 1


def test_a_status_write_without_observed_generations_keeps_the_stored_ones(
    core: client.CoreV1Api,
) -> None:
    """preserveOldObservedGeneration: status and conditions (matched by type, in order)."""
    core.create_namespaced_pod(NS, pod("remembers", node="node-a"))
    write_status(
        core,
        "remembers",
        {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "observedGeneration": 1,
            "conditions": [
                condition("example.com/a", 1),
                condition("example.com/a", 4),
                condition("Ready", 1, "False"),
            ],
        },
    )
    answered = write_status(
        core,
        "remembers",
        {
            "phase": "Running",
            "qosClass": "BestEffort",
            "conditions": [
                condition("example.com/a"),
                condition("example.com/a", 0),
                condition("example.com/b"),
                condition("Ready", 3, "True"),
            ],
        },
    )
    status = answered["status"]
    assert status["observedGeneration"] == 1
    kept = [(c["type"], c.get("observedGeneration")) for c in status["conditions"]]
    assert kept == [
        ("example.com/a", 1),
        ("example.com/a", 4),
        ("example.com/b", None),
        ("Ready", 3),
    ]


def test_an_observed_generation_may_go_back(core: client.CoreV1Api) -> None:
    """Upstream validates no order: the kubelet is the source of truth."""
    core.create_namespaced_pod(NS, pod("rewinds", node="node-a"))
    core.patch_namespaced_pod("rewinds", NS, {"spec": {"activeDeadlineSeconds": 60}})
    write_status(core, "rewinds", {"qosClass": "BestEffort", "observedGeneration": 2})
    answered = write_status(core, "rewinds", {"qosClass": "BestEffort", "observedGeneration": 1})
    assert answered["status"]["observedGeneration"] == 1
    ahead = write_status(core, "rewinds", {"qosClass": "BestEffort", "observedGeneration": 9})
    assert ahead["status"]["observedGeneration"] == 9


INVALID_STATUSES = [
    pytest.param(
        {"observedGeneration": -1},
        [
            (
                "FieldValueInvalid",
                "status.observedGeneration",
                "Invalid value: -1: must be a non-negative integer",
            )
        ],
        id="negative-status-generation",
    ),
    pytest.param(
        {"conditions": [condition("Ready"), condition("PodScheduled", -2)]},
        [
            (
                "FieldValueInvalid",
                "status.conditions[1].observedGeneration",
                "Invalid value: -2: must be a non-negative integer",
            )
        ],
        id="negative-condition-generation",
    ),
]


@pytest.mark.parametrize(("status", "expected"), INVALID_STATUSES)
def test_a_negative_observed_generation_is_refused(
    core: client.CoreV1Api, status: Object, expected: list[tuple[str, str, str]]
) -> None:
    """ValidatePodStatusUpdate: 422 with upstream's path and message."""
    name = f"negative-{len(status)}-{'conditions' in status}".lower()
    core.create_namespaced_pod(NS, pod(name, node="node-a"))
    body = raw(core, name)
    body["status"].update(status)
    failure = refused(core.replace_namespaced_pod_status, name, NS, body)
    assert causes(failure) == expected
    assert "observedGeneration" not in raw(core, name)["status"]


def test_a_custom_condition_type_must_be_a_qualified_name(core: client.CoreV1Api) -> None:
    """validatePodConditions: the path names the field ``Type``, as upstream's does."""
    core.create_namespaced_pod(NS, pod("oddly", node="node-a"))
    body = raw(core, "oddly")
    body["status"]["conditions"] = [condition("Ready"), condition("not ok!")]
    failure = refused(core.replace_namespaced_pod_status, "oddly", NS, body)
    ((reason, path, message),) = causes(failure)
    assert (reason, path) == ("FieldValueInvalid", "status.conditions[1].Type")
    assert message.startswith('Invalid value: "not ok!": name part must consist of')


def test_the_first_graceful_deletion_bumps_the_generation_once(
    cluster: InProcessCluster, core: client.CoreV1Api
) -> None:
    """BeforeDelete: a scheduled pod marked for deletion is generation+1; a shorter grace is not."""
    core.create_namespaced_pod(NS, pod("leaving", node="node-a"))
    core.patch_namespaced_pod("leaving", NS, {"spec": {"activeDeadlineSeconds": 60}})
    cluster.kubectl("delete", "pod", "leaving", "--grace-period=30", "--wait=false")
    marked = raw(core, "leaving")["metadata"]
    assert (marked["generation"], marked["deletionGracePeriodSeconds"]) == (3, 30)
    cluster.kubectl("delete", "pod", "leaving", "--grace-period=10", "--wait=false")
    shortened = raw(core, "leaving")["metadata"]
    assert (shortened["generation"], shortened["deletionGracePeriodSeconds"]) == (3, 10)


def test_an_unscheduled_pod_is_answered_marked_with_the_next_generation(
    core: client.CoreV1Api,
) -> None:
    """Grace 0 still goes through BeforeDelete: the answer (the marked pod) is generation 2."""
    core.create_namespaced_pod(NS, pod("floating"))
    response = core.delete_namespaced_pod("floating", NS, _preload_content=False)
    answered = json.loads(response.data)["metadata"]
    assert (answered["generation"], answered["deletionGracePeriodSeconds"]) == (2, 0)


PRESERVED = [
    pytest.param({}, {"observedGeneration": 3}, {"observedGeneration": 3}, id="unset-keeps"),
    pytest.param(
        {"observedGeneration": 0},
        {"observedGeneration": 3},
        {"observedGeneration": 3},
        id="zero-keeps",
    ),
    pytest.param(
        {"observedGeneration": 2},
        {"observedGeneration": 3},
        {"observedGeneration": 2},
        id="set-wins",
    ),
    pytest.param({}, {}, {}, id="nothing-stored"),
    pytest.param(
        {"conditions": [{"type": "A"}, {"type": "B", "observedGeneration": 5}]},
        {"conditions": [{"type": "B", "observedGeneration": 1}, {"type": "A"}]},
        {"conditions": [{"type": "A"}, {"type": "B", "observedGeneration": 5}]},
        id="stored-condition-without-one",
    ),
]


@pytest.mark.parametrize(("new", "old", "expected"), PRESERVED)
def test_preserve_observed_generation_table(new: Object, old: Object, expected: Object) -> None:
    """The strategy step alone, on the shapes the HTTPS tests do not reach."""
    pods.preserve_observed_generation(new, old)
    assert new == expected


def test_a_pod_stored_without_a_generation_counts_from_zero() -> None:
    """A pod written before generations: unchanged spec keeps none, a change makes it 1."""
    old: Object = {"metadata": {"name": "p"}, "spec": {"containers": [{"image": "a"}]}}
    same: Object = {"metadata": {"name": "p", "generation": 4}, "spec": old["spec"]}
    pods.update_pod_generation(same, old)
    assert "generation" not in same["metadata"]
    changed: Object = {"metadata": {"name": "p"}, "spec": {"containers": [{"image": "b"}]}}
    pods.update_pod_generation(changed, old)
    assert changed["metadata"]["generation"] == 1
