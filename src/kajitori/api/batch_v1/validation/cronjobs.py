"""Validation of batch/v1 CronJobs (upstream: ValidateCronJobCreate/Update).

Schedules use robfig/cron's standard syntax (``kajitori.api.batch_v1.cron``);
time zones go in ``spec.timeZone``, never as a ``TZ=`` prefix in new
schedules. Names are at most 52 characters because the controller appends
an 11-character suffix to name the Jobs it creates.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.batch_v1 import cron
from kajitori.api.batch_v1.validation import jobs
from kajitori.machinery import field

Object = dict[str, Any]

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
MAX_NAME_LENGTH = 52
_TIME_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def _validate_schedule(
    schedule: str, *, allow_tz: bool, time_zone: Any, path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    problem = cron.schedule_error(schedule)
    if problem:
        errs.append(field.invalid(path, schedule, problem))
    if allow_tz and "TZ" in schedule and time_zone is not None:
        errs.append(
            field.invalid(
                path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
            )
        )
    elif not allow_tz and "TZ" in schedule:
        errs.append(
            field.invalid(
                path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return errs


def validate_time_zone(time_zone: Any, path: field.Path) -> field.ErrorList:
    """An IANA zone name that this host's tz database knows ("Local" is refused)."""
    errs = field.ErrorList()
    if time_zone is None:
        return errs
    if time_zone == "":
        errs.append(field.invalid(path, time_zone, "timeZone must be nil or non-empty string"))
        return errs
    for part in str(time_zone).split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.match(part):
            errs.append(field.invalid(path, time_zone, f"unknown time zone {time_zone}"))
            return errs
    if str(time_zone).lower() == "local":
        errs.append(
            field.invalid(
                path,
                time_zone,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        )
    elif time_zone != "UTC" and not _zone_exists(str(time_zone)):
        errs.append(field.invalid(path, time_zone, f"unknown time zone {time_zone}"))
    return errs


def _zone_exists(zone: str) -> bool:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def validate_job_template_spec(template: Object, path: field.Path) -> field.ErrorList:
    """``ValidateJobTemplateSpec``: a Job spec whose selector the controller will generate."""
    spec = common.dict_at(template, "spec")
    errs = jobs.validate_job_spec_common(spec, path.child("spec"))
    if spec.get("selector") is not None:
        errs.append(
            field.invalid(
                path.child("spec", "selector"),
                spec["selector"],
                "`selector` will be auto-generated",
            )
        )
    if spec.get("manualSelector") is True:
        errs.append(
            field.not_supported(path.child("spec", "manualSelector"), True, ["nil", "false"])
        )
    return errs


def validate_cron_job_spec(
    spec: Object, old_spec: Object | None, path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(field.required(path.child("schedule")))
    else:
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
        errs.extend(
            _validate_schedule(
                str(schedule),
                allow_tz=allow_tz,
                time_zone=spec.get("timeZone"),
                path=path.child("schedule"),
            )
        )
    errs.extend(
        common.validate_nonnegative(
            spec.get("startingDeadlineSeconds"), path.child("startingDeadlineSeconds")
        )
    )
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs.extend(validate_time_zone(spec.get("timeZone"), path.child("timeZone")))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errs.append(field.required(path.child("concurrencyPolicy")))
    elif policy not in CONCURRENCY_POLICIES:
        errs.append(
            field.not_supported(path.child("concurrencyPolicy"), policy, CONCURRENCY_POLICIES)
        )
    errs.extend(
        validate_job_template_spec(common.dict_at(spec, "jobTemplate"), path.child("jobTemplate"))
    )
    for name in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.extend(common.validate_nonnegative(spec.get(name), path.child(name)))
    return errs


def validate_cron_job(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_cron_job_spec(common.dict_at(obj, "spec"), None, field.Path("spec")))
    name = str(common.dict_at(obj, "metadata").get("name", ""))
    if len(name) > MAX_NAME_LENGTH:
        errs.append(
            field.invalid(
                field.Path("metadata", "name"),
                name,
                f"must be no more than {MAX_NAME_LENGTH} characters",
            )
        )
    return errs


def validate_cron_job_update(new: Object, old: Object) -> field.ErrorList:
    """No name-length check: CronJobs created before the limit must stay updatable."""
    errs = common.validate_meta_update(new, old)
    errs.extend(
        validate_cron_job_spec(
            common.dict_at(new, "spec"), common.dict_at(old, "spec"), field.Path("spec")
        )
    )
    return errs
