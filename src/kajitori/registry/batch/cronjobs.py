"""CronJobs in the API server (upstream: pkg/registry/batch/cronjob).

Owns: status only through ``cronjobs/status``; generation bumps on spec
changes; columns NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE
(wide CONTAINERS IMAGES SELECTOR).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.apps_v1.validation import common
from kajitori.api.batch_v1 import defaults
from kajitori.api.batch_v1.validation import cronjobs as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class CronJobStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``batch/v1 cronjobs``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_cron_job(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_cron_job(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_cron_job_update(obj, old)


class CronJobStatusStrategy(strategies.StatusStrategy):
    """``cronjobs/status``: only status changes (upstream validates only metadata)."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return common.validate_meta_update(obj, old)


_SPEC = "io.k8s.api.batch.v1.CronJobSpec"
_STATUS = "io.k8s.api.batch.v1.CronJobStatus"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Schedule", description=printing.doc(_SPEC, "schedule")),
    tables.Column("Timezone", description=printing.doc(_SPEC, "timeZone")),
    tables.Column("Suspend", type="boolean", description=printing.doc(_SPEC, "suspend")),
    tables.Column("Active", type="integer", description=printing.doc(_STATUS, "active")),
    tables.Column("Last Schedule", description=printing.doc(_STATUS, "lastScheduleTime")),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description=printing.CONTAINERS_DOC),
    tables.Column("Images", priority=1, description=printing.IMAGES_DOC),
    tables.Column(
        "Selector", priority=1, description=printing.doc("io.k8s.api.batch.v1.JobSpec", "selector")
    ),
)


def _since(timestamp: Any, now: datetime.datetime) -> str:
    when = tables.parse_time(timestamp) if isinstance(timestamp, str) else None
    return "<none>" if when is None else tables.human_duration(now - when)


def _bool(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def cron_job_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = printing.container_cells((job_spec.get("template") or {}).get("spec"))
    return [
        tables.name(obj),
        spec.get("schedule", ""),
        spec.get("timeZone") if spec.get("timeZone") is not None else "<none>",
        _bool(spec.get("suspend")),
        len(status.get("active") or []),
        _since(status.get("lastScheduleTime"), now),
        tables.age(obj, now),
        names,
        images,
        printing.format_label_selector(job_spec.get("selector")),
    ]


STRATEGY = CronJobStrategy()

RESOURCE = resource.ResourceInfo(
    group="batch",
    version="v1",
    kind="CronJob",
    plural="cronjobs",
    namespaced=True,
    short_names=("cj",),
    categories=("all",),
    strategy=STRATEGY,
    status=CronJobStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=cron_job_row),
    tracks_generation=True,
)
