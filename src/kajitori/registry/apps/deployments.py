"""Deployments in the API server (upstream: pkg/registry/apps/deployment).

Owns: status is written only through ``deployments/status``; generation
bumps on spec changes only; ``/scale`` reads and writes ``spec.replicas``;
the selector is immutable; ``kubectl get deployments`` columns
(NAME READY UP-TO-DATE AVAILABLE AGE, wide CONTAINERS IMAGES SELECTOR).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import defaults, printing
from kajitori.api.apps_v1.validation import deployments as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class DeploymentStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``apps/v1 deployments``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_deployment(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_deployment(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_deployment_update(obj, old)


class DeploymentStatusStrategy(strategies.StatusStrategy):
    """``deployments/status``: only status changes; counters are checked."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_deployment_status_update(obj, old)


_DEPLOYMENT_STATUS = "io.k8s.api.apps.v1.DeploymentStatus"

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Ready", description="Number of the pod with ready state"),
    tables.Column("Up-to-date", description=printing.doc(_DEPLOYMENT_STATUS, "updatedReplicas")),
    tables.Column("Available", description=printing.doc(_DEPLOYMENT_STATUS, "availableReplicas")),
    tables.AGE_COLUMN,
    tables.Column("Containers", priority=1, description=printing.CONTAINERS_DOC),
    tables.Column("Images", priority=1, description=printing.IMAGES_DOC),
    tables.Column(
        "Selector",
        priority=1,
        description=printing.doc("io.k8s.api.apps.v1.DeploymentSpec", "selector"),
    ),
)


def deployment_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = printing.container_cells((spec.get("template") or {}).get("spec"))
    return [
        tables.name(obj),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        tables.age(obj, now),
        names,
        images,
        printing.selector_string(spec.get("selector")),
    ]


STRATEGY = DeploymentStrategy()

RESOURCE = resource.ResourceInfo(
    group="apps",
    version="v1",
    kind="Deployment",
    plural="deployments",
    namespaced=True,
    short_names=("deploy",),
    categories=("all",),
    strategy=STRATEGY,
    status=DeploymentStatusStrategy(STRATEGY),
    scale=resource.ScaleSubresource(),
    table=tables.Table(columns=COLUMNS, row=deployment_row),
    tracks_generation=True,
)
