"""The event recorder writes core/v1 Events and counts repeats instead of duplicating them."""

from __future__ import annotations

from kajitori.client import events, rest


async def test_repeated_events_are_aggregated_by_count(admin: rest.Client) -> None:
    """The same event twice is one Event with count 2; a different message is another Event."""
    target = await admin.create(
        rest.CONFIGMAPS, {"metadata": {"name": "subject", "namespace": "default"}}
    )
    target.setdefault("kind", "ConfigMap")
    target.setdefault("apiVersion", "v1")
    recorder = events.EventRecorder(admin, component="test-controller")
    recorder.start()
    try:
        recorder.event(target, "Normal", "Synced", "all good")
        recorder.event(target, "Normal", "Synced", "all good")
        recorder.event(target, "Warning", "Failed", "not good")
        await recorder.flush()
    finally:
        await recorder.stop()
    listed = await admin.list(rest.EVENTS, namespace="default")
    mine = {e["reason"]: e for e in listed["items"] if e["involvedObject"].get("name") == "subject"}
    assert set(mine) == {"Synced", "Failed"}
    synced = mine["Synced"]
    assert synced["count"] == 2
    assert synced["type"] == "Normal"
    assert synced["source"] == {"component": "test-controller"}
    assert synced["involvedObject"]["uid"] == target["metadata"]["uid"]
    assert mine["Failed"]["count"] == 1


async def test_a_containers_event_carries_its_field_path_and_is_counted_apart(
    admin: rest.Client,
) -> None:
    """fieldPath names the container (upstream's GenerateContainerRef) and is in the dedup key."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fielded", "namespace": "default", "uid": "fielded-uid"},
    }
    recorder = events.EventRecorder(admin, component="kubelet", host="node-1")
    recorder.start()
    try:
        for _ in range(2):
            recorder.event(pod, "Normal", "Pulled", "present", field_path="spec.containers{c}")
        recorder.event(pod, "Normal", "Pulled", "present", field_path="spec.initContainers{i}")
        recorder.event(pod, "Normal", "Pulled", "present")  # about the pod itself
        await recorder.flush()
    finally:
        await recorder.stop()
    listed = await admin.list(rest.EVENTS, namespace="default")
    mine = [e for e in listed["items"] if e["involvedObject"].get("name") == "fielded"]
    counts = {e["involvedObject"].get("fieldPath"): e["count"] for e in mine}
    assert counts == {"spec.containers{c}": 2, "spec.initContainers{i}": 1, None: 1}
    assert all(e["involvedObject"]["kind"] == "Pod" for e in mine)
