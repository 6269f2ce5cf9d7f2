"""Jobs in the API server (upstream: pkg/registry/batch/job).

Owns: on create, unless ``spec.manualSelector``, the selector
``batch.kubernetes.io/controller-uid=<uid>`` and the template labels
(controller-uid, job-name, prefixed and legacy) are generated from the Job's
UID, which the store assigns before ``prepare_for_create``; status only
through ``jobs/status``; the ``status.successful`` field selector; columns
NAME STATUS COMPLETIONS DURATION AGE (wide CONTAINERS IMAGES SELECTOR).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.batch_v1 import defaults
from kajitori.api.batch_v1.validation import jobs as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


def _sub(obj: Object, key: str) -> Object:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def generate_selector(job: Object) -> None:
    """Label the template with the Job's name and UID and select on the UID.

    Labels the user already set are kept: a conflicting value is then
    refused by validation rather than silently overwritten (as upstream).
    """
    meta = job.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    spec = _sub(job, "spec")
    labels = _sub(_sub(_sub(spec, "template"), "metadata"), "labels")
    for key in (validation.LEGACY_JOB_NAME_LABEL, validation.JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (validation.LEGACY_CONTROLLER_UID_LABEL, validation.CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    match_labels = _sub(_sub(spec, "selector"), "matchLabels")
    match_labels.setdefault(validation.CONTROLLER_UID_LABEL, uid)


class JobStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``batch/v1 jobs``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_job(obj)

    def prepare_for_create(self, obj: Object) -> None:
        if (obj.get("spec") or {}).get("manualSelector") is not True:
            generate_selector(obj)
        super().prepare_for_create(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_job(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_job_update(obj, old)


class JobStatusStrategy(strategies.StatusStrategy):
    """``jobs/status``: only status changes; counters may not go down."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_job_status_update(obj, old)


def _status_successful(obj: Object) -> str:
    return str((obj.get("status") or {}).get("succeeded", 0))


def _has_condition(status: Object, kind: str) -> bool:
    return any(
        isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


_STATUS_ORDER = ("Complete", "Failed")
_LATER_STATUS_ORDER = ("Suspended", "FailureTarget", "SuccessCriteriaMet")


def job_status(obj: Object) -> str:
    """The STATUS cell: terminal conditions first, then Terminating, then the others."""
    status = obj.get("status") or {}
    for kind in _STATUS_ORDER:
        if _has_condition(status, kind):
            return kind
    if (obj.get("metadata") or {}).get("deletionTimestamp") is not None:
        return "Terminating"
    for kind in _LATER_STATUS_ORDER:
        if _has_condition(status, kind):
            return kind
    return "Running"


def completions(obj: Object) -> str:
    """ "succeeded/completions", or "n/1 of parallelism" for work-queue Jobs."""
    spec = obj.get("spec") or {}
    succeeded = (obj.get("status") or {}).get("succeeded", 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism") or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration(obj: Object, now: datetime.datetime) -> str:
    status = obj.get("status") or {}
    start = tables.parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = tables.parse_time(status.get("completionTime")) or now
    return tables.human_duration(end - start)


_JOB_SPEC = "io.k8s.api.batch.v1.JobSpec"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Status", description="Status of the job."),
    tables.Column(
        "Completions", description=printing.doc("io.k8s.api.batch.v1.JobStatus", "succeeded")
    ),
    tables.Column("Duration", description="Time required to complete the job."),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description=printing.CONTAINERS_DOC),
    tables.Column("Images", priority=1, description=printing.IMAGES_DOC),
    tables.Column("Selector", priority=1, description=printing.doc(_JOB_SPEC, "selector")),
)


def job_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    names, images = printing.container_cells((spec.get("template") or {}).get("spec"))
    return [
        tables.name(obj),
        job_status(obj),
        completions(obj),
        duration(obj, now),
        tables.age(obj, now),
        names,
        images,
        printing.selector_string(spec.get("selector")),
    ]


STRATEGY = JobStrategy()

RESOURCE = resource.ResourceInfo(
    group="batch",
    version="v1",
    kind="Job",
    plural="jobs",
    namespaced=True,
    categories=("all",),
    strategy=STRATEGY,
    status=JobStatusStrategy(STRATEGY),
    selectable_fields={"status.successful": _status_successful},
    table=tables.Table(columns=COLUMNS, row=job_row),
    tracks_generation=True,
)
