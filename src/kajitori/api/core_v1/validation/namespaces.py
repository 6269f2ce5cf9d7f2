"""Namespace validation, for the main endpoint and the status and finalize subresources.

Mirrors upstream's ``ValidateNamespace`` and friends. Two upstream quirks are
kept because users see them: create reports bad finalizers at
``spec.finalizers`` (no index) while ``/finalize`` indexes them, and a bad
status phase is reported at ``status.Phase`` (capital P).

An update through the main endpoint validates only metadata: upstream's
strategy restores ``spec.finalizers`` and ``status`` from the stored object,
so there is nothing else a client could get wrong there.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

PHASE_ACTIVE = "Active"
PHASE_TERMINATING = "Terminating"
FINALIZER_KUBERNETES = objectmeta.FINALIZER_KUBERNETES


def validate_finalizer_name(value: str, path: field.Path) -> field.ErrorList:
    """A qualified name, and either fully qualified (has '/') or a standard finalizer."""
    errs = objectmeta.validate_finalizer_name(value, path)
    errs.extend(objectmeta.validate_kube_finalizer_name(value, path))
    return errs


def _finalizers(obj: Object) -> list[Any]:
    value = (obj.get("spec") or {}).get("finalizers")
    return value if isinstance(value, list) else []


def _meta_update(new: Object, old: Object) -> field.ErrorList:
    return objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )


def validate_namespace(obj: Object) -> field.ErrorList:
    """A new Namespace: cluster-scoped metadata with a DNS-1123 label name, finalizer names."""
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=False,
        name_validator=names.name_is_dns_label,
        path=field.Path("metadata"),
    )
    path = field.Path("spec", "finalizers")
    for finalizer in _finalizers(obj):
        errs.extend(validate_finalizer_name(str(finalizer), path))
    return errs


def validate_namespace_update(new: Object, old: Object) -> field.ErrorList:
    return _meta_update(new, old)


def validate_namespace_status_update(new: Object, old: Object) -> field.ErrorList:
    """Phase must be Active while not deleted and Terminating once deleted."""
    errs = _meta_update(new, old)
    phase = (new.get("status") or {}).get("phase") or ""
    path = field.Path("status", "Phase")
    if not (new.get("metadata") or {}).get("deletionTimestamp"):
        if phase != PHASE_ACTIVE:
            errs.append(
                field.invalid(path, phase, "may only be 'Active' if `deletionTimestamp` is empty")
            )
    elif phase != PHASE_TERMINATING:
        errs.append(
            field.invalid(
                path, phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"
            )
        )
    return errs


def validate_namespace_finalize_update(new: Object, old: Object) -> field.ErrorList:
    """``/finalize``: only ``spec.finalizers`` changes; each must be a valid name."""
    errs = _meta_update(new, old)
    path = field.Path("spec", "finalizers")
    for index, finalizer in enumerate(_finalizers(new)):
        errs.extend(validate_finalizer_name(str(finalizer), path.index(index)))
    return errs
