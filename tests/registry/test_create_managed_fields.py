"""A create's managedFields: taken where upstream takes them, and remembered by text exactly.

Upstream's create handler runs the field manager on the decoded (defaulted)
object before mutating admission and before the strategy's
PrepareForCreate, so what those add is no manager's (decision 0062). The
tests check that position through the real API server (a pod's token
volume and default tolerations are not the creator's) and pin the memo of
objects with lists (``hooks._CREATE_TREES``) to the walk it stands for, on
seeded random pods whose texts recur.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.client import rest
from kajitori.machinery import shapes
from kajitori.machinery.fieldmanager import managers
from kajitori.registry.core import pods
from kajitori.registry.generic import hooks
from kajitori.registry.generic.request import RequestContext

Object = dict[str, Any]
NS = "create-fields"


pytestmark = pytest.mark.usefixtures("module_namespace")


def _pod(name: str = "", generate_name: str = "web-") -> Object:
    meta: Object = {"labels": {"app": "web"}}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                }
            ],
            "volumes": [{"name": "cache", "emptyDir": {}}],
        },
    }


async def test_a_create_owns_what_was_sent_and_defaulted_not_what_admission_added(
    admin: rest.Client,
) -> None:
    created = [await admin.create(rest.PODS, _pod(), namespace=NS) for _ in range(3)]
    entries = [pod["metadata"]["managedFields"] for pod in created]
    for pod, managed in zip(created, entries, strict=True):
        assert len(managed) == 1 and managed[0]["operation"] == "Update"
        spec = pod["spec"]
        # Admission added these to the stored pod ...
        token = [v["name"] for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
        assert len(token) == 1
        assert any(t.get("key") == "node.kubernetes.io/not-ready" for t in spec["tolerations"])
        assert spec["serviceAccountName"] == "default"
        # ... and the creator owns none of them: only what it sent and defaulting gave.
        owned = managed[0]["fieldsV1"]["f:spec"]
        assert set(owned["f:volumes"]) == {".", 'k:{"name":"cache"}'}
        container = owned["f:containers"]['k:{"name":"web"}']
        assert set(container["f:volumeMounts"]) == {".", 'k:{"mountPath":"/cache"}'}
        assert "f:tolerations" not in owned
        assert "f:serviceAccountName" not in owned
        assert "f:dnsPolicy" in owned and "f:restartPolicy" in owned  # defaulted
        assert "f:imagePullPolicy" in container and "f:terminationMessagePath" in container
        assert "f:status" not in managed[0]["fieldsV1"]
        assert set(managed[0]["fieldsV1"]["f:metadata"]) == {"f:generateName", "f:labels"}
    # Every pod of the same body gets the same fields, from the memo after the first.
    assert entries[0][0]["fieldsV1"] == entries[1][0]["fieldsV1"] == entries[2][0]["fieldsV1"]


async def test_system_metadata_a_client_sends_is_not_owned(admin: rest.Client) -> None:
    body = _pod(name="sent-meta")
    body["metadata"].update(
        uid="0b2e1c8a-0000-4000-8000-000000000000",
        creationTimestamp="2020-01-01T00:00:00Z",
        deletionTimestamp="2020-01-01T00:00:00Z",
        deletionGracePeriodSeconds=30,
        selfLink="/x",
    )
    created = await admin.create(rest.PODS, body, namespace=NS)
    meta = created["metadata"]
    assert meta["uid"] != body["metadata"]["uid"]
    assert "deletionTimestamp" not in meta and "deletionGracePeriodSeconds" not in meta
    assert set(meta["managedFields"][0]["fieldsV1"]["f:metadata"]) == {"f:labels"}


# ----- the memo against the walk ------------------------------------------------------


def _random_pod(rng: random.Random) -> Object:
    """A pod from a small set of parts (duplicate list keys among them)."""
    pod = _pod(name=rng.choice(["", "a", "b", "c"]), generate_name=rng.choice(["web-", "db-"]))
    spec = pod["spec"]
    container = spec["containers"][0]
    container["ports"] = rng.choice(
        [
            [{"containerPort": 80}],
            [{"containerPort": 80, "protocol": "UDP"}, {"containerPort": 80}],
            [{"containerPort": 80}, {"containerPort": 80}],  # duplicate keys: owned whole
            [],
        ]
    )
    if rng.random() < 0.5:
        container["env"] = [{"name": n, "value": "1"} for n in rng.sample(["A", "B", "C"], 2)]
    if rng.random() < 0.3:
        spec["containers"].append({"name": rng.choice(["side", "web"]), "image": "busybox"})
    if rng.random() < 0.3:
        spec["tolerations"] = [{"key": "k", "operator": "Exists"}]
    if rng.random() < 0.3:
        pod["metadata"]["annotations"] = {rng.choice(["x", "y"]): "1"}
    if rng.random() < 0.2:
        pod["status"] = {"phase": "Running"}
    if rng.random() < 0.2:
        pod["metadata"]["namespace"] = rng.choice(["ns1", "ns2"])
    return pod


def test_remembered_create_fields_equal_the_walk_on_random_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hooks, "_CREATE_TREES", shapes.JsonMemo(64, digest=True))
    walks = 0
    walk = managers.created_fields_v1

    def counted(obj: Object, schema: Any, scope: managers.Scope) -> Object | None:
        nonlocal walks
        walks += 1
        return walk(obj, schema, scope)

    monkeypatch.setattr(managers, "created_fields_v1", counted)
    rng = random.Random(62)
    scope = hooks.ownership_scope(pods.RESOURCE, "")
    pool = [_random_pod(rng) for _ in range(60)]
    for _ in range(400):
        pod = copy.deepcopy(rng.choice(pool))
        meta = pod["metadata"]
        if rng.random() < 0.5:  # unowned metadata: the same entry
            meta["name"] = f"pod-{rng.randrange(1000)}"
            meta["namespace"] = rng.choice(["ns1", "ns2"])
        expected = walk(copy.deepcopy(pod), definitions.schema_for("", "v1", "Pod"), scope)
        assert expected is not None
        obj = copy.deepcopy(pod)
        ctx = RequestContext(field_manager=rng.choice(["kubectl", "controller"]))
        hooks.track_managed_fields(pods.RESOURCE, obj, None, ctx, subresource="")
        managed = obj["metadata"]["managedFields"]
        assert len(managed) == 1
        assert managed[0]["manager"] == ctx.field_manager
        assert managed[0]["fieldsV1"] == expected
        # The tracked object is the one sent: only managedFields were added.
        assert {k: v for k, v in obj["metadata"].items() if k != "managedFields"} == pod["metadata"]
        # Each create gets a tree of its own.
        managed[0]["fieldsV1"]["f:spec"] = {"changed": {}}
    assert walks < 200  # the memo answered the rest


def test_objects_differing_only_in_unowned_metadata_share_an_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = shapes.JsonMemo(64, digest=True)
    monkeypatch.setattr(hooks, "_CREATE_TREES", memo)
    ctx = RequestContext(field_manager="kubectl")
    for name in ("one", "two"):
        obj = _pod(name=name)
        obj["metadata"].update(namespace="ns-" + name, uid="u-" + name, generation=3)
        hooks.track_managed_fields(pods.RESOURCE, obj, None, ctx, subresource="")
    assert len(memo._seen) == 1
    # A stripped field holding a map is part of the key: its children are owned.
    odd = _pod(name="three")
    odd["metadata"]["name"] = {"x": "y"}
    hooks.track_managed_fields(pods.RESOURCE, odd, None, ctx, subresource="")
    assert odd["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:name"] == {"f:x": {}}
    assert len(memo._seen) == 2


def test_a_replaced_schema_is_not_answered_from_the_old_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = shapes.JsonMemo(64, digest=True)
    monkeypatch.setattr(hooks, "_CREATE_TREES", memo)
    ctx = RequestContext(field_manager="kubectl")
    hooks.track_managed_fields(pods.RESOURCE, _pod(), None, ctx, subresource="")
    (key,) = memo._seen
    schema, encoded = memo._seen[key]
    memo._seen[key] = (object(), b'{"f:wrong":{}}')  # as if stored under another schema
    obj = _pod()
    hooks.track_managed_fields(pods.RESOURCE, obj, None, ctx, subresource="")
    assert "f:wrong" not in obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert memo._seen[key] == (schema, encoded)
