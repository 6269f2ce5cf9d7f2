"""The ReplicaSet controller's pure parts: which pods go first, batches, status, expectations."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest

from kajitori.client import informer, rest
from kajitori.controllers import replicaset
from kajitori.controllers.common import controller_ref, expectations, pod_control, pod_util

Object = dict[str, Any]
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def _at(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready_for: float | None = 3600,
    created: float = 7200,
    cost: int | None = None,
    restarts: int = 0,
    labels: dict[str, str] | None = None,
) -> Object:
    meta: Object = {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": _at(created),
        "labels": labels or {"app": "a"},
    }
    if cost is not None:
        meta["annotations"] = {replicaset.DELETION_COST_ANNOTATION: str(cost)}
    conditions = []
    if ready_for is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": _at(ready_for)})
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(_pod("a", node=""), _pod("b"), id="unscheduled-before-scheduled"),
        pytest.param(_pod("a", phase="Pending"), _pod("b"), id="pending-before-running"),
        pytest.param(_pod("a", phase="Unknown"), _pod("b"), id="unknown-before-running"),
        pytest.param(_pod("a", ready_for=None), _pod("b"), id="not-ready-before-ready"),
        pytest.param(_pod("a", cost=-5), _pod("b", cost=10), id="lower-deletion-cost-first"),
        pytest.param(_pod("a", ready_for=10), _pod("b", ready_for=5000), id="recently-ready-first"),
        pytest.param(_pod("a", restarts=3), _pod("b"), id="more-restarts-first"),
        pytest.param(_pod("a", created=10), _pod("b", created=90000), id="newer-first"),
    ],
)
def test_surplus_pods_are_deleted_in_upstreams_order(first: Object, second: Object) -> None:
    """Of two pods the one upstream prefers to delete is picked, whatever the input order."""
    for pods in ([first, second], [second, first]):
        assert replicaset.pods_to_delete(pods, 1, now=NOW) == [first]


def test_pods_doubled_up_on_a_node_go_before_lone_ones() -> None:
    """Colocation rank: a pod sharing its node with a sibling is deleted first."""
    lone, crowded, sibling = _pod("lone", node="n1"), _pod("c", node="n2"), _pod("s", node="n2")
    chosen = replicaset.pods_to_delete([lone, crowded, sibling], 1, now=NOW)
    assert chosen[0]["spec"]["nodeName"] == "n2"


def test_close_ready_times_fall_in_one_bucket_and_the_uid_decides() -> None:
    """Ready 1000 s vs 1001 s ago share a log2 bucket, so the lower UID goes first."""
    a, b = _pod("a", ready_for=1001), _pod("b", ready_for=1000)
    assert replicaset.pods_to_delete([b, a], 1, now=NOW) == [a]


@pytest.mark.parametrize(
    ("count", "batches"),
    [
        pytest.param(1, [1], id="one"),
        pytest.param(5, [1, 2, 2], id="five"),
        pytest.param(10, [1, 2, 4, 3], id="ten"),
        pytest.param(0, [], id="none"),
    ],
)
def test_creations_go_in_slow_start_batches(count: int, batches: list[int]) -> None:
    """Batches double from 1 and together make exactly ``count``."""
    assert replicaset.slow_start_batches(count) == batches


def _rs(**spec: Any) -> Object:
    return {
        "metadata": {"name": "rs", "generation": 2},
        "spec": {
            "replicas": 3,
            "template": {"metadata": {"labels": {"app": "a", "tier": "t"}}},
            **spec,
        },
        "status": {"observedGeneration": 1},
    }


def test_status_counts_fully_labelled_ready_and_available_pods() -> None:
    """minReadySeconds 60: a pod ready 10 s ago is ready but not yet available."""
    pods = [
        _pod("full", labels={"app": "a", "tier": "t"}, ready_for=3600),
        _pod("partial", ready_for=10),
        _pod("waiting", ready_for=None),
    ]
    status = replicaset.calculate_status(_rs(minReadySeconds=60), pods, now=NOW, error=None)
    assert status == {
        "replicas": 3,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 1,
    }


def test_a_manage_error_adds_replica_failure_and_success_removes_it() -> None:
    """Creating failed → ReplicaFailure/FailedCreate; deleting failed → FailedDelete; then gone."""
    rs = _rs()
    error = replicaset.ManageError(-2, "boom")
    status = replicaset.calculate_status(rs, [], now=NOW, error=error)
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"], condition["message"]) == (
        "ReplicaFailure",
        "True",
        "FailedCreate",
        "boom",
    )
    rs["status"] = status
    again = replicaset.calculate_status(rs, [], now=NOW, error=replicaset.ManageError(1, "x"))
    assert again["conditions"] == [condition]
    assert "conditions" not in replicaset.calculate_status(rs, [], now=NOW, error=None)
    delete = replicaset.calculate_status(_rs(), [], now=NOW, error=replicaset.ManageError(1, "d"))
    assert delete["conditions"][0]["reason"] == "FailedDelete"


def test_expectations_hold_a_key_until_its_writes_are_observed_or_expire() -> None:
    """Creations and deletions must be seen (or time out) before the key is satisfied."""
    clock = [0.0]
    tracked = expectations.Expectations(ttl=10, clock=lambda: clock[0])
    assert tracked.satisfied("ns/rs")
    tracked.expect_creations("ns/rs", 2)
    tracked.creation_observed("ns/rs")
    assert not tracked.satisfied("ns/rs")
    tracked.lower_creations("ns/rs")
    assert tracked.satisfied("ns/rs")
    tracked.expect_deletions("ns/rs", ["ns/p1", "ns/p2"])
    tracked.deletion_observed("ns/rs", "ns/p1")
    tracked.deletion_observed("ns/rs", "ns/p1")
    assert tracked.pending("ns/rs") == (0, 1)
    clock[0] = 11
    assert tracked.satisfied("ns/rs")


def test_a_pod_from_a_template_carries_its_metadata_and_a_controller_reference() -> None:
    """generateName ``<owner>-``, template labels/annotations/finalizers, spec copied."""
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    template = {
        "metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}, "finalizers": ["f"]},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    ref = controller_ref.owner_reference(owner, api_version="apps/v1", kind="ReplicaSet")
    pod = pod_control.pod_from_template(template, owner=owner, owner_ref=ref)
    assert pod["metadata"] == {
        "generateName": "web-",
        "namespace": "ns",
        "labels": {"a": "b"},
        "annotations": {"x": "y"},
        "finalizers": ["f"],
        "ownerReferences": [ref],
    }
    assert pod["spec"] == template["spec"] and pod["spec"] is not template["spec"]
    assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
    assert controller_ref.controller_of(pod) == ref


@pytest.mark.parametrize(
    ("causes", "expected"),
    [
        pytest.param([{"type": "NamespaceTerminating"}], True, id="terminating"),
        pytest.param([{"type": "FieldValueInvalid"}], False, id="other-cause"),
        pytest.param([], False, id="no-cause"),
    ],
)
def test_a_create_refused_by_a_terminating_namespace_is_recognised(
    causes: list[Object], expected: bool
) -> None:
    """Only the NamespaceTerminating cause marks a create error as the namespace going away."""
    status = {"code": 403, "reason": "Forbidden", "details": {"causes": causes}}
    assert pod_control.namespace_terminating(rest.ApiError(status)) is expected
    assert not pod_control.namespace_terminating(ValueError("x"))


def _random_pod(rng: random.Random, index: int) -> Object:
    pod = _pod(
        f"p{index}",
        phase=rng.choice(["Pending", "Running", "Succeeded", "Failed"]),
        ready_for=rng.choice([None, 5, 3600]),
        labels=rng.choice([{"app": "a"}, {"app": "a", "tier": "t"}, {"tier": "t"}]),
    )
    pod["metadata"]["namespace"] = "ns"
    pod["metadata"]["ownerReferences"] = [
        {"uid": rng.choice(["rs-1", "rs-2"]), "controller": True, "kind": "ReplicaSet"}
    ]
    if rng.random() < 0.1:
        pod["metadata"]["deletionTimestamp"] = _at(1)
    return pod


def test_the_owned_pod_tally_kept_by_events_counts_as_a_walk_over_the_pods() -> None:
    """Random adds, updates and deletes: the indexer's tally gives the status a full count gives."""
    rng = random.Random(7)
    indexer = informer.Indexer({replicaset.CONTROLLER_INDEX: replicaset.index_by_controller})
    indexer.add_tally(
        replicaset.OWNED_TALLY, replicaset.index_by_controller, replicaset.owned_summary
    )
    for step in range(600):
        if step % 7 == 3 and len(indexer):
            indexer.delete(rng.choice(indexer.keys()))
        else:
            indexer.upsert(_random_pod(rng, rng.randrange(60)))
        for owner in ("rs-1", "rs-2"):
            owned = indexer.by_index(replicaset.CONTROLLER_INDEX, f"ns/{owner}")
            active = [p for p in owned if pod_util.is_active(p)]
            tally = indexer.tally(replicaset.OWNED_TALLY, f"ns/{owner}")
            assert tally == replicaset.tally_pods(active)
            for rs in (_rs(), _rs(minReadySeconds=60)):
                counted = replicaset.count_tally(rs, tally, now=NOW, pods=active.copy)
                assert counted == replicaset.count_pods(rs, active, now=NOW)
    assert indexer.tally(replicaset.OWNED_TALLY, "ns/nobody") == {}
