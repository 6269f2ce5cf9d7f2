"""StorageVersionMigrations in the API server (upstream: pkg/registry/storagemigration).

Owns: cluster scope; the main endpoint creates with an empty status and
never changes it (nor, after create, the spec); ``/status`` changes only
status (the storage version migrator controller's writes). Validation is
``api.storagemigration_v1``'s. Table columns as upstream's printer: NAME
RESOURCE, the resource printed as a GroupResource (``secrets``,
``deployments.apps``). The migration itself is
``controllers.storage_version_migrator``'s.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.storagemigration_v1 import validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class SVMStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``storagemigration.k8s.io/v1 storageversionmigrations``."""

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {}

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_svm(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_svm_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


class SVMStatusStrategy(strategies.StatusStrategy):
    """``/status``: status only; the spec and most metadata are the stored ones."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_svm_status_update(obj, old)


def group_resource(obj: Object) -> str:
    """``spec.resource`` as Go's GroupResource.String(): ``resource[.group]``."""
    spec = obj.get("spec")
    res = spec.get("resource") if isinstance(spec, dict) else None
    res = res if isinstance(res, dict) else {}
    plural, group = str(res.get("resource") or ""), str(res.get("group") or "")
    return f"{plural}.{group}" if group else plural


COLUMNS = (
    # Upstream's Name column here has no "name" format.
    tables.Column("Name", description=tables.NAME_COLUMN.description),
    tables.Column("Resource", description="Fully qualified resource to migrate"),
)


def svm_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [tables.name(obj), group_resource(obj)]


STRATEGY = SVMStrategy()

RESOURCE = resource.ResourceInfo(
    group="storagemigration.k8s.io",
    version="v1",
    kind="StorageVersionMigration",
    plural="storageversionmigrations",
    namespaced=False,
    strategy=STRATEGY,
    status=SVMStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=svm_row),
)
