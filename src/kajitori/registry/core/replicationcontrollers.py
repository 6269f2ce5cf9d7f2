"""ReplicationControllers in the API server: strategy, status, /scale, table.

Owns: generation 1 on create and +1 on spec changes; status kept by the main
endpoint and written only through replicationcontrollers/status; ``/scale``
with a map selector (``spec.selector`` is a plain label map on this kind).
Mirrors pkg/registry/core/replicationcontroller/strategy.go and
printReplicationController.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import replicationcontrollers as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ReplicationControllerStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules of ``replicationcontrollers``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_replication_controller(obj)

    def prepare_for_create(self, obj: Object) -> None:
        # The zero ReplicationControllerStatus encodes replicas (no omitempty).
        obj["status"] = {"replicas": 0}
        obj.setdefault("metadata", {})["generation"] = 1

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_replication_controller(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_replication_controller_update(obj, old)


class ReplicationControllerStatusStrategy(strategies.StatusStrategy):
    """``replicationcontrollers/status``: written by the replication manager."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_replication_controller_status_update(obj, old)


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Desired", type="integer", description=_doc("ReplicationControllerSpec", "replicas")
    ),
    tables.Column(
        "Current", type="integer", description=_doc("ReplicationControllerStatus", "replicas")
    ),
    tables.Column(
        "Ready", type="integer", description=_doc("ReplicationControllerStatus", "readyReplicas")
    ),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description="Names of each container in the template."),
    tables.Column(
        "Images", priority=1, description="Images referenced by each container in the template."
    ),
    tables.Column(
        "Selector", priority=1, description=_doc("ReplicationControllerSpec", "selector")
    ),
)


def format_labels(labels: Any) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def rc_row(rc: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = rc.get("spec") or {}
    status = rc.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or ()
    return [
        tables.name(rc),
        int(spec.get("replicas") or 0),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        tables.age(rc, now),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        format_labels(spec.get("selector")),
    ]


STRATEGY = ReplicationControllerStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="ReplicationController",
    plural="replicationcontrollers",
    namespaced=True,
    short_names=("rc",),
    categories=("all",),
    strategy=STRATEGY,
    status=ReplicationControllerStatusStrategy(STRATEGY),
    # spec.selector is a label map here, not a metav1.LabelSelector.
    scale=resource.ScaleSubresource(label_selector=("spec", "selector")),
    selectable_fields={"status.replicas": resource.nested_str("status", "replicas")},
    table=tables.Table(columns=COLUMNS, row=rc_row),
)
