"""PodTemplates in the API server (pkg/registry/core/podtemplate upstream).

Owns: namespaced ``v1 podtemplates``; the pod defaults applied to
``template.spec`` (``defaults.set_defaults_pod_template``); generation 1 on
create and +1 when the template changes; validation from
``api.core_v1.validation.podtemplates``; the ``kubectl get podtemplates``
columns as upstream's printer (NAME CONTAINERS IMAGES POD LABELS).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import podtemplates as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class PodTemplateStrategy(strategies.Strategy):
    """Create/update rules for ``v1 podtemplates``."""

    def set_defaults(self, obj: Object) -> None:
        if not isinstance(obj.get("template"), dict):
            # Go's PodTemplate.Template is a struct: defaulting fills an absent one.
            obj["template"] = {}
        defaults.set_defaults_pod_template(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_pod_template(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_template_update(obj, old)


COLUMNS = (
    # NAME, as upstream's server-side printer (TEMPLATE was kubectl's client-side header
    # before the server printed tables).
    tables.NAME_COLUMN,
    tables.Column("Containers", description=printing.CONTAINERS_DOC),
    tables.Column("Images", description=printing.IMAGES_DOC),
    tables.Column("Pod Labels", description="The labels for the pod template."),
)


def pod_template_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    template = obj.get("template")
    template = template if isinstance(template, dict) else {}
    names, images = printing.container_cells(template.get("spec"))
    meta = template.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return [tables.name(obj), names, images, printing.format_labels(labels)]


RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="PodTemplate",
    plural="podtemplates",
    namespaced=True,
    strategy=PodTemplateStrategy(),
    table=tables.Table(columns=COLUMNS, row=pod_template_row),
    tracks_generation=True,
)
