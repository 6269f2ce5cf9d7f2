"""Registry strategies and tables of batch/v1 Jobs and CronJobs."""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.registry.batch import cronjobs, jobs

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _new_job(**spec: Any) -> Object:
    obj: Object = {
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}
            },
            **spec,
        },
        "status": {"succeeded": 4},
    }
    jobs.STRATEGY.set_defaults(obj)
    obj["metadata"]["uid"] = "5a1e"  # the store assigns the UID before prepare_for_create
    return obj


def test_job_create_generates_selector_and_labels_from_uid() -> None:
    """prepare_for_create selects on the UID and labels the template with name and UID."""
    obj = _new_job()
    jobs.STRATEGY.prepare_for_create(obj)
    assert obj["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": "5a1e"}
    }
    assert obj["spec"]["template"]["metadata"]["labels"] == {
        "job-name": "pi",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "5a1e",
        "batch.kubernetes.io/controller-uid": "5a1e",
    }
    assert obj["status"] == {}
    assert [str(e) for e in jobs.STRATEGY.validate(obj)] == []


def test_job_with_manual_selector_keeps_user_selector() -> None:
    """manualSelector: true leaves the selector and labels as the user wrote them."""
    obj = _new_job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    jobs.STRATEGY.prepare_for_create(obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "pi"}
    assert [str(e) for e in jobs.STRATEGY.validate(obj)] == []


def test_job_row_matches_kubectl() -> None:
    """NAME STATUS COMPLETIONS DURATION AGE for a finished Job."""
    obj = _new_job(completions=5)
    obj["metadata"]["creationTimestamp"] = "2025-01-01T11:00:00Z"
    obj["status"] = {
        "succeeded": 5,
        "startTime": "2025-01-01T11:00:00Z",
        "completionTime": "2025-01-01T11:00:42Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    assert list(jobs.job_row(obj, NOW))[:5] == ["pi", "Complete", "5/5", "42s", "60m"]


def test_job_status_column_follows_upstream_precedence() -> None:
    """Running by default, Suspended with the condition, Terminating when deleting."""
    obj = _new_job()
    assert jobs.job_status(obj) == "Running"
    obj["status"]["conditions"] = [{"type": "Suspended", "status": "True"}]
    assert jobs.job_status(obj) == "Suspended"
    obj["metadata"]["deletionTimestamp"] = "2025-01-01T11:00:00Z"
    assert jobs.job_status(obj) == "Terminating"


def test_work_queue_job_completions_cell() -> None:
    """Without completions the cell reads "n/1 of parallelism"."""
    obj = _new_job(parallelism=3)
    assert jobs.completions(obj) == "4/1 of 3"


def test_job_successful_field_selector() -> None:
    """jobs support the status.successful field selector."""
    assert (
        jobs.RESOURCE.all_selectable_fields["status.successful"]({"status": {"succeeded": 2}})
        == "2"
    )


def test_cron_job_row_matches_kubectl() -> None:
    """NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE."""
    obj = {
        "metadata": {"name": "hello", "creationTimestamp": "2025-01-01T10:00:00Z"},
        "spec": {"schedule": "*/5 * * * *", "suspend": False, "jobTemplate": {"spec": {}}},
        "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2025-01-01T11:55:00Z"},
    }
    assert list(cronjobs.cron_job_row(obj, NOW))[:7] == [
        "hello",
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "5m",
        "120m",
    ]
    assert cronjobs.RESOURCE.short_names == ("cj",)
