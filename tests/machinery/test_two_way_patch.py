"""The two-way strategic merge patch, pinned to the server's own strategic merge.

For many random (old, new) pod statuses, applying ``create_two_way_merge_patch``'s
patch to old with ``apply_strategic_merge_patch`` (what the PATCH handler runs)
must give exactly new, list order included; an unchanged status gives ``{}``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from kajitori.api import definitions
from kajitori.machinery.patching import apply_strategic_merge_patch, two_way

POD = definitions.schema_for("", "v1", "Pod")
DEPLOYMENT = definitions.schema_for("apps", "v1", "Deployment")

CONDITION_TYPES = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                   "PodScheduled", "DisruptionTarget"]  # fmt: skip
NAMES = ["app", "sidecar", "log", "b", "a10", "a9"]


def _condition(rng: random.Random, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "status": rng.choice(["True", "False"])}
    if rng.random() < 0.5:
        out["reason"] = rng.choice(["ContainersNotReady", "PodCompleted", "x"])
    out["lastTransitionTime"] = f"2026-11-26T22:0{rng.randint(0, 9)}:00Z"
    out["lastProbeTime"] = None
    return out


def _state(rng: random.Random) -> dict[str, Any]:
    choice = rng.randrange(3)
    if choice == 0:
        return {"waiting": {"reason": rng.choice(["ContainerCreating", "CrashLoopBackOff"])}}
    if choice == 1:
        return {"running": {"startedAt": f"2026-11-26T22:1{rng.randint(0, 9)}:00Z"}}
    return {"terminated": {"exitCode": rng.choice([0, 1, 137]), "reason": "Completed"}}


def _container(rng: random.Random, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "state": _state(rng),
        "lastState": rng.choice([{}, {"terminated": {"exitCode": 1}}]),
        "ready": rng.random() < 0.5,
        "restartCount": rng.randint(0, 2),
        "image": "busybox",
        "imageID": "",
        "started": rng.random() < 0.5,
    }
    if rng.random() < 0.5:
        out["containerID"] = f"containerd://{rng.randint(0, 3)}"
    return out


def _subset(rng: random.Random, items: list[str]) -> list[str]:
    chosen = [x for x in items if rng.random() < 0.6]
    rng.shuffle(chosen)
    return chosen


def random_status(rng: random.Random) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": rng.choice(["Pending", "Running", "Failed"])}
    if rng.random() < 0.9:
        status["conditions"] = [_condition(rng, t) for t in _subset(rng, CONDITION_TYPES)]
    if rng.random() < 0.9:
        status["containerStatuses"] = [_container(rng, n) for n in _subset(rng, NAMES)]
    if rng.random() < 0.3:
        status["initContainerStatuses"] = [_container(rng, n) for n in _subset(rng, NAMES)]
    if rng.random() < 0.7:
        ips = _subset(rng, ["10.0.0.2", "10.0.0.3", "fd00::2"])
        if ips:
            status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    if rng.random() < 0.7:
        status["hostIP"] = "172.18.0.2"
        status["hostIPs"] = [{"ip": "172.18.0.2"}]
    if rng.random() < 0.5:
        status["startTime"] = f"2026-11-26T22:0{rng.randint(0, 2)}:00Z"
    if rng.random() < 0.5:
        status["qosClass"] = rng.choice(["BestEffort", "Burstable"])
    return status


def mutate(rng: random.Random, status: dict[str, Any]) -> dict[str, Any]:
    """A new status near ``status``: some entries changed, added, removed or reordered."""
    new = random_status(rng) if rng.random() < 0.3 else _near(rng, status)
    return new


def _near(rng: random.Random, status: dict[str, Any]) -> dict[str, Any]:
    new = {k: v for k, v in status.items() if rng.random() < 0.9}
    for field, key, make in (
        ("conditions", "type", _condition),
        ("containerStatuses", "name", _container),
    ):
        items = [dict(x) for x in new.get(field) or [] if rng.random() < 0.85]
        for item in items:
            if rng.random() < 0.4:
                item.update({k: v for k, v in make(rng, item[key]).items() if rng.random() < 0.5})
            if rng.random() < 0.1:
                item.pop(rng.choice([k for k in item if k != key]), None)
        pool = CONDITION_TYPES if key == "type" else NAMES
        taken = {item[key] for item in items}
        for name in pool:
            if name not in taken and rng.random() < 0.2:
                items.insert(rng.randint(0, len(items)), make(rng, name))
        if rng.random() < 0.2:
            rng.shuffle(items)
        if items or field in new:
            new[field] = items
    if rng.random() < 0.3:
        new["phase"] = rng.choice(["Pending", "Running", "Succeeded"])
    return new


def _roundtrip(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    patch = two_way.create_two_way_merge_patch({"status": old}, {"status": new}, POD)
    return apply_strategic_merge_patch({"status": old}, patch, POD)


def _without_nulls(value: Any) -> Any:
    """As the handler stores it: a null member is absent (Go decodes both to the zero value)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("seed", range(4))
def test_applying_the_patch_to_old_gives_new(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        old = random_status(rng)
        new = mutate(rng, old)
        got = _without_nulls(_roundtrip(old, new))
        assert two_way.deep_equal(got, _without_nulls({"status": new})), (old, new)
        # Order too: deep_equal compares lists element by element.
        assert [c["type"] for c in got["status"].get("conditions") or []] == [
            c["type"] for c in new.get("conditions") or []
        ]


def test_equal_objects_give_an_empty_patch() -> None:
    rng = random.Random(7)
    for _ in range(200):
        old = random_status(rng)
        copy = {k: (list(v) if isinstance(v, list) else v) for k, v in old.items()}
        assert two_way.create_two_way_merge_patch({"status": old}, {"status": copy}, POD) == {}


def test_the_patch_is_upstreams() -> None:
    """A ContainerCreating → Running write, as CreateTwoWayMergePatch writes it.

    Conditions merge by type; containerStatuses have no patch strategy in
    1.37's PodStatus (listType atomic), so a changed list is sent whole.
    """
    old = {
        "phase": "Pending",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "X"}}}],
    }
    new = {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [{"name": "app", "state": {"running": {"startedAt": "t"}}}],
        "podIPs": [{"ip": "10.0.0.2"}],
    }
    patch = two_way.create_two_way_merge_patch({"status": old}, {"status": new}, POD)
    assert patch == {
        "status": {
            "phase": "Running",
            "$setElementOrder/conditions": [{"type": "Ready"}, {"type": "PodScheduled"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": None}],
            # Atomic in 1.37's types (no patch strategy): sent whole, as upstream.
            "containerStatuses": [{"name": "app", "state": {"running": {"startedAt": "t"}}}],
            "podIPs": [{"ip": "10.0.0.2"}],
        }
    }


def test_removed_elements_are_delete_directives_after_the_changes() -> None:
    old = {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]}
    new = {"conditions": [{"type": "B", "status": "False"}]}
    patch = two_way.create_two_way_merge_patch({"status": old}, {"status": new}, POD)
    assert patch["status"]["conditions"] == [
        {"type": "B", "status": "False"},
        {"type": "A", "$patch": "delete"},
    ]
    assert patch["status"]["$setElementOrder/conditions"] == [{"type": "B"}]


def test_reorder_alone_sends_only_the_order() -> None:
    old = {"conditions": [{"type": "A"}, {"type": "B"}]}
    new = {"conditions": [{"type": "B"}, {"type": "A"}]}
    patch = two_way.create_two_way_merge_patch({"status": old}, {"status": new}, POD)
    assert patch == {"status": {"$setElementOrder/conditions": [{"type": "B"}, {"type": "A"}]}}
    assert _roundtrip(old, new) == {"status": new}


def test_int_and_float_differ_as_in_go() -> None:
    patch = two_way.create_two_way_merge_patch({"a": 1}, {"a": 1.0}, None)
    assert patch == {"a": 1.0}


def test_primitive_merge_lists_and_retain_keys_round_trip() -> None:
    """Finalizers merge as a set of scalars; volumes are merge,retainKeys (spec fields)."""
    old = {
        "metadata": {"finalizers": ["a", "b", "c"]},
        "spec": {"template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}},
    }
    new = {
        "metadata": {"finalizers": ["c", "d", "a"]},
        "spec": {"template": {"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}}},
    }
    patch = two_way.create_two_way_merge_patch(old, new, DEPLOYMENT)
    assert patch["metadata"]["$deleteFromPrimitiveList/finalizers"] == ["b"]
    assert patch["metadata"]["$setElementOrder/finalizers"] == ["c", "d", "a"]
    volume = patch["spec"]["template"]["spec"]["volumes"][0]
    assert volume["$retainKeys"] == ["hostPath", "name"]
    assert apply_strategic_merge_patch(old, patch, DEPLOYMENT) == new


def _random_ordered_patch(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """A status and a patch of its conditions with ``$setElementOrder``, odd cases included."""
    types = ["A", "B", "C", "D", "E"]
    server: list[Any] = [
        {"type": t, "status": rng.choice(["True", "False"])} for t in _subset(rng, types)
    ]
    if rng.random() < 0.1 and server:
        server.append(dict(server[0]))  # a duplicate key on the server
    if rng.random() < 0.05:
        server.append({"status": "True"})  # no merge key
    patch_items: list[Any] = []
    for t in _subset(rng, types):
        roll = rng.random()
        if roll < 0.15:
            patch_items.append({"type": t, "$patch": "delete"})
        elif roll < 0.2:
            patch_items.append({"status": "x"})  # no merge key
        else:
            patch_items.append({"type": t, "status": rng.choice(["True", "False", None])})
    if rng.random() < 0.05:
        patch_items.append({"$patch": "replace"})
    order_keys = _subset(rng, types) if rng.random() < 0.3 else list(types)
    rng.shuffle(order_keys)
    wanted: list[Any] = [{"type": t} for t in order_keys]
    if rng.random() < 0.05:
        wanted.append("not-a-map")
    patch = {"status": {"conditions": patch_items, "$setElementOrder/conditions": wanted}}
    return {"status": {"conditions": server}}, patch


def _outcome(doc: dict[str, Any], patch: dict[str, Any]) -> Any:
    try:
        return apply_strategic_merge_patch(doc, patch, POD)
    except Exception as exc:
        return (type(exc).__name__, str(exc), getattr(exc, "code", None))


def test_fully_named_order_shortcut_gives_the_general_paths_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``strategic._merge_fully_named`` against the general merge-then-order path."""
    from kajitori.machinery.patching import strategic

    rng = random.Random(680)
    taken = 0
    for _ in range(3000):
        doc, patch = _random_ordered_patch(rng)
        fast = _outcome(doc, patch)
        with monkeypatch.context() as patched:
            patched.setattr(strategic, "_merge_fully_named", lambda *args: None)
            slow = _outcome(doc, patch)
        assert fast == slow, (doc, patch)
        conditions = patch["status"]["conditions"]
        wanted = patch["status"]["$setElementOrder/conditions"]
        taken += (
            strategic._merge_fully_named(
                doc["status"]["conditions"],
                conditions,
                wanted,
                strategic.field_meta(
                    POD.field("status") if POD else None, "conditions", is_list=True
                ),
            )
            is not None
            if doc["status"]["conditions"] and conditions
            else 0
        )
    assert taken > 300  # the shortcut answered a good share of them
