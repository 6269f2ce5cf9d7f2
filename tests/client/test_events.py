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


async def test_similar_events_are_combined_from_the_tenth_and_spam_is_capped(
    admin: rest.Client,
) -> None:
    """Upstream's correlator: 9 Events, then one combined Event counted up, 25 writes in all."""
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "many", "namespace": "default", "uid": "many-uid"},
    }
    recorder = events.EventRecorder(admin, component="replicaset-controller")
    recorder.start()
    try:
        for i in range(40):
            recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: many-{i}")
        await recorder.flush()
    finally:
        await recorder.stop()
    listed = await admin.list(rest.EVENTS, namespace="default")
    mine = [e for e in listed["items"] if e["involvedObject"].get("name") == "many"]
    plain = sorted(e["message"] for e in mine if e["count"] == 1 and "combined" not in e["message"])
    assert plain == sorted(f"Created pod: many-{i}" for i in range(9))
    (combined,) = [e for e in mine if e["message"].startswith(events.AGGREGATE_PREFIX)]
    # 25 writes were allowed: 9 plain creates, the combined create and 15 patches of it.
    assert combined["count"] == 16
    assert combined["message"] == events.AGGREGATE_PREFIX + "Created pod: many-24"
    assert combined["reason"] == "SuccessfulCreate"


async def test_the_spam_filter_refills_one_event_per_five_minutes(admin: rest.Client) -> None:
    """Past the burst of 25 an object's events are dropped until the bucket refills."""
    recorder = events.EventRecorder(admin, component="test-controller")
    now = [1000.0]
    recorder.broadcaster.clock = lambda: now[0]
    allowed_ = recorder.broadcaster._allowed
    subject = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "spammy", "namespace": "default", "uid": "s"}}  # fmt: skip
    allowed = 0
    for _ in range(30):
        event = recorder._new_event(subject, "Warning", "BackOff", "same", "")
        allowed += allowed_(event)
    assert allowed == events.SPAM_BURST
    now[0] += 299
    assert not allowed_(recorder._new_event(subject, "Warning", "BackOff", "same", ""))
    now[0] += 2
    assert allowed_(recorder._new_event(subject, "Warning", "BackOff", "same", ""))
    other = {**subject, "metadata": {**subject["metadata"], "name": "other", "uid": "o"}}
    assert allowed_(recorder._new_event(other, "Warning", "BackOff", "same", ""))
