"""PATCH leaves the stored metadata and spec unwalked only where that changes nothing.

On a live in-process server, every patch is sent twice as a dry run against
the same stored object: once as served (``patch._parts_left_as_stored`` may
skip the null dropping, type check, Go shaping and pruning of ``metadata`` and
``spec``) and once with that shortcut off (the whole result walked). The
answers (object, or error status) must be equal. The patches are the
kubelet's status patches, patches naming metadata with equal values of other
types (``1`` against ``1.0`` or ``true``), changed labels, spec changes,
top-level directives and merge patches, on Pods and Deployments (whose
template holds a ``creationTimestamp: null``).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.kubelet import status
from kajitori.server.handlers import patch as patch_handler

Object = dict[str, Any]
NS = "patch-stored-parts"

pytestmark = pytest.mark.usefixtures("module_namespace")


def _pod(name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}, "annotations": {"a": "1"}},
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]},
                {"name": "d", "image": "busybox"},
            ],
        },
    }


def _deployment(name: str) -> Object:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def _status(rng: random.Random) -> Object:
    phase = rng.choice(["Pending", "Running"])
    conditions = [
        {"type": t, "status": rng.choice(["True", "False"]), "lastProbeTime": None,
         "lastTransitionTime": "2026-11-26T22:00:00Z"}
        for t in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                  "PodScheduled"] if rng.random() < 0.8
    ]  # fmt: skip
    out: Object = {"phase": phase, "conditions": conditions, "hostIP": "172.18.0.2"}
    if rng.random() < 0.5:
        out["podIP"] = "10.244.0.5"
        out["podIPs"] = [{"ip": "10.244.0.5"}]
    if rng.random() < 0.5:
        out["containerStatuses"] = [
            {"name": "c", "ready": rng.random() < 0.5, "restartCount": rng.choice([0, 1]),
             "image": "busybox", "imageID": "", "state": {"waiting": {"reason": "X"}}}
        ]  # fmt: skip
    return out


def _patches(rng: random.Random, current: Object) -> list[tuple[str, Any]]:
    meta = current["metadata"]
    uid, rv = meta["uid"], meta["resourceVersion"]
    strategic = []
    for _ in range(4):
        body = status.status_patch(current, _status(rng))
        if body:
            strategic.append(body)
    strategic += [
        {"metadata": {"uid": uid}, "status": {"phase": "Running"}},
        {"metadata": {"generation": 1.0}, "status": {"phase": "Running"}},
        {"metadata": {"generation": True}, "status": {"phase": "Running"}},
        {"metadata": {"generation": meta.get("generation", 1)}, "status": {"phase": "Failed"}},
        {"metadata": {"resourceVersion": rv, "labels": {"app": "db"}}},
        {"metadata": {"resourceVersion": "1"}, "status": {"phase": "Running"}},
        {"metadata": {"labels": None}, "status": {"phase": "Running"}},
        {"metadata": {"annotations": {"a": "1"}}, "status": {"phase": "Running"}},
        {"metadata": {"$patch": "replace", "name": meta["name"]}},
        {"$retainKeys": ["metadata", "status"], "status": {"phase": "Running"}},
        {"spec": {"nodeName": "n2"}, "status": {"phase": "Running"}},
        {"spec": {"activeDeadlineSeconds": 5}},
        {"spec": {"replicas": 3}},
        {"status": {"phase": 5}},
        {"status": {"unknownField": 1, "phase": "Running"}},
        {"unknownTop": {"x": 1}},
    ]
    merge = [
        {"metadata": {"uid": uid}, "status": {"phase": "Running", "conditions": None}},
        {"metadata": {"generation": 1.0}, "status": {"hostIP": "172.18.0.3"}},
        {"status": {"phase": "Succeeded"}},
    ]
    return [("strategic", p) for p in strategic] + [("merge", p) for p in merge]


async def _answer(
    client: rest.Client, resource: rest.Resource, name: str, kind: str, body: Any
) -> Any:
    path = resource.path(namespace=NS, name=name, subresource="status")
    try:
        return await client.request(
            "PATCH",
            path,
            body=body,
            params={"dryRun": "All"},
            content_type=rest.PATCH_CONTENT_TYPES[kind],  # type: ignore[index]
        )
    except rest.ApiError as exc:
        return ("error", exc.status)


def _timeless(answer: Any) -> Any:
    """The answer without its managedFields times (the two calls may straddle a second)."""
    if isinstance(answer, dict):
        for entry in (answer.get("metadata") or {}).get("managedFields") or ():
            entry.pop("time", None)
    return answer


@pytest.mark.parametrize("resource", [rest.PODS, rest.DEPLOYMENTS], ids=["pod", "deployment"])
async def test_patches_answer_as_the_full_walk_does(
    admin: rest.Client, monkeypatch: pytest.MonkeyPatch, resource: rest.Resource
) -> None:
    rng = random.Random(68)
    name = f"target-{resource.plural}"
    body = _pod(name) if resource == rest.PODS else _deployment(name)
    current = await admin.create(resource, body, namespace=NS)
    shortcut = patch_handler._parts_left_as_stored
    skipped = 0
    for step in range(3):
        for kind, patch in _patches(rng, current):
            monkeypatch.setattr(patch_handler, "_parts_left_as_stored", shortcut)
            fast = await _answer(admin, resource, name, kind, patch)
            monkeypatch.setattr(patch_handler, "_parts_left_as_stored", lambda *a: ())
            full = await _answer(admin, resource, name, kind, patch)
            assert _timeless(fast) == _timeless(full), (kind, patch)
            skipped += bool(shortcut(_Scope(resource), _CT[kind], patch, current))
        # Move on: a real write, so the next patches meet another stored object.
        monkeypatch.setattr(patch_handler, "_parts_left_as_stored", shortcut)
        write = status.status_patch(current, _status(rng)) or {"status": {"phase": "Running"}}
        write["metadata"] = {"uid": current["metadata"]["uid"]}
        current = await admin.patch(
            resource, name, write, namespace=NS, patch_type="strategic", subresource="status"
        )
        assert step >= 0
    assert skipped >= 10  # the shortcut did apply to most of them


_CT = {"strategic": patch_handler.STRATEGIC_MERGE_PATCH, "merge": patch_handler.MERGE_PATCH}


class _Scope:
    """Just enough of a RequestScope for ``_parts_left_as_stored`` (built-in kinds)."""

    def __init__(self, resource: rest.Resource) -> None:
        class _Info:
            conversion = None
            strategy = object()

        class _Store:
            info = _Info()

        self.store = _Store()


async def test_a_patch_that_lost_a_race_answers_as_one_that_did_not(
    apiserver: APIServerProcess, admin: rest.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry merges the patch as the first attempt did, though that attempt used it up.

    The store's first guess at the pod is made stale (an older value of the
    key), so each real write loses its compare-and-swap once and is applied
    again to the stored pod; its answer must be the dry run's on that pod.
    """
    assert apiserver.registry is not None
    store = apiserver.registry.lookup("", "v1", "pods")
    name = "raced"
    current = await admin.create(rest.PODS, _pod(name), namespace=NS)
    _, stale = await store.backend.get(store.key(NS, name))
    assert stale is not None
    guesses: list[Any] = []
    monkeypatch.setattr(store, "_cached_for_update", lambda key: guesses.pop() if guesses else None)
    rng = random.Random(74)
    raced = 0
    for kind, patch in _patches(rng, current):
        expected = await _answer(admin, rest.PODS, name, kind, patch)
        guesses.append(stale)
        path = rest.PODS.path(namespace=NS, name=name, subresource="status")
        content_type = rest.PATCH_CONTENT_TYPES[kind]  # type: ignore[index]
        try:
            answer = await admin.request("PATCH", path, body=patch, content_type=content_type)
        except rest.ApiError as exc:
            answer = ("error", exc.status)
        raced += not guesses
        guesses.clear()
        if isinstance(answer, dict):
            assert isinstance(expected, dict), (kind, patch)
            for side in (answer, expected):
                side["metadata"].pop("resourceVersion")
        assert _timeless(answer) == _timeless(expected), (kind, patch)
    assert raced == len(_patches(random.Random(74), current))
