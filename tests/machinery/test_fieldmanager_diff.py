"""``typed.diff`` answers what comparing both objects' flat forms answers.

An update's managedFields come from the paths added, modified and removed
between the stored object and the new one. ``typed.diff`` skips the parts
both share instead of flattening both whole; these tests hold it to
``typed.compare(flatten(old), flatten(new))`` on a realistic pod (with the
kubelet's status) and on many seeded random edits of it and of other kinds:
keys added and removed, scalars changed (also between 1, 1.0 and true, which
name set items differently), list items added, dropped, duplicated, made
keyless or not objects, values turned from maps to lists to scalars, and
objects without a schema. ``managers.update`` is checked the same way.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.machinery.fieldmanager import managers, typed

STATUS_ONLY = managers.Scope(only=(("f:status",),))
NOT_STATUS = managers.Scope(reset=(("f:status",),))


def _pod() -> dict[str, Any]:
    condition = {
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": "default",
            "labels": {"app": "web", "pod-template-hash": "abc"},
            "annotations": {"a": "b"},
            "finalizers": ["a/b", "c/d"],
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1"}
            ],
            "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "args": ["sleep", "1"],
                    "ports": [{"containerPort": 80}, {"containerPort": 81, "protocol": "UDP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {}}],
                    "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "1"}},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                }
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "zone"}
                    ]
                }
            },
            "terminationGracePeriodSeconds": 0,
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodReadyToStartContainers", **condition},
                {"type": "Initialized", **condition},
                {"type": "Ready", **condition, "status": "False", "reason": "ContainersNotReady"},
                {"type": "PodScheduled", **condition},
            ],
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "startTime": "2026-01-01T00:00:00Z",
            "containerStatuses": [
                {
                    "name": "app",
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                    "ready": False,
                    "restartCount": 0,
                    "image": "busybox",
                    "imageID": "",
                    "started": False,
                }
            ],
            "qosClass": "Burstable",
        },
    }


def _running(pod: dict[str, Any]) -> dict[str, Any]:
    """The kubelet's second write: Running and Ready."""
    out = copy.deepcopy(pod)
    status = out["status"]
    status["phase"] = "Running"
    ready = status["conditions"][2]
    ready.update(status="True", lastTransitionTime="2026-01-01T00:00:02Z")
    del ready["reason"]
    status["containerStatuses"][0].update(
        state={"running": {"startedAt": "2026-01-01T00:00:02Z"}},
        ready=True,
        started=True,
        containerID="sim://1",
        imageID="sha256:x",
    )
    return out


_SCALARS = ["x", "", 0, 1, 1.0, True, False, None, 80, "80"]


def _containers(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) position inside ``value``."""
    found: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((value, key))
            found.extend(_containers(child))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((value, index))
            found.extend(_containers(child))
    return found


def _edit(obj: dict[str, Any], rng: random.Random) -> None:
    """One random edit of ``obj`` in place."""
    parent, key = rng.choice(_containers(obj))
    value = parent[key]
    choice = rng.randrange(8)
    if choice == 0:
        parent[key] = rng.choice(_SCALARS)
    elif choice == 1 and isinstance(parent, dict):
        del parent[key]
    elif choice == 2 and isinstance(parent, list):
        parent.append(copy.deepcopy(value))  # a duplicate item
    elif choice == 3 and isinstance(parent, list):
        del parent[key]
    elif choice == 4 and isinstance(value, dict):
        value[rng.choice(["name", "extra", "type", "ip", "containerPort"])] = rng.choice(_SCALARS)
    elif choice == 5 and isinstance(value, dict) and value:
        del value[rng.choice(list(value))]
    elif choice == 6:
        parent[key] = rng.choice([{}, [], [1, 1.0], [True], {"a": [1]}, [{"name": "z"}]])
    else:
        parent[key] = copy.deepcopy(value)  # unchanged, but a new object


def _expected(old: Any, new: Any, schema: Any) -> typed.Comparison:
    return typed.compare(typed.flatten(old, schema), typed.flatten(new, schema))


def _schema(group: str, kind: str) -> Any:
    return definitions.schema_for(group, "v1", kind)


def test_kubelet_status_writes() -> None:
    schema = _schema("", "Pod")
    first = _pod()
    second = _running(first)
    for old, new in [(first, second), (second, first), (first, copy.deepcopy(first))]:
        assert typed.diff(old, new, schema) == _expected(old, new, schema)
    found = typed.diff(first, second, schema)
    assert ("f:status", "f:phase") in found.modified
    assert ("f:status", "f:podIP") not in found.changed


@pytest.mark.parametrize("seed", range(300))
def test_random_edits(seed: int) -> None:
    rng = random.Random(seed)
    group, kind = rng.choice([("", "Pod"), ("", "Pod"), ("", "NoSuchKind"), ("apps", "Deployment")])
    base = _running(_pod()) if rng.random() < 0.5 else _pod()
    if kind == "Deployment":
        base = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": base["metadata"],
            "spec": {"replicas": 1, "template": {"metadata": {}, "spec": base["spec"]}},
        }
    schema = _schema(group, kind)
    old = copy.deepcopy(base)
    new = copy.deepcopy(base)
    for _ in range(rng.randrange(1, 5)):
        _edit(new if rng.random() < 0.7 else old, rng)
    assert typed.diff(old, new, schema) == _expected(old, new, schema)


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize(
    "scope", [managers.WHOLE, STATUS_ONLY, NOT_STATUS], ids=["whole", "status", "main"]
)
def test_update_entries(seed: int, scope: managers.Scope) -> None:
    rng = random.Random(seed)
    schema = _schema("", "Pod")
    old = _pod()
    new = _running(old)
    for _ in range(rng.randrange(0, 4)):
        _edit(new, rng)
    if not isinstance(new.get("metadata"), dict):
        new["metadata"] = {}
    stored = managers.update(
        None, old, [], manager="creator", api_version="v1", schema=schema, now="t0", scope=scope
    )
    got = managers.update(
        old, new, stored, manager="kubelet", api_version="v1", schema=schema, now="t1", scope=scope
    )
    change = typed.compare(managers._flat(old, schema, scope), managers._flat(new, schema, scope))
    before = {e.manager: e.fields for e in stored}
    expected = {m: f - change.changed - change.removed for m, f in before.items()}
    expected["kubelet"] = (change.changed) - change.removed
    assert {e.manager: e.fields for e in got} == {m: f for m, f in expected.items() if f}


@pytest.mark.parametrize("before,after", [(1, 1.0), (1, True), (0, False)])
def test_equal_numbers_of_other_types_name_other_items(before: Any, after: Any) -> None:
    # ``==`` equates them, but a set item's path is its JSON (finalizers are a set).
    schema = _schema("", "Pod")
    old = _pod()
    new = copy.deepcopy(old)
    old["metadata"]["finalizers"].append(before)
    new["metadata"]["finalizers"].append(after)
    found = typed.diff(old, new, schema)
    assert found == _expected(old, new, schema)
    assert found.added and found.removed
