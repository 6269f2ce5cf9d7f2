"""ControllerRevisions in the API server (upstream: pkg/registry/apps/controllerrevision).

Owns: immutable ``data`` snapshots; columns NAME CONTROLLER REVISION AGE.
No short name, no categories, no status.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import defaults, printing
from kajitori.api.apps_v1.validation import controllerrevisions as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ControllerRevisionStrategy(strategies.Strategy):
    """Create/update rules for ``apps/v1 controllerrevisions``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_controller_revision(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_controller_revision(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_controller_revision_update(obj, old)


def _controller(obj: Object) -> str:
    """ "<kind>.<group>/<name>" of the controller owner reference, "<none>" without one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", ""))
            group_kind = f"{kind}.{group}" if group else kind
            return (
                f"{group_kind.lower()}/{ref.get('name', '')}" if kind else str(ref.get("name", ""))
            )
    return "<none>"


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Controller", description="Controller of the object"),
    tables.Column(
        "Revision", description=printing.doc("io.k8s.api.apps.v1.ControllerRevision", "revision")
    ),
    tables.AGE_COLUMN,
)


def controller_revision_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [tables.name(obj), _controller(obj), obj.get("revision", 0), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="apps",
    version="v1",
    kind="ControllerRevision",
    plural="controllerrevisions",
    namespaced=True,
    strategy=ControllerRevisionStrategy(),
    table=tables.Table(columns=COLUMNS, row=controller_revision_row),
)
