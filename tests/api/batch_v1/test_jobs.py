"""Defaulting and validation of batch/v1 Jobs and CronJobs, and the cron syntax."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.batch_v1 import cron, defaults
from kajitori.api.batch_v1.validation import cronjobs, jobs

Object = dict[str, Any]


def _template(restart: str = "Never") -> Object:
    return {"spec": {"restartPolicy": restart, "containers": [{"name": "pi", "image": "perl"}]}}


def _cron_job(**spec: Any) -> Object:
    obj: Object = {
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": _template()}},
            **spec,
        },
    }
    defaults.set_defaults_cron_job(obj)
    return obj


def _messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def test_job_defaults_match_upstream() -> None:
    """A Job without counts gets completions/parallelism 1, backoffLimit 6 and the other defaults."""
    obj: Object = {
        "metadata": {"name": "pi"},
        "spec": {"template": {"metadata": {"labels": {"a": "b"}}, **_template()}},
    }
    defaults.set_defaults_job(obj)
    spec = obj["spec"]
    assert {
        k: spec[k]
        for k in ("completions", "parallelism", "backoffLimit", "completionMode", "suspend")
    } == {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
    }
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["manualSelector"] is False
    assert obj["metadata"]["labels"] == {"a": "b"}


def test_job_with_only_parallelism_keeps_completions_unset() -> None:
    """Work-queue Jobs (parallelism only) keep completions nil."""
    obj: Object = {"spec": {"parallelism": 3, "template": _template()}}
    defaults.set_defaults_job(obj)
    assert "completions" not in obj["spec"]
    assert obj["spec"]["parallelism"] == 3


def test_cron_job_defaults_match_upstream() -> None:
    """CronJobs default to Allow, not suspended, keeping 3 successful and 1 failed job."""
    spec = _cron_job()["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]


def test_valid_cron_job_passes() -> None:
    """A defaulted, well-formed CronJob has no errors."""
    assert _messages(cronjobs.validate_cron_job(_cron_job())) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"schedule": "* * * *"},
            [
                'spec.schedule: Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]'
            ],
            id="four-fields",
        ),
        pytest.param(
            {"schedule": "61 * * * *"},
            [
                'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
            ],
            id="minute-out-of-range",
        ),
        pytest.param(
            {"schedule": "@fortnightly"},
            ['spec.schedule: Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly'],
            id="unknown-descriptor",
        ),
        pytest.param(
            {"schedule": "TZ=UTC 0 * * * *"},
            [
                'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'
            ],
            id="tz-in-schedule",
        ),
        pytest.param(
            {"timeZone": "Mars/Olympus"},
            ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'],
            id="unknown-time-zone",
        ),
        pytest.param(
            {"concurrencyPolicy": "Sometimes"},
            [
                'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'
            ],
            id="bad-concurrency-policy",
        ),
        pytest.param(
            {"jobTemplate": {"spec": {"template": _template("Always")}}},
            [
                'spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
            ],
            id="restart-always",
        ),
    ],
)
def test_cron_job_mistakes_get_upstream_messages(spec: Object, expected: list[str]) -> None:
    """Each typical CronJob mistake is refused with upstream's path and message."""
    assert _messages(cronjobs.validate_cron_job(_cron_job(**spec))) == expected


def test_cron_job_names_are_limited_to_52_characters() -> None:
    """The controller appends 11 characters to name Jobs, so names stop at 52."""
    obj = _cron_job()
    obj["metadata"]["name"] = "a" * 53
    assert _messages(cronjobs.validate_cron_job(obj)) == [
        f'metadata.name: Invalid value: "{"a" * 53}": must be no more than 52 characters'
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        "@hourly",
        "@every 1h30m",
        "0 0 * * mon-fri",
        "*/15 9-17 1,15 jan-jun *",
        "CRON_TZ=Europe/Paris 0 6 * * *",
    ],
)
def test_cron_accepts_standard_schedules(schedule: str) -> None:
    """Descriptors, names, ranges, steps and a zone prefix all parse."""
    assert cron.schedule_error(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        pytest.param("", "empty spec string", id="empty"),
        pytest.param(
            "5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1", id="reversed"
        ),
        pytest.param(
            "x * * * *",
            'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax',
            id="word",
        ),
        pytest.param(
            "*/0 * * * *", "step of range should be a positive number: */0", id="zero-step"
        ),
        pytest.param(
            "@every 5",
            'failed to parse duration @every 5: time: missing unit in duration "5"',
            id="unitless",
        ),
        pytest.param("* * * * 7", "end of range (7) above maximum (6): 7", id="sunday-as-7"),
    ],
)
def test_cron_rejects_with_robfig_messages(schedule: str, message: str) -> None:
    """Invalid schedules produce robfig/cron v3's error text."""
    assert cron.schedule_error(schedule) == message


def _created_job(uid: str = "0b1c") -> Object:
    obj: Object = {
        "metadata": {"name": "pi", "namespace": "default", "uid": uid, "resourceVersion": "1"},
        "spec": {
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": {
                "metadata": {
                    "labels": {
                        "batch.kubernetes.io/controller-uid": uid,
                        "batch.kubernetes.io/job-name": "pi",
                        "controller-uid": uid,
                        "job-name": "pi",
                    }
                },
                **_template(),
            },
        },
    }
    defaults.set_defaults_job(obj)
    return obj


def test_job_with_generated_selector_passes() -> None:
    """A Job carrying the generated selector and labels is valid."""
    assert _messages(jobs.validate_job(_created_job())) == []


def test_job_selector_not_generated_is_refused() -> None:
    """Without manualSelector a foreign selector is refused."""
    obj = _created_job()
    obj["spec"]["selector"] = {"matchLabels": {"controller-uid": "other"}}
    obj["spec"]["template"]["metadata"]["labels"]["controller-uid"] = "other"
    assert _messages(jobs.validate_job(obj)) == [
        "spec.template.metadata.labels[controller-uid]: Invalid value: \"other\": must be '0b1c'",
        'spec.selector: Invalid value: {"matchLabels":{"controller-uid":"other"}}: `selector` not auto-generated',
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"completions": 3},
            ["spec.completions: Invalid value: 3: field is immutable"],
            id="completions",
        ),
        pytest.param({"parallelism": 4}, [], id="parallelism"),
        pytest.param(
            {"completionMode": "Indexed"},
            ['spec.completionMode: Invalid value: "Indexed": field is immutable'],
            id="completion-mode",
        ),
    ],
)
def test_job_updates_respect_immutability(change: Object, expected: list[str]) -> None:
    """Completions and completion mode are frozen; parallelism may change."""
    old = _created_job()
    new = copy.deepcopy(old)
    new["spec"].update(change)
    assert _messages(jobs.validate_job_update(new, old)) == expected


def test_job_template_is_immutable_once_running() -> None:
    """Changing the pod template of a running Job is refused at spec.template."""
    old = _created_job()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5"
    errs = _messages(jobs.validate_job_update(new, old))
    assert len(errs) == 1
    assert errs[0].startswith("spec.template: Invalid value: ")
    assert errs[0].endswith(": field is immutable")
