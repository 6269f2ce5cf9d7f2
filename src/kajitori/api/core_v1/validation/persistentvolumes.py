"""PersistentVolume validation, plus the storage helpers PersistentVolumeClaims share.

Mirrors upstream's ``ValidatePersistentVolume``/``...Update``/``...StatusUpdate``
for what users typically get wrong: access modes, a capacity of exactly
``storage``, exactly one volume source (with the required fields of the common
ones: hostPath, local, nfs, csi), reclaim policy, volume mode, class name, and
an immutable volume source.

Not reproduced: upstream appends a Go ``cmp.Diff`` of the two sources to the
"immutable after creation" message; we append nothing.
"""

from __future__ import annotations

import math
import posixpath
from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
STORAGE = "storage"
NOT_POSITIVE = "must be greater than zero"
# Upstream's order of checking, which decides which source "is" the volume and
# which ones are reported as extra.
PV_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
)


def dict_at(obj: Any, *path: str) -> Object:
    """The dict at ``path``, or {} when absent or malformed."""
    node = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def validate_access_modes(modes: Any, path: field.Path, *, required_detail: str) -> field.ErrorList:
    """Required, each supported, and ReadWriteOncePod only on its own."""
    errs = field.ErrorList()
    modes = modes if isinstance(modes, list) else []
    if not modes:
        errs.append(field.required(path, required_detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(field.not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(field.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def validate_class_name(name: Any, path: field.Path) -> field.ErrorList:
    """``storageClassName``/``volumeAttributesClassName``: a DNS subdomain when set."""
    if not isinstance(name, str) or not name:
        return field.ErrorList()
    return common.from_details(path, name, names.name_is_dns_subdomain(name, False))


def validate_positive_quantity(value: Any, path: field.Path) -> field.ErrorList:
    """Parses, and is above zero (upstream's ValidatePositiveQuantityValue)."""
    amount = common.quantity_value(value)
    if amount is None:
        return field.ErrorList([field.invalid(path, value, common.QUANTITY_FORMAT_ERROR)])
    if amount <= 0:
        return field.ErrorList([field.invalid(path, str(value), NOT_POSITIVE)])
    return field.ErrorList()


def validate_enum(value: Any, path: field.Path, supported: tuple[str, ...]) -> field.ErrorList:
    """Optional enum: only a set value is checked."""
    if value is not None and value != "" and value not in supported:
        return field.ErrorList([field.not_supported(path, value, supported)])
    return field.ErrorList()


def validate_persistent_volume(obj: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    errs.extend(validate_persistent_volume_spec(dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_persistent_volume_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = validate_access_modes(
        spec.get("accessModes"), path.child("accessModes"), required_detail=""
    )
    errs.extend(_validate_capacity(spec.get("capacity"), path.child("capacity")))
    errs.extend(validate_class_name(spec.get("storageClassName"), path.child("storageClassName")))
    errs.extend(
        validate_enum(
            spec.get("persistentVolumeReclaimPolicy"),
            path.child("persistentVolumeReclaimPolicy"),
            RECLAIM_POLICIES,
        )
    )
    errs.extend(_validate_sources(spec, path))
    errs.extend(validate_enum(spec.get("volumeMode"), path.child("volumeMode"), VOLUME_MODES))
    errs.extend(
        validate_class_name(
            spec.get("volumeAttributesClassName"), path.child("volumeAttributesClassName")
        )
    )
    return errs


def _validate_capacity(capacity: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    capacity = capacity if isinstance(capacity, dict) else {}
    if not capacity:
        errs.append(field.required(path))
    if STORAGE not in capacity or len(capacity) > 1:
        errs.append(field.not_supported(path, dict(sorted(capacity.items())), (STORAGE,)))
    for name, value in capacity.items():
        amount = common.quantity_value(value)
        if amount is not None and amount < 0:
            detail = "must be a valid resource quantity"
            errs.append(field.invalid(path.key(name), math.ceil(amount), detail))
        errs.extend(validate_positive_quantity(value, path.key(name)))
    return errs


def _validate_sources(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    present = [key for key in PV_SOURCES if spec.get(key) is not None]
    if not present:
        return field.ErrorList([field.required(path, "must specify a volume type")])
    for extra in present[1:]:
        errs.append(field.forbidden(path.child(extra), "may not specify more than 1 volume type"))
    check = _SOURCE_CHECKS.get(present[0])
    if check is not None:
        errs.extend(check(dict_at(spec, present[0]), path.child(present[0])))
    return errs


def _required_strings(source: Object, path: field.Path, *keys: str) -> field.ErrorList:
    return field.ErrorList(field.required(path.child(key)) for key in keys if not source.get(key))


def _no_backsteps(value: Any, path: field.Path) -> field.ErrorList:
    if isinstance(value, str) and ".." in value.split("/"):
        return field.ErrorList([field.invalid(path, value, "must not contain '..'")])
    return field.ErrorList()


def _check_host_path(source: Object, path: field.Path) -> field.ErrorList:
    errs = _required_strings(source, path, "path")
    errs.extend(_no_backsteps(source.get("path"), path.child("path")))
    return errs


def _check_nfs(source: Object, path: field.Path) -> field.ErrorList:
    errs = _required_strings(source, path, "server", "path")
    nfs_path = source.get("path")
    if not isinstance(nfs_path, str) or not posixpath.isabs(nfs_path):
        errs.append(field.invalid(path.child("path"), nfs_path or "", "must be an absolute path"))
    return errs


def _check_csi(source: Object, path: field.Path) -> field.ErrorList:
    return _required_strings(source, path, "driver", "volumeHandle")


_SOURCE_CHECKS = {
    "hostPath": _check_host_path,
    "local": _check_host_path,
    "nfs": _check_nfs,
    "csi": _check_csi,
}


def validate_persistent_volume_update(new: Object, old: Object) -> field.ErrorList:
    """``validate_persistent_volume`` plus an immutable volume source and volume mode."""
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    errs.extend(validate_persistent_volume(new))
    new_spec, old_spec = dict_at(new, "spec"), dict_at(old, "spec")
    if _sources(new_spec) != _sources(old_spec):
        errs.append(
            field.forbidden(
                field.Path("spec", "persistentvolumesource"),
                "spec.persistentvolumesource is immutable after creation",
            )
        )
    if new_spec.get("volumeMode") != old_spec.get("volumeMode"):
        # Upstream's path really is the bare "volumeMode".
        errs.append(
            field.invalid(
                field.Path("volumeMode"), new_spec.get("volumeMode"), "field is immutable"
            )
        )
    return errs


def _sources(spec: Object) -> Object:
    return {key: spec[key] for key in PV_SOURCES if spec.get(key) is not None}


def validate_persistent_volume_status_update(new: Object, old: Object) -> field.ErrorList:
    """Metadata rules only; the phase is free-form for the binder."""
    return objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )


# --- shared with the printers (upstream's pkg/apis/core/helper) -----------------------

_MODE_ABBREVIATIONS = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def access_modes_string(modes: Any) -> str:
    """ "RWO,ROX,RWX,RWOP" in that fixed order, duplicates and unknown modes dropped."""
    present = set(modes) if isinstance(modes, list) else set()
    return ",".join(short for mode, short in _MODE_ABBREVIATIONS if mode in present)


def storage_class_of(obj: Object) -> str:
    """The beta annotation if set, else ``spec.storageClassName`` (GetPersistentVolume(Claim)Class)."""
    annotation = dict_at(obj, "metadata", "annotations").get(BETA_STORAGE_CLASS_ANNOTATION)
    if isinstance(annotation, str):
        return annotation
    name = dict_at(obj, "spec").get("storageClassName")
    return name if isinstance(name, str) else ""
