"""The remembered answers of a pod write give what the full walks give.

A pod create, a ``pods`` PUT and a ``pods/status`` PUT run the same steps as the
API server (type check, Go shaping, defaulting, the strategy, validation) on
seeded random edits of realistic pods, once with every ``shapes.JsonMemo``
kept warm from write to write and once with all of them forgotten before each
write (the full path). The stored bytes, the 400 texts and the validation
errors (types, paths, values, messages, order) must be the same. Most edits
repeat a workload's spec with other names, as a ReplicaSet's pods do, so the
remembered answers are used as well as filled.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson

from kajitori.api import definitions, normalize, typecheck
from kajitori.machinery import shapes
from kajitori.registry.core import pods

Object = dict[str, Any]

_SCHEMA = definitions.schema_for("", "v1", "Pod")
_BAD_VALUES: tuple[Any, ...] = (
    "",
    "Bad_Name!",
    -1,
    0,
    1,
    70000,
    None,
    "1x",
    "100m",
    "/abs",
    "../up",
    "10.0.0.01",
    {},
    [],
    True,
    1.5,
    {"x": 1},
    ["a"],
)


def _container(name: str, token_volume: str) -> Object:
    return {
        "name": name,
        "image": "registry.k8s.io/nginx-slim:0.27",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 10},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
        "volumeMounts": [
            {"name": "cache", "mountPath": "/var/cache/nginx"},
            {
                "name": token_volume,
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            },
        ],
    }


def _pod(name: str, token: str) -> Object:
    """A pod as a ReplicaSet creates it after admission: only names differ from pod to pod."""
    token_volume = f"kube-api-access-{token}"
    sidecar = {**_container("log", token_volume), "restartPolicy": "Always"}
    sidecar.pop("ports")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "web", "pod-template-hash": "6c7f7567dc"},
            "annotations": {"prometheus.io/scrape": "true"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-6c7f7567dc",
                    "uid": "3e9f5e3e-5e60-4c2d-b48f-27b65d48c1f6",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "initContainers": [
                {"name": "init", "image": "busybox", "command": ["true"]},
                sidecar,
            ],
            "containers": [_container("web", token_volume)],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {
                    "name": "config",
                    "configMap": {"name": "c", "items": [{"key": "a", "path": "a"}]},
                },
                {
                    "name": token_volume,
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt"}},
                        ],
                        "defaultMode": 420,
                    },
                },
            ],
            "serviceAccountName": "default",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
        },
    }


def _status(pod: Object, rng: random.Random) -> Object:
    ip = f"10.244.{rng.randrange(4)}.{rng.randrange(2, 250)}"
    now = "2026-11-26T15:48:09Z"
    conditions = [
        {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
        for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
    ]
    running = {"running": {"startedAt": now}}
    return {
        **pod,
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": "web",
                    "state": running,
                    "ready": True,
                    "restartCount": 0,
                    "image": "registry.k8s.io/nginx-slim:0.27",
                    "imageID": "",
                    "started": True,
                }
            ],
        },
    }


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*at, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*at, index)))
    return found


Edit = tuple[tuple[Any, ...], str, Any]


def _edits(template: Object, rng: random.Random, count: int, under: tuple[str, ...]) -> list[Edit]:
    """``count`` random edits of paths in ``template``: replace, drop or add a key.

    A few edits applied to many pods make the same invalid texts recur, so a
    remembered answer for an invalid text would be used (and caught).
    """
    paths = [p for p in _paths(template) if p[0] in under]
    edits: list[Edit] = []
    for _ in range(count):
        path = rng.choice(paths)
        action = rng.choice(("replace", "replace", "replace", "drop", "add"))
        if action == "add":
            path = (*path[:-1], rng.choice(["name", "image", "extra", "hostPort", "subPath"]))
        edits.append((path, action, rng.choice(_BAD_VALUES)))
    return edits


def _apply(obj: Object, edit: Edit) -> None:
    path, action, value = edit
    parent: Any = obj
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return  # an earlier edit removed the way there
    last = path[-1]
    if action == "drop" and isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, dict) or (
        isinstance(parent, list) and isinstance(last, int) and last < len(parent)
    ):
        parent[last] = copy.deepcopy(value)


def _write(body: Object, old: Object | None, subresource: str) -> tuple[Any, ...]:
    """What the server's write steps make of ``body``: a 400 text, or bytes and errors."""
    obj = copy.deepcopy(body)
    signature = shapes.body_signature(obj)
    problem = typecheck.first_type_error(obj, _SCHEMA, "Pod")
    if problem:
        return ("type", problem, signature)
    try:
        normalize.go_shape(obj)
    except ValueError as exc:
        return ("decode", str(exc), signature)
    strategy = pods.RESOURCE.status if subresource == "status" else pods.STRATEGY
    assert strategy is not None
    if old is None:
        strategy.set_defaults(obj)
        strategy.prepare_for_create(obj)
        errors = strategy.validate(obj)
    else:
        stored = copy.deepcopy(old)
        strategy.set_defaults_for_update(obj, stored)
        strategy.prepare_for_update(obj, stored)
        errors = strategy.validate_update(obj, stored)
    return ("stored", orjson.dumps(obj), signature, list(errors))


def _pinned(writes: list[tuple[Object, Object | None, str]]) -> int:
    """Run ``writes`` with memos kept, then each with none; the answers must match."""
    shapes.clear_json_memos()
    warm = [_write(body, old, sub) for body, old, sub in writes]
    invalid = 0
    for (body, old, sub), answer in zip(writes, warm, strict=True):
        shapes.clear_json_memos()
        assert _write(body, old, sub) == answer, (sub, body)
        invalid += answer[0] != "stored" or bool(answer[-1])
    return invalid


def _stored(pod: Object) -> Object:
    """``pod`` as the server stores it (what a kubelet then sends back)."""
    answer = _write(pod, None, "")
    assert answer[0] == "stored" and not answer[-1], answer
    stored: Object = orjson.loads(answer[1])
    stored["metadata"].update(
        resourceVersion="7", uid="u1", creationTimestamp="2026-11-26T15:48:09Z"
    )
    stored["spec"]["nodeName"] = "kajitori-worker"
    return stored


def test_pod_creates_get_the_full_paths_answers() -> None:
    rng = random.Random(57)
    edits = _edits(_pod("web", "00000"), rng, 40, ("spec", "metadata"))
    writes: list[tuple[Object, Object | None, str]] = []
    for i in range(200):
        body = _pod(f"web-{i}", f"{i:05x}")
        for _ in range(rng.choice((0, 0, 1, 2))):  # half repeat the workload's spec as is
            _apply(body, rng.choice(edits))
        writes.append((body, None, ""))
    invalid = _pinned(writes)
    assert 20 < invalid < 180  # both valid and invalid writes were compared


def test_pod_updates_and_status_writes_get_the_full_paths_answers() -> None:
    rng = random.Random(58)
    template = _stored(_pod("web", "00000"))
    status_edits = _edits(_status(template, rng), rng, 40, ("status", "spec", "metadata"))
    update_edits = _edits(template, rng, 40, ("spec", "metadata"))
    writes: list[tuple[Object, Object | None, str]] = []
    for i in range(120):
        stored = _stored(_pod(f"web-{i}", f"{i:05x}"))
        status = _status(stored, rng)
        for _ in range(rng.choice((0, 0, 1, 2))):
            _apply(status, rng.choice(status_edits))
        writes.append((status, stored, "status"))
        writes.append((copy.deepcopy(status), stored, "status"))  # the kubelet's next write
        update = copy.deepcopy(stored)
        for _ in range(rng.choice((0, 1, 1, 2))):
            _apply(update, rng.choice(update_edits))
        writes.append((update, stored, ""))
    invalid = _pinned(writes)
    assert 20 < invalid < 300


def test_an_unchanged_spec_is_remembered_as_unchanged_and_kept() -> None:
    """A spec sent back as stored costs an encode: shaping and defaulting keep the object."""
    shapes.clear_json_memos()
    stored = _stored(_pod("web-0", "00000"))
    first = copy.deepcopy(stored)
    normalize.go_shape(first)
    assert first == stored  # a stored pod is already Go-shaped
    again = copy.deepcopy(stored)
    spec = again["spec"]
    normalize.go_shape(again)
    assert again["spec"] is spec  # remembered as unchanged: no decode of a copy
    pods.STRATEGY.set_defaults(again)
    pods.STRATEGY.set_defaults(again)
    assert again["spec"] is spec
    assert again == stored
