"""Validation of VolumeAttachments (upstream: ValidateVolumeAttachment and its V1 additions).

Owns: a DNS-subdomain name; ``spec.attacher`` required and, for v1, a CSI
driver name; exactly one of ``source.persistentVolumeName`` (a PV name) and
``source.inlineVolumeSpec`` (checked as a PersistentVolume spec, with our
PV validation's coverage); ``spec.nodeName`` a node name; status limits
(attachment metadata at most 256 KiB, error messages at most 1024 bytes and
non-negative error codes). The spec never changes after creation; upstream
reports the whole spec, printed as Go's ``%#v``, as the bad value.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core
from kajitori.api.core_v1.validation import persistentvolumes
from kajitori.api.storage_v1.validation import csidrivers
from kajitori.machinery import field, gostrings, names

Object = dict[str, Any]

MAX_ATTACHED_VOLUME_METADATA_SIZE = 256 * (1 << 10)
MAX_VOLUME_ERROR_MESSAGE_SIZE = 1024
_ONE_SOURCE = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"


def _validate_source(source: Object, path: field.Path) -> field.ErrorList:
    pv_name, inline = source.get("persistentVolumeName"), source.get("inlineVolumeSpec")
    if inline is None and pv_name is None:
        return field.ErrorList([field.required(path, _ONE_SOURCE)])
    if inline is not None and pv_name is not None:
        return field.ErrorList([field.forbidden(path, _ONE_SOURCE)])
    if pv_name is not None:
        if not pv_name:
            detail = "must specify non empty persistentVolumeName"
            return field.ErrorList([field.required(path.child("persistentVolumeName"), detail)])
        return field.ErrorList()
    spec = inline if isinstance(inline, dict) else {}
    return persistentvolumes.validate_persistent_volume_spec(spec, path.child("inlineVolumeSpec"))


def _validate_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not spec.get("attacher"):
        errs.append(field.required(path.child("attacher")))
    errs.extend(_validate_source(common.dict_at(spec, "source"), path.child("source")))
    node = str(spec.get("nodeName") or "")
    errs.extend(
        core.from_details(path.child("nodeName"), node, names.name_is_dns_subdomain(node, False))
    )
    return errs


def _validate_volume_error(error: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(error, dict):
        return errs
    if len(str(error.get("message") or "").encode()) > MAX_VOLUME_ERROR_MESSAGE_SIZE:
        # Upstream states the metadata limit here, not the message's own.
        errs.append(field.too_long(path.child("message"), "", MAX_ATTACHED_VOLUME_METADATA_SIZE))
    code = error.get("errorCode")
    if isinstance(code, int) and code < 0:
        detail = names.inclusive_range_error(0, 2**31 - 1)
        errs.append(field.invalid(path.child("errorCode"), code, detail))
    return errs


def _validate_status(status: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    metadata = status.get("attachmentMetadata")
    if isinstance(metadata, dict):
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in metadata.items())
        if size > MAX_ATTACHED_VOLUME_METADATA_SIZE:
            errs.append(
                field.too_long(
                    path.child("attachmentMetadata"), "", MAX_ATTACHED_VOLUME_METADATA_SIZE
                )
            )
    errs.extend(_validate_volume_error(status.get("attachError"), path.child("attachError")))
    errs.extend(_validate_volume_error(status.get("detachError"), path.child("detachError")))
    return errs


def validate_volume_attachment(obj: Object) -> field.ErrorList:
    """ValidateVolumeAttachment (every served version)."""
    errs = common.validate_meta(obj, namespaced=False, name_validator=names.name_is_dns_subdomain)
    errs.extend(_validate_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    errs.extend(_validate_status(common.dict_at(obj, "status"), field.Path("status")))
    return errs


def validate_volume_attachment_v1(obj: Object) -> field.ErrorList:
    """ValidateVolumeAttachmentV1: what v1 adds (attacher and PV name syntax)."""
    spec = common.dict_at(obj, "spec")
    errs = csidrivers.validate_csi_driver_name(spec.get("attacher"), field.Path("spec", "attacher"))
    pv_name = common.dict_at(spec, "source").get("persistentVolumeName")
    if pv_name is not None:
        text = str(pv_name)
        errs.extend(
            core.from_details(
                field.Path("spec", "source", "persistentVolumeName"),
                text,
                names.name_is_dns_subdomain(text, False),
            )
        )
    return errs


def _go_spec(spec: Object) -> gostrings.GoValue:
    source = common.dict_at(spec, "source")
    go_source = gostrings.struct(
        "storage.VolumeAttachmentSource",
        (
            (
                "PersistentVolumeName",
                gostrings.pointer(source.get("persistentVolumeName"), "string"),
            ),
            (
                "InlineVolumeSpec",
                gostrings.pointer(source.get("inlineVolumeSpec"), "core.PersistentVolumeSpec"),
            ),
        ),
    )
    return gostrings.struct(
        "storage.VolumeAttachmentSpec",
        (
            ("Attacher", gostrings.quote(spec.get("attacher"))),
            ("Source", go_source.text),
            ("NodeName", gostrings.quote(spec.get("nodeName"))),
        ),
    )


def validate_volume_attachment_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateVolumeAttachmentUpdate: the new object again, and a spec that never changes."""
    errs = validate_volume_attachment(new)
    new_spec = common.dict_at(new, "spec")
    if new_spec != common.dict_at(old, "spec"):
        errs.append(field.invalid(field.Path("spec"), _go_spec(new_spec), common.IMMUTABLE))
    return errs
