"""The CronJob controller: robfig schedules, missed-time arithmetic, then in-process with a fake clock."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import cron_schedule, cronjob, manager

Object = dict[str, Any]
NS = "default"
UTC = datetime.UTC


def _at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


# ----- pure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        pytest.param("*/15 * * * *", "2026-03-02 10:07:30", "2026-03-02 10:15:00", id="step"),
        pytest.param("@hourly", "2026-03-02 10:00:00", "2026-03-02 11:00:00", id="strictly-after"),
        pytest.param("@weekly", "2026-03-02 10:00:00", "2026-03-08 00:00:00", id="sunday"),
        pytest.param("@yearly", "2026-03-02 10:00:00", "2027-01-01 00:00:00", id="yearly"),
        pytest.param(
            "0 9 * * mon-fri", "2026-03-06 09:00:00", "2026-03-09 09:00:00", id="weekdays"
        ),
        # Both day fields restricted: either matches (13th or a Friday).
        pytest.param("0 0 13 * 5", "2026-03-02 00:00:00", "2026-03-06 00:00:00", id="dom-or-dow"),
        # "*/2" counts as restricted in robfig (Vixie cron would AND it with Monday).
        pytest.param("0 0 */2 * 1", "2026-03-02 00:00:00", "2026-03-03 00:00:00", id="star-step"),
        pytest.param("0 0 * * 1", "2026-03-02 00:00:00", "2026-03-09 00:00:00", id="star-and"),
        pytest.param("0 0 29 2 *", "2026-03-02 00:00:00", "2028-02-29 00:00:00", id="leap-day"),
        pytest.param("@every 90s", "2026-03-02 10:00:00", "2026-03-02 10:01:30", id="every"),
        pytest.param(
            "TZ=Asia/Tokyo 0 9 * * *", "2026-03-02 01:00:00", "2026-03-03 00:00:00", id="tz-prefix"
        ),
    ],
)
def test_the_next_firing_follows_robfig_cron(spec: str, after: str, expected: str) -> None:
    """Next firing strictly after a time, with robfig's day-field and descriptor semantics."""
    assert cron_schedule.parse(spec).next(_at(after)) == _at(expected)


def test_the_time_zone_field_moves_the_schedule() -> None:
    """``spec.timeZone`` evaluates the fields in that zone (09:00 Tokyo is 00:00 UTC)."""
    schedule = cron_schedule.parse("0 9 * * *", zone="Asia/Tokyo")
    assert schedule.next(_at("2026-03-02 01:00:00")) == _at("2026-03-03 00:00:00")


def test_an_unknown_time_zone_or_schedule_is_an_error() -> None:
    """Bad zones and schedules raise ScheduleError with robfig's/Go's words."""
    with pytest.raises(cron_schedule.ScheduleError, match="unknown time zone Mars/Base"):
        cron_schedule.parse("* * * * *", zone="Mars/Base")
    with pytest.raises(cron_schedule.ScheduleError, match="expected exactly 5 fields"):
        cron_schedule.parse("* * *")


def _cronjob(name: str, schedule: str = "* * * * *", **spec: Any) -> Object:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS, "uid": "u", "creationTimestamp": None},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox:1"}],
                        }
                    }
                },
            },
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("created", "last", "now", "deadline", "expected", "missed"),
    [
        pytest.param("10:00:30", None, "10:00:50", None, None, 0, id="not-yet"),
        pytest.param("10:00:30", None, "10:01:10", None, "10:01:00", 1, id="one"),
        pytest.param("10:00:30", None, "10:05:10", None, "10:05:00", 5, id="several"),
        pytest.param("10:00:30", "10:04:00", "10:05:10", None, "10:05:00", 1, id="since-last"),
        pytest.param("09:00:30", None, "10:05:10", 90, "10:05:00", 2, id="deadline-bounds"),
    ],
)
def test_the_most_recent_unmet_time_and_the_missed_count(
    created: str,
    last: str | None,
    now: str,
    deadline: int | None,
    expected: str | None,
    missed: int,
) -> None:
    """Upstream's mostRecentScheduleTime over an every-minute schedule."""
    obj = _cronjob("x")
    obj["metadata"]["creationTimestamp"] = f"2026-03-02T{created}Z"
    if last:
        obj["status"] = {"lastScheduleTime": f"2026-03-02T{last}Z"}
    if deadline is not None:
        obj["spec"]["startingDeadlineSeconds"] = deadline
    schedule = cron_schedule.parse("* * * * *")
    _, recent, count = cronjob.most_recent_schedule_time(
        obj, _at(f"2026-03-02 {now}"), schedule, with_deadline=True
    )
    assert recent == (_at(f"2026-03-02 {expected}") if expected else None)
    assert count == missed


def test_a_scheduled_job_is_named_after_the_minutes_since_the_epoch() -> None:
    """``{cronjob}-{unix minutes}`` (upstream's getJobName) and the scheduled-timestamp annotation."""
    when = _at("2026-03-02 10:05:00")
    obj = _cronjob("nightly")
    obj["metadata"]["uid"] = "abc"
    job = cronjob.job_from_template(obj, when)
    assert job["metadata"]["name"] == f"nightly-{int(when.timestamp()) // 60}"
    assert job["metadata"]["annotations"] == {
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-03-02T10:05:00Z"
    }
    assert job["metadata"]["labels"] == {"app": "nightly"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"


def test_history_limits_delete_the_oldest_finished_jobs_first() -> None:
    """Jobs sorted by start time (never started first); the surplus goes."""
    jobs = [
        {"metadata": {"name": n}, "status": {"startTime": s} if s else {}}
        for n, s in (("c", "2026-01-03T00:00:00Z"), ("a", "2026-01-01T00:00:00Z"), ("z", None))
    ]
    doomed = cronjob.jobs_beyond_limit(jobs, 1)
    assert [j["metadata"]["name"] for j in doomed] == ["z", "a"]
    assert cronjob.jobs_beyond_limit(jobs, 3) == []


# ----- in-process, with a fake clock ---------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def controllers(
    start_controllers: StartControllers, clock: FakeClock
) -> manager.ControllerManager:
    """The cronjob controller alone, as cronjob-controller, reading the fake clock."""
    return await start_controllers("cronjob", options={"cronjob": {"clock": clock}})


async def _advance(client: rest.Client, clock: FakeClock, name: str, seconds: int) -> None:
    """Move the clock, then touch the CronJob so the controller looks now."""
    clock.now += datetime.timedelta(seconds=seconds)
    touch = {"metadata": {"annotations": {"test/clock": clock.now.isoformat()}}}
    await client.patch(rest.CRONJOBS, name, touch, namespace=NS)


async def _jobs(client: rest.Client) -> list[Object]:
    listed = await client.list(rest.JOBS, namespace=NS)
    return [j for j in listed["items"] if not j["metadata"].get("deletionTimestamp")]


async def _n_jobs(client: rest.Client, n: int) -> list[Object] | None:
    jobs = await _jobs(client)
    return jobs if len(jobs) == n else None


async def _events(client: rest.Client, reason: str) -> list[str]:
    listed = await client.list(rest.EVENTS, namespace=NS)
    return [e["message"] for e in listed["items"] if e.get("reason") == reason]


async def _complete(client: rest.Client, job: Object) -> None:
    stamp = datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    job = await client.get(rest.JOBS, job["metadata"]["name"], namespace=NS)
    job["status"] = {
        "startTime": stamp,
        "completionTime": stamp,
        "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": stamp},
            {"type": "Complete", "status": "True", "lastTransitionTime": stamp},
        ],
    }
    await client.update_status(rest.JOBS, job)


async def test_a_cronjob_creates_one_job_per_scheduled_minute(
    admin: rest.Client, controllers: manager.ControllerManager, clock: FakeClock
) -> None:
    """Each minute → ``{name}-{minutes}`` listed in status.active with lastScheduleTime."""
    created = await admin.create(rest.CRONJOBS, _cronjob("tick"))
    assert await _jobs(admin) == []
    await _advance(admin, clock, "tick", 61)
    (job,) = await eventually(lambda: _n_jobs(admin, 1))
    scheduled = clock.now.replace(second=0)
    assert job["metadata"]["name"] == f"tick-{int(scheduled.timestamp()) // 60}"
    assert job["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

    async def listed() -> Object | None:
        status = (await admin.get(rest.CRONJOBS, "tick", namespace=NS)).get("status") or {}
        return status if status.get("active") else None

    status = await eventually(listed)
    assert [ref["name"] for ref in status["active"]] == [job["metadata"]["name"]]
    assert status["lastScheduleTime"] == scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await eventually(lambda: _events(admin, "SuccessfulCreate")) == [
        f"Created job {job['metadata']['name']}"
    ]


async def test_forbid_waits_for_the_active_job_and_replace_swaps_it(
    admin: rest.Client, controllers: manager.ControllerManager, clock: FakeClock
) -> None:
    """Forbid: no second Job while one runs; Replace: the running one is deleted first.

    As upstream, a run skipped under Forbid does not become the last schedule time, so once the
    policy is Replace the skipped run is still due: the controller replaces the running Job with
    that run's Job without waiting for the next schedule.
    """
    await admin.create(rest.CRONJOBS, _cronjob("solo", concurrencyPolicy="Forbid"))
    await _advance(admin, clock, "solo", 61)
    (first,) = await eventually(lambda: _n_jobs(admin, 1))
    await _advance(admin, clock, "solo", 60)
    await eventually(lambda: _events(admin, "JobAlreadyActive"))
    assert len(await _jobs(admin)) == 1
    await admin.patch(
        rest.CRONJOBS, "solo", {"spec": {"concurrencyPolicy": "Replace"}}, namespace=NS
    )

    async def replaced() -> list[Object] | None:
        jobs = await _jobs(admin)
        names = [j["metadata"]["name"] for j in jobs]
        return jobs if len(jobs) == 1 and first["metadata"]["name"] not in names else None

    (second,) = await eventually(replaced)
    skipped_run = int(first["metadata"]["name"].rsplit("-", 1)[1]) + 1
    assert second["metadata"]["name"] == f"solo-{skipped_run}"
    assert await eventually(lambda: _events(admin, "SuccessfulDelete")) == [
        f"Deleted job {first['metadata']['name']}"
    ]


async def test_completed_jobs_leave_active_and_beyond_the_limit_are_deleted(
    admin: rest.Client, controllers: manager.ControllerManager, clock: FakeClock
) -> None:
    """successfulJobsHistoryLimit 1: the older completed Job goes; lastSuccessfulTime is set."""
    await admin.create(rest.CRONJOBS, _cronjob("hist", successfulJobsHistoryLimit=1))
    await _advance(admin, clock, "hist", 61)
    (first,) = await eventually(lambda: _n_jobs(admin, 1))
    await _complete(admin, first)
    await _advance(admin, clock, "hist", 60)
    jobs = await eventually(lambda: _n_jobs(admin, 2))
    second = next(j for j in jobs if j["metadata"]["name"] != first["metadata"]["name"])
    await _complete(admin, second)

    async def trimmed() -> list[Object] | None:
        jobs = await _jobs(admin)
        return (
            jobs if [j["metadata"]["name"] for j in jobs] == [second["metadata"]["name"]] else None
        )

    await eventually(trimmed)

    async def settled() -> Object | None:
        # The old Job's delete and the status write that drops the finished one from
        # ``active`` are separate writes: the status may follow the delete.
        status: Object = (await admin.get(rest.CRONJOBS, "hist", namespace=NS))["status"]
        return status if "active" not in status else None

    status = await eventually(settled)
    assert status["lastSuccessfulTime"]
    assert await _events(admin, "SawCompletedJob")


async def test_too_many_missed_start_times_are_reported_and_the_latest_runs(
    admin: rest.Client, controllers: manager.ControllerManager, clock: FakeClock
) -> None:
    """Over 100 missed minutes: a TooManyMissedTimes warning, then one Job for the latest."""
    await admin.create(rest.CRONJOBS, _cronjob("late"))
    await _advance(admin, clock, "late", 200 * 60)
    (job,) = await eventually(lambda: _n_jobs(admin, 1))
    scheduled = clock.now.replace(second=0)
    assert job["metadata"]["name"] == f"late-{int(scheduled.timestamp()) // 60}"
    (message,) = await eventually(lambda: _events(admin, "TooManyMissedTimes"))
    assert message.startswith("too many missed start times: ")
    assert message.endswith(". Set or decrease .spec.startingDeadlineSeconds or check clock skew")


async def test_a_suspended_cronjob_starts_nothing(
    admin: rest.Client, controllers: manager.ControllerManager, clock: FakeClock
) -> None:
    """suspend: true → no Job however much time passes; unsuspending catches up once."""
    await admin.create(rest.CRONJOBS, _cronjob("paused", suspend=True))
    await _advance(admin, clock, "paused", 180)

    async def synced() -> bool:
        # The touch was seen: the informer cache holds it (nothing else would change).
        cached = controllers.controllers["cronjob"]
        assert isinstance(cached, cronjob.CronJobController)
        obj = cached.cronjob_informer.indexer.get(f"{NS}/paused") or {}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return annotations.get("test/clock") == clock.now.isoformat() and not len(cached.queue)

    await eventually(synced)
    assert await _jobs(admin) == []
    await admin.patch(rest.CRONJOBS, "paused", {"spec": {"suspend": False}}, namespace=NS)
    await eventually(lambda: _n_jobs(admin, 1))
