"""PriorityClasses in the API server (upstream: pkg/registry/scheduling/priorityclass).

Owns: cluster scope, short name ``pc``; defaulting and validation from
``api.scheduling_v1``; the ``kubectl get pc`` columns (NAME VALUE
GLOBAL-DEFAULT AGE PREEMPTIONPOLICY); and the two system classes every
cluster starts with (``ensure_system_classes``, called at start-up as
upstream's scheduling REST storage post-start hook does). Deleting a system
class is refused by the Priority admission plugin.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.scheduling_v1 import defaults, validation
from kajitori.machinery import errors, field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables
from kajitori.registry.generic.request import RequestContext, UserInfo

Object = dict[str, Any]

_CLASS = "io.k8s.api.scheduling.v1.PriorityClass"


class PriorityClassStrategy(strategies.Strategy):
    """Create/update rules for ``scheduling.k8s.io/v1 priorityclasses``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_priority_class(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_priority_class(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_priority_class_update(obj, old)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Value", type="integer", description=printing.doc(_CLASS, "value")),
    tables.Column(
        "Global-Default", type="boolean", description=printing.doc(_CLASS, "globalDefault")
    ),
    tables.AGE_COLUMN,
    tables.Column("PreemptionPolicy", description=printing.doc(_CLASS, "preemptionPolicy")),
)


def priority_class_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [
        tables.name(obj),
        int(obj.get("value") or 0),
        bool(obj.get("globalDefault")),
        tables.age(obj, now),
        str(obj.get("preemptionPolicy") or ""),
    ]


RESOURCE = resource.ResourceInfo(
    group="scheduling.k8s.io",
    version="v1",
    kind="PriorityClass",
    return_deleted_object=True,
    plural="priorityclasses",
    namespaced=False,
    short_names=("pc",),
    strategy=PriorityClassStrategy(),
    table=tables.Table(columns=COLUMNS, row=priority_class_row),
)

_SYSTEM_USER = UserInfo(name="system:apiserver", groups=("system:masters",))


def system_class(name: str) -> Object:
    """One of upstream's SystemPriorityClasses."""
    description = {
        "system-node-critical": "Used for system critical pods that must not be moved from "
        "their current node.",
        "system-cluster-critical": "Used for system critical pods that must run in the cluster, "
        "but can be moved to another node if necessary.",
    }[name]
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": validation.SYSTEM_PRIORITY_CLASSES[name],
        "description": description,
    }


async def ensure_system_classes(store: Any) -> None:
    """Create the system classes that are missing (``store`` serves priorityclasses)."""
    for name in validation.SYSTEM_PRIORITY_CLASSES:
        try:
            await store.create("", system_class(name), RequestContext(user=_SYSTEM_USER))
        except errors.StatusError as exc:
            if exc.code != 409:
                raise
