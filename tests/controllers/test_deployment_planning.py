"""The Deployment controller's pure arithmetic: fenceposts, scaling plans, hashing, annotations."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.controllers.common import deployment_util as util

Object = dict[str, Any]
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def _d(replicas: int, *, surge: int | str = "25%", unavailable: int | str = "25%") -> Object:
    return {
        "metadata": {"name": "web", "generation": 1},
        "spec": {
            "replicas": replicas,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
        },
        "status": {},
    }


def _rs(name: str, replicas: int, *, available: int = 0, created: str = "", **ann: str) -> Object:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created or f"2026-01-01T00:00:0{len(name) % 10}Z",
            "annotations": dict(ann),
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "availableReplicas": available},
    }


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        pytest.param("25%", "25%", 10, (3, 2), id="percent-surge-rounds-up-unavailable-down"),
        pytest.param("25%", "25%", 3, (1, 0), id="small-deployment"),
        pytest.param(0, 0, 5, (0, 1), id="both-zero-allows-one-unavailable"),
        pytest.param("0%", "0%", 5, (0, 1), id="both-zero-percent"),
        pytest.param(2, "50%", 5, (2, 2), id="int-and-percent"),
        pytest.param("100%", 0, 4, (4, 0), id="blue-green"),
    ],
)
def test_fenceposts_round_like_upstream(
    surge: int | str, unavailable: int | str, desired: int, expected: tuple[int, int]
) -> None:
    """maxSurge percentages round up, maxUnavailable down; both zero → one unavailable."""
    assert util.resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_is_capped_by_replicas_and_zero_for_recreate() -> None:
    """More unavailable than replicas is capped; Recreate and zero replicas allow none."""
    assert util.max_unavailable(_d(2, unavailable=5)) == 2
    assert util.max_unavailable(_d(0)) == 0
    recreate = {**_d(4), "spec": {"replicas": 4, "strategy": {"type": "Recreate"}}}
    assert (util.max_unavailable(recreate), util.max_surge(recreate)) == (0, 0)
    assert util.new_rs_new_replicas(recreate, [], None) == 4


def test_a_bad_int_or_string_is_an_error() -> None:
    """Only integers and ``N%`` strings are understood."""
    with pytest.raises(ValueError, match="invalid value"):
        util.scaled_value("5", 10, round_up=True)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(10, 0, 3, id="grows-by-max-surge"),
        pytest.param(10, 3, 3, id="at-the-surge-limit-stays"),
        pytest.param(5, 3, 8, id="room-after-old-shrank"),
        pytest.param(0, 9, 10, id="never-beyond-desired"),
    ],
)
def test_the_new_replica_set_grows_within_max_surge(old: int, new: int, expected: int) -> None:
    """10 replicas, maxSurge 25% (3): total pods never exceed 13."""
    d = _d(10)
    new_rs = _rs("new", new)
    assert util.new_rs_new_replicas(d, [_rs("old", old), new_rs], new_rs) == expected


def test_old_replica_sets_shrink_only_as_far_as_availability_allows() -> None:
    """10 replicas, maxUnavailable 2: 10 old available + 3 new unavailable → old may lose 2."""
    d = _d(10)
    old, new = _rs("old", 10, available=10), _rs("new", 3, available=0)
    assert util.max_old_scale_down(d, [old, new], new) == 13 - 8 - 3
    assert util.plan_scale_down_old(d, [old, new], [old]) == {"old": 8}


def test_unhealthy_old_replicas_are_cleaned_up_oldest_first() -> None:
    """Unavailable replicas of old RSes go first, oldest RS first, within the limit."""
    older = _rs("older", 4, available=1, created="2026-01-01T00:00:00Z")
    newer = _rs("newer", 4, available=2, created="2026-01-01T00:00:05Z")
    assert util.plan_cleanup_unhealthy([newer, older], 4) == {"older": 1, "newer": 3}
    assert util.plan_cleanup_unhealthy([newer, older], 2) == {"older": 2}


def test_scaling_mid_rollout_is_proportional_to_each_replica_set() -> None:
    """3 + 2 replicas (max 5) scaled to 8 (max 10) become 6 + 4; leftovers go to the largest."""
    d = _d(8)
    old = _rs("old", 3, created="2026-01-01T00:00:00Z", **{util.MAX_REPLICAS: "5"})
    new = _rs("new", 2, created="2026-01-01T00:00:05Z", **{util.MAX_REPLICAS: "5"})
    assert util.plan_proportional_scale(d, [old, new]) == {"old": 6, "new": 4}
    shrink = _d(1)
    assert util.plan_proportional_scale(shrink, [old, new]) == {"old": 1, "new": 1}


def test_the_pod_template_hash_uses_upstreams_safe_alphabet_and_collision_count() -> None:
    """Digits map to upstream's vowel-free alphabet; a collision count changes the hash."""
    assert util.safe_encode("0123456789") == "456789bcdf"
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
    first = util.compute_hash(template)
    assert first == util.compute_hash({"spec": {"containers": []}, **template})
    assert set(first) <= set("456789bcdf")
    assert util.compute_hash(template, 1) != first
    assert util.fnv32a(b"") == 0x811C9DC5 and util.fnv32a(b"a") == 0xE40C292C


def test_templates_compare_equal_ignoring_the_hash_label() -> None:
    """A ReplicaSet's template equals the Deployment's apart from pod-template-hash."""
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"x": 1}}
    hashed = {"metadata": {"labels": {"app": "web", util.HASH_LABEL: "abc"}}, "spec": {"x": 1}}
    assert util.equal_ignore_hash(template, hashed)
    assert not util.equal_ignore_hash(template, {**hashed, "spec": {"x": 2}})


def test_new_replica_set_annotations_track_revisions_and_replicas() -> None:
    """Revision bumps record the old one in revision-history; skipped annotations stay off."""
    d = _d(4)
    d["metadata"]["annotations"] = {
        "team": "a",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        util.REVISION: "7",
    }
    rs = util.new_replica_set(
        {**d, "metadata": {**d["metadata"], "namespace": "ns", "uid": "u"}},
        replicas=1,
        revision="1",
    )
    assert rs["metadata"]["annotations"] == {
        "team": "a",
        util.REVISION: "1",
        util.DESIRED_REPLICAS: "4",
        util.MAX_REPLICAS: "5",
    }
    assert util.set_new_rs_annotations(d, rs, "3", exists=True)
    assert rs["metadata"]["annotations"][util.REVISION] == "3"
    assert rs["metadata"]["annotations"][util.REVISION_HISTORY] == "1"
    assert not util.set_new_rs_annotations(d, rs, "2", exists=True)


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    """Same status and reason is no change; a new reason with the same status keeps the time."""
    status: Object = {}
    first = util.new_condition("Progressing", "True", "NewReplicaSetCreated", "m", now=NOW)
    util.set_condition(status, first)
    later = NOW + datetime.timedelta(minutes=1)
    util.set_condition(
        status, util.new_condition("Progressing", "True", "NewReplicaSetCreated", "x", now=later)
    )
    assert status["conditions"] == [first]
    util.set_condition(
        status, util.new_condition("Progressing", "True", "ReplicaSetUpdated", "y", now=later)
    )
    (condition,) = status["conditions"]
    assert condition["reason"] == "ReplicaSetUpdated"
    assert condition["lastTransitionTime"] == first["lastTransitionTime"]
    assert condition["lastUpdateTime"] != first["lastUpdateTime"]


def test_status_reports_availability_against_max_unavailable() -> None:
    """10 replicas with 8 available meets maxUnavailable 2; 7 does not."""
    d = _d(10)
    new = _rs("new", 10, available=8)
    status = util.calculate_status(d, [new], new, now=NOW)
    assert status["unavailableReplicas"] == 2
    assert status["conditions"][0]["reason"] == "MinimumReplicasAvailable"
    new["status"]["availableReplicas"] = 7
    status = util.calculate_status(d, [new], new, now=NOW)
    assert (status["conditions"][0]["status"], status["conditions"][0]["reason"]) == (
        "False",
        "MinimumReplicasUnavailable",
    )


def test_a_deployment_times_out_after_its_progress_deadline() -> None:
    """Progressing last updated more than progressDeadlineSeconds ago → timed out."""
    d = _d(1)
    d["spec"]["progressDeadlineSeconds"] = 60
    condition = util.new_condition("Progressing", "True", "ReplicaSetUpdated", "m", now=NOW)
    d["status"] = {"conditions": [condition]}
    assert not util.deployment_timed_out(d, now=NOW + datetime.timedelta(seconds=59))
    assert util.deployment_timed_out(d, now=NOW + datetime.timedelta(seconds=61))
    d["spec"]["progressDeadlineSeconds"] = util.MAX_INT32
    assert not util.deployment_timed_out(d, now=NOW + datetime.timedelta(days=1))
