"""VolumeAttachments in the API server (upstream: pkg/registry/storage/volumeattachment).

Owns: cluster scope; ``status`` (attached, metadata, errors) written only
through ``volumeattachments/status``, the spec never changing after
creation; v1's extra attacher and PV-name checks (this server serves no
v1beta1, so they always apply); DELETE answering with the object, as
upstream's storage; the ``kubectl get volumeattachments`` columns (NAME
ATTACHER PV NODE ATTACHED AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.storage_v1.validation import volumeattachments as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class VolumeAttachmentStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``storage.k8s.io/v1 volumeattachments``."""

    def validate(self, obj: Object) -> field.ErrorList:
        errs = validation.validate_volume_attachment(obj)
        errs.extend(validation.validate_volume_attachment_v1(obj))
        return errs

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        # Upstream validates the new object here and again inside the update check.
        errs = validation.validate_volume_attachment(obj)
        errs.extend(validation.validate_volume_attachment_update(obj, old))
        return errs

    def allow_unconditional_update(self) -> bool:
        return False


class VolumeAttachmentStatusStrategy(strategies.StatusStrategy):
    """``volumeattachments/status``: the attacher reports attachment state here."""


STRATEGY = VolumeAttachmentStrategy()

COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Attacher",
        format="name",
        description=printing.doc("io.k8s.api.storage.v1.VolumeAttachmentSpec", "attacher"),
    ),
    tables.Column(
        "PV",
        description=printing.doc(
            "io.k8s.api.storage.v1.VolumeAttachmentSource", "persistentVolumeName"
        ),
    ),
    tables.Column(
        "Node", description=printing.doc("io.k8s.api.storage.v1.VolumeAttachmentSpec", "nodeName")
    ),
    tables.Column(
        "Attached",
        "boolean",
        description=printing.doc("io.k8s.api.storage.v1.VolumeAttachmentStatus", "attached"),
    ),
    tables.AGE_COLUMN,
)


def volume_attachment_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = obj.get("spec") or {}
    source = spec.get("source") or {}
    return [
        tables.name(obj),
        str(spec.get("attacher") or ""),
        str(source.get("persistentVolumeName") or ""),
        str(spec.get("nodeName") or ""),
        bool((obj.get("status") or {}).get("attached")),
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="VolumeAttachment",
    plural="volumeattachments",
    namespaced=False,
    strategy=STRATEGY,
    status=VolumeAttachmentStatusStrategy(STRATEGY),
    return_deleted_object=True,
    table=tables.Table(columns=COLUMNS, row=volume_attachment_row),
)
