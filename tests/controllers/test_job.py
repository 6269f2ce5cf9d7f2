"""The Job and TTL-after-finished controllers: pure planning, then against an in-process API server.

Pods never run here (no kubelet): tests finish them by writing pod status,
as a kubelet would, and watch the controller count them.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import manager, ttl_after_finished
from kajitori.controllers.job import planning, policy

Object = dict[str, Any]
NS = "default"
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


# ----- pure ------------------------------------------------------------------------


def _failed_pod(code: int, *, conditions: list[Object] | None = None) -> Object:
    return {
        "metadata": {"name": "p", "namespace": NS},
        "status": {
            "phase": "Failed",
            "conditions": conditions or [],
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": code}}},
            ],
        },
    }


RULES = {
    "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42, 43]}},
    ]
}


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(
            _failed_pod(42),
            policy.PolicyMatch(
                "Container main for pod default/p failed with exit code 42 matching FailJob "
                "rule at index 1",
                True,
                "FailJob",
            ),
            id="fail-job-on-exit-code",
        ),
        pytest.param(
            _failed_pod(1, conditions=[{"type": "DisruptionTarget", "status": "True"}]),
            policy.PolicyMatch(None, False, "Ignore"),
            id="ignore-on-condition",
        ),
        pytest.param(_failed_pod(7), policy.PolicyMatch(None, True, "Count"), id="count-not-in"),
        pytest.param(_failed_pod(43), policy.PolicyMatch(), id="no-rule-counts"),
    ],
)
def test_the_first_matching_pod_failure_policy_rule_decides(
    pod: Object, expected: policy.PolicyMatch
) -> None:
    """Rules are tried in order; exit code 0 never matches; no match counts the failure."""
    assert policy.match_pod_failure_policy(RULES, pod) == expected


def test_exit_code_zero_never_matches_a_not_in_rule() -> None:
    """A container that exited 0 is not a failure, even for ``NotIn``."""
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [1]}}]}
    assert policy.match_pod_failure_policy(rules, _failed_pod(0)).action is None


@pytest.mark.parametrize(
    ("failures", "elapsed", "remaining"),
    [
        pytest.param(0, 0, 0.0, id="no-failure"),
        pytest.param(1, 0, 10.0, id="first-10s"),
        pytest.param(3, 5, 35.0, id="doubling"),
        pytest.param(10, 0, 600.0, id="capped-at-10-minutes"),
        pytest.param(1, 11, 0.0, id="already-elapsed"),
    ],
)
def test_the_backoff_doubles_from_ten_seconds_up_to_ten_minutes(
    failures: int, elapsed: int, remaining: float
) -> None:
    """Upstream's pod failure back-off, measured from the last failure."""
    record = policy.BackoffRecord(failures, T0)
    now = T0 + datetime.timedelta(seconds=elapsed)
    assert policy.remaining_backoff(record, now=now) == remaining


def test_a_success_after_the_failures_resets_the_backoff() -> None:
    """Failures before a newer success do not count (upstream issue 56853)."""

    def finished(at: int) -> Object:
        stamp = (T0 + datetime.timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"status": {"containerStatuses": [{"state": {"terminated": {"finishedAt": stamp}}}]}}

    old = policy.BackoffRecord(2, T0)
    after = policy.new_backoff_record(old, [finished(5)], [finished(3)], now=T0)
    assert after.failures_after_last_success == 0
    later = policy.new_backoff_record(old, [finished(5)], [finished(3), finished(9)], now=T0)
    assert later == policy.BackoffRecord(1, T0 + datetime.timedelta(seconds=9))


@pytest.mark.parametrize(
    ("indexes", "text"),
    [
        pytest.param(set(), "", id="empty"),
        pytest.param({0, 1, 2}, "0-2", id="one-run"),
        pytest.param({1, 3, 4, 5, 9}, "1,3-5,9", id="runs-and-singles"),
    ],
)
def test_completed_indexes_are_written_as_ordered_intervals(indexes: set[int], text: str) -> None:
    """``status.completedIndexes`` round-trips through its interval text."""
    assert policy.format_intervals(indexes) == text
    assert policy.parse_intervals(text, limit=10) == indexes


def test_an_indexed_pod_carries_its_index_hostname_and_env() -> None:
    """Index annotation and label, hostname ``{job}-{i}``, JOB_COMPLETION_INDEX from the annotation."""
    job = _job("work", completions=3, parallelism=3, indexed=True)
    job["metadata"]["uid"] = "u1"
    pod = planning.new_pod(job, 2)
    meta = pod["metadata"]
    assert meta["generateName"] == "work-2-"
    assert meta["annotations"][policy.COMPLETION_INDEX_ANNOTATION] == "2"
    assert meta["labels"][policy.COMPLETION_INDEX_ANNOTATION] == "2"
    assert meta["finalizers"] == [policy.JOB_TRACKING_FINALIZER]
    assert pod["spec"]["hostname"] == "work-2"
    env = pod["spec"]["containers"][0]["env"]
    assert env == [
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                }
            },
        }
    ]


@pytest.mark.parametrize(
    ("rule", "succeeded", "met"),
    [
        pytest.param({"succeededIndexes": "0,2"}, {0, 2}, True, id="all-listed"),
        pytest.param({"succeededIndexes": "0-3"}, {0, 2}, False, id="some-listed"),
        pytest.param({"succeededIndexes": "0-3", "succeededCount": 2}, {0, 2}, True, id="count"),
        pytest.param({"succeededCount": 3}, {0, 4}, False, id="too-few"),
    ],
)
def test_a_success_policy_rule_is_met_by_its_indexes_or_count(
    rule: Object, succeeded: set[int], met: bool
) -> None:
    """``successPolicy`` rules: listed indexes, optionally at least ``succeededCount`` of them."""
    message = policy.match_success_policy({"rules": [rule]}, 5, succeeded)
    assert (message == "Matched rules at index 0") is met


def test_ttl_after_finished_expires_at_the_finish_time_plus_the_ttl() -> None:
    """Finished Jobs with a TTL expire; unfinished or TTL-less ones never do."""
    job = {
        "metadata": {},
        "spec": {"ttlSecondsAfterFinished": 30},
        "status": {
            "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T12:00:00Z"}
            ]
        },
    }
    assert ttl_after_finished.time_left(job, now=T0 + datetime.timedelta(seconds=10)) == 20
    assert ttl_after_finished.time_left(job, now=T0 + datetime.timedelta(seconds=31)) == -1
    assert ttl_after_finished.time_left({**job, "spec": {}}, now=T0) is None
    assert ttl_after_finished.time_left({**job, "status": {}}, now=T0) is None


# ----- in-process ----------------------------------------------------------------------


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """The job and ttl-after-finished controllers, as their ServiceAccounts, and the GC."""
    return await start_controllers("job", "ttl-after-finished", "garbagecollector")


def _job(
    name: str,
    *,
    completions: int | None = 1,
    parallelism: int = 1,
    indexed: bool = False,
    **spec: Any,
) -> Object:
    body: Object = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "parallelism": parallelism,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1"}],
                }
            },
            **spec,
        },
    }
    if completions is not None:
        body["spec"]["completions"] = completions
    if indexed:
        body["spec"]["completionMode"] = "Indexed"
    return body


_eventually = functools.partial(eventually, timeout=15.0)  # rollouts: allow longer


async def _pods(client: rest.Client, job: str, *, live: bool = True) -> list[Object]:
    listed = await client.list(rest.PODS, namespace=NS, label_selector=f"job-name={job}")
    return [
        p
        for p in listed["items"]
        if not live
        or (
            not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
    ]


async def _n_running(client: rest.Client, job: str, n: int) -> list[Object] | None:
    pods = await _pods(client, job)
    return pods if len(pods) == n else None


async def _finish(client: rest.Client, pod: Object, code: int) -> None:
    """Terminate the pod's container with ``code``, as the kubelet reports it."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": "main",
                "image": "busybox:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "finishedAt": now, "startedAt": now}},
            }
        ],
    }
    await client.patch(
        rest.PODS, pod["metadata"]["name"], {"status": status}, namespace=NS, subresource="status"
    )


async def _condition(client: rest.Client, name: str, kind: str) -> Object | None:
    try:
        job = await client.get(rest.JOBS, name, namespace=NS)
    except rest.ApiError:
        return None
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition["type"] == kind and condition["status"] == "True":
            return job
    return None


async def test_a_job_runs_its_completions_and_counts_each_pod_once(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """3 completions, 2 at a time: pods carry the finalizer; Complete after SuccessCriteriaMet."""
    created = await admin.create(rest.JOBS, _job("count", completions=3, parallelism=2))
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    pods = await _eventually(lambda: _n_running(admin, "count", 2))
    for pod in pods:
        assert pod["metadata"]["finalizers"] == [policy.JOB_TRACKING_FINALIZER]
        assert pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    for pod in pods:
        await _finish(admin, pod, 0)
    last = await _eventually(lambda: _n_running(admin, "count", 1))
    await _finish(admin, last[0], 0)
    job = await _eventually(lambda: _condition(admin, "count", "Complete"))
    status = job["status"]
    assert status["succeeded"] == 3
    assert status.get("failed", 0) == 0
    assert status.get("active", 0) == 0
    assert status["ready"] == 0
    assert status["uncountedTerminatedPods"] in ({}, {"succeeded": [], "failed": []})
    kinds = [c["type"] for c in status["conditions"]]
    assert kinds == ["SuccessCriteriaMet", "Complete"]
    assert status["conditions"][1]["reason"] == "CompletionsReached"
    assert status["completionTime"] and status["startTime"]
    everything = await _pods(admin, "count", live=False)
    assert len(everything) == 3
    assert all(
        policy.JOB_TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or [])
        for p in everything
    )


async def test_a_job_past_its_backoff_limit_fails_with_backoff_limit_exceeded(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """backoffLimit 0: one failed pod → FailureTarget, then Failed (BackoffLimitExceeded)."""
    await admin.create(rest.JOBS, _job("flaky", backoffLimit=0))
    pods = await _eventually(lambda: _n_running(admin, "flaky", 1))
    await _finish(admin, pods[0], 1)
    job = await _eventually(lambda: _condition(admin, "flaky", "Failed"))
    status = job["status"]
    assert status["failed"] == 1
    failed = [c for c in status["conditions"] if c["type"] in ("FailureTarget", "Failed")]
    assert [(c["type"], c["reason"]) for c in failed] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    assert failed[1]["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in status


async def test_a_fail_job_rule_fails_the_job_on_its_exit_code(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """podFailurePolicy FailJob on exit code 42 ends the Job at once (reason PodFailurePolicy)."""
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    await admin.create(rest.JOBS, _job("strict", parallelism=1, podFailurePolicy=rules))
    pods = await _eventually(lambda: _n_running(admin, "strict", 1))
    await _finish(admin, pods[0], 42)
    job = await _eventually(lambda: _condition(admin, "strict", "Failed"))
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "failed with exit code 42 matching FailJob rule at index 0" in failed["message"]


async def test_an_ignored_failure_is_not_counted(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """An Ignore rule: the failed pod does not count against backoffLimit 0."""
    rules = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}
    await admin.create(rest.JOBS, _job("lenient", backoffLimit=0, podFailurePolicy=rules))
    pods = await _eventually(lambda: _n_running(admin, "lenient", 1))
    await _finish(admin, pods[0], 3)

    async def released() -> bool:
        (pod,) = await _pods(admin, "lenient", live=False)
        return policy.JOB_TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or [])

    await _eventually(released)
    job = await admin.get(rest.JOBS, "lenient", namespace=NS)
    assert job["status"].get("failed", 0) == 0
    assert await _condition(admin, "lenient", "Failed") is None


async def test_a_job_past_its_active_deadline_fails_and_loses_its_pods(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """activeDeadlineSeconds 1: DeadlineExceeded, the running pods deleted and counted failed."""
    await admin.create(rest.JOBS, _job("slow", parallelism=1, activeDeadlineSeconds=1))
    # No wait for the pod to show Running: the deadline may already have removed it by then.
    job = await _eventually(lambda: _condition(admin, "slow", "Failed"))
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    assert job["status"]["failed"] == 1
    assert job["status"].get("active", 0) == 0
    assert await _pods(admin, "slow", live=False) == []


async def test_an_indexed_job_completes_each_index_once(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Indexed, 3 completions: one pod per index; completedIndexes "0-2" when all succeed."""
    await admin.create(rest.JOBS, _job("idx", completions=3, parallelism=3, indexed=True))
    pods = await _eventually(lambda: _n_running(admin, "idx", 3))
    indexes = sorted(
        int(p["metadata"]["annotations"][policy.COMPLETION_INDEX_ANNOTATION]) for p in pods
    )
    assert indexes == [0, 1, 2]
    assert sorted(p["spec"]["hostname"] for p in pods) == ["idx-0", "idx-1", "idx-2"]
    for pod in pods:
        await _finish(admin, pod, 0)
    job = await _eventually(lambda: _condition(admin, "idx", "Complete"))
    assert job["status"]["completedIndexes"] == "0-2"
    assert job["status"]["succeeded"] == 3


async def test_a_suspended_job_creates_nothing_until_resumed(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """suspend: no pods, no startTime, Suspended=True; resuming creates pods, Suspended=False."""
    await admin.create(rest.JOBS, _job("later", suspend=True))
    job = await _eventually(lambda: _condition(admin, "later", "Suspended"))
    suspended = next(c for c in job["status"]["conditions"] if c["type"] == "Suspended")
    assert suspended["reason"] == "JobSuspended"
    assert "startTime" not in job["status"]
    assert await _pods(admin, "later") == []
    await admin.patch(rest.JOBS, "later", {"spec": {"suspend": False}}, namespace=NS)
    await _eventually(lambda: _n_running(admin, "later", 1))

    async def resumed() -> Object | None:
        job = await admin.get(rest.JOBS, "later", namespace=NS)
        for c in job["status"].get("conditions") or ():
            if c["type"] == "Suspended" and c["status"] == "False":
                return job
        return None

    job = await _eventually(resumed)
    assert job["status"]["startTime"]
    resumed_condition = next(c for c in job["status"]["conditions"] if c["type"] == "Suspended")
    assert resumed_condition["reason"] == "JobResumed"


async def test_a_finished_job_with_a_ttl_is_deleted(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """ttlSecondsAfterFinished 0: the completed Job is deleted by ttl-after-finished."""
    await admin.create(rest.JOBS, _job("brief", ttlSecondsAfterFinished=0))
    pods = await _eventually(lambda: _n_running(admin, "brief", 1))
    await _finish(admin, pods[0], 0)

    async def gone() -> bool:
        try:
            await admin.get(rest.JOBS, "brief", namespace=NS)
        except rest.ApiError as exc:
            return exc.not_found
        return False

    await _eventually(gone)


def _index_of(pod: Object) -> int:
    return int(pod["metadata"]["annotations"][policy.COMPLETION_INDEX_ANNOTATION])


async def test_an_index_past_its_backoff_limit_per_index_fails_the_job_at_the_end(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """backoffLimitPerIndex 0: index 0 fails, index 1 succeeds → Failed (FailedIndexes)."""
    await admin.create(
        rest.JOBS,
        _job("per-index", completions=2, parallelism=2, indexed=True, backoffLimitPerIndex=0),
    )
    pods = sorted(await _eventually(lambda: _n_running(admin, "per-index", 2)), key=_index_of)
    assert pods[0]["metadata"]["annotations"][policy.INDEX_FAILURE_COUNT_ANNOTATION] == "0"
    await _finish(admin, pods[0], 1)
    await _finish(admin, pods[1], 0)
    job = await _eventually(lambda: _condition(admin, "per-index", "Failed"))
    status = job["status"]
    assert (status["failedIndexes"], status["completedIndexes"]) == ("0", "1")
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    assert len(await _pods(admin, "per-index", live=False)) == 2  # index 0 was not retried


async def test_a_success_policy_completes_the_job_early(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """successPolicy on index 0: its success completes the Job; the other pods are removed."""
    rules = {"rules": [{"succeededIndexes": "0"}]}
    await admin.create(
        rest.JOBS,
        _job("early", completions=3, parallelism=3, indexed=True, successPolicy=rules),
    )
    pods = sorted(await _eventually(lambda: _n_running(admin, "early", 3)), key=_index_of)
    await _finish(admin, pods[0], 0)
    job = await _eventually(lambda: _condition(admin, "early", "Complete"))
    status = job["status"]
    met = next(c for c in status["conditions"] if c["type"] == "SuccessCriteriaMet")
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert (met["reason"], met["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert complete["reason"] == "SuccessPolicy"
    assert status["completedIndexes"] == "0"
    assert status.get("active", 0) == 0
    assert [p["metadata"]["name"] for p in await _pods(admin, "early", live=False)] == [
        pods[0]["metadata"]["name"]
    ]


async def test_a_finished_orphan_pod_is_adopted_and_counted(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """manualSelector: a matching Succeeded orphan is adopted, counted, and completes the Job."""
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1"}]},
    }
    await admin.create(rest.PODS, orphan, namespace=NS)
    await _finish(admin, orphan, 0)
    body = _job("adopt", manualSelector=True, selector={"matchLabels": {"app": "adopt"}})
    body["spec"]["template"]["metadata"] = {"labels": {"app": "adopt"}}
    created = await admin.create(rest.JOBS, body)
    job = await _eventually(lambda: _condition(admin, "adopt", "Complete"))
    assert job["status"]["succeeded"] == 1
    stray = await admin.get(rest.PODS, "stray", namespace=NS)
    assert stray["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    listed = await admin.list(rest.PODS, namespace=NS, label_selector="app=adopt")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["stray"]
