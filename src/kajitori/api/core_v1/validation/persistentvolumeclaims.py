"""PersistentVolumeClaim validation: the spec, and what may change after creation.

Mirrors upstream's ``ValidatePersistentVolumeClaim``/``...Update``. A claim's
spec is immutable (quota and limit ranges would otherwise be gamed), with
upstream's exceptions: ``volumeName`` may be set once, ``volumeAttributesClassName``
may change (not back to unset), and a *bound* claim may change
``resources.requests.storage`` (growing; shrinking only down to just above
``status.capacity``, upstream's expansion-failure recovery, GA since 1.34).

Not reproduced: upstream appends a Go ``cmp.Diff`` of old and new spec to the
"spec is immutable" message; we append nothing after its first line.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.api.core_v1 import validation as common
from kajitori.api.core_v1.validation import persistentvolumes as pv
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

PHASE_BOUND = "Bound"
SPEC_IMMUTABLE = (
    "spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims"
)
BETA_STORAGE_CLASS_ANNOTATION = pv.BETA_STORAGE_CLASS_ANNOTATION


def validate_persistent_volume_claim(obj: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    errs.extend(validate_persistent_volume_claim_spec(pv.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_persistent_volume_claim_spec(spec: Object, path: field.Path) -> field.ErrorList:
    """Access modes, a positive storage request, class names, volume mode."""
    errs = pv.validate_access_modes(
        spec.get("accessModes"),
        path.child("accessModes"),
        required_detail="at least 1 access mode is required",
    )
    errs.extend(_validate_storage_request(spec, path))
    errs.extend(
        pv.validate_class_name(spec.get("storageClassName"), path.child("storageClassName"))
    )
    errs.extend(pv.validate_enum(spec.get("volumeMode"), path.child("volumeMode"), pv.VOLUME_MODES))
    errs.extend(
        pv.validate_class_name(
            spec.get("volumeAttributesClassName"), path.child("volumeAttributesClassName")
        )
    )
    return errs


def _validate_storage_request(spec: Object, path: field.Path) -> field.ErrorList:
    # Upstream's path is "spec.resources[storage]" (Key on "resources"), kept.
    storage_path = path.child("resources").key(pv.STORAGE)
    requests = pv.dict_at(spec, "resources", "requests")
    if pv.STORAGE not in requests:
        return field.ErrorList([field.required(storage_path)])
    return pv.validate_positive_quantity(requests[pv.STORAGE], storage_path)


def _storage(obj: Object, *path: str) -> Any:
    return pv.dict_at(obj, *path).get(pv.STORAGE)


def validate_persistent_volume_claim_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    errs.extend(validate_persistent_volume_claim(new))
    errs.extend(_validate_storage_class_annotation(new, old))
    new_spec, old_spec = _comparable_specs(new, old)
    if new_spec != old_spec:
        errs.append(field.forbidden(field.Path("spec"), SPEC_IMMUTABLE))
    errs.extend(_validate_shrink(new, old))
    new_mode = pv.dict_at(new, "spec").get("volumeMode")
    if new_mode != pv.dict_at(old, "spec").get("volumeMode"):
        errs.append(field.invalid(field.Path("volumeMode"), new_mode, "field is immutable"))
    errs.extend(_validate_attributes_class(new, old))
    return errs


def _comparable_specs(new: Object, old: Object) -> tuple[Object, Object]:
    """Both specs with the fields that may change made equal, as upstream's clones."""
    new_spec = copy.deepcopy(pv.dict_at(new, "spec"))
    old_spec = copy.deepcopy(pv.dict_at(old, "spec"))
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec.get("volumeName")
    new_spec["volumeAttributesClassName"] = old_spec.get("volumeAttributesClassName")
    if _class_set_from_annotation_or_nil(new, old):
        new_spec["storageClassName"] = old_spec.get("storageClassName")
    bound = pv.dict_at(new, "status").get("phase") == PHASE_BOUND
    requests = pv.dict_at(new_spec, "resources", "requests")
    if bound and requests:
        old_value = _storage(old_spec, "resources", "requests")
        if old_value is None:
            requests.pop(pv.STORAGE, None)
        else:
            requests[pv.STORAGE] = old_value
    for spec in (new_spec, old_spec):
        for key in [key for key, value in spec.items() if value is None]:
            del spec[key]
    return new_spec, old_spec


def _annotation(obj: Object) -> str | None:
    value = pv.dict_at(obj, "metadata", "annotations").get(BETA_STORAGE_CLASS_ANNOTATION)
    return value if isinstance(value, str) else None


def _class_upgraded_from_annotation(new: Object, old: Object) -> bool:
    """``storageClassName`` newly set to the old beta annotation's value (annotation kept)."""
    old_annotation, new_annotation = _annotation(old), _annotation(new)
    new_class = pv.dict_at(new, "spec").get("storageClassName")
    return (
        old_annotation is not None
        and pv.dict_at(old, "spec").get("storageClassName") is None
        and new_class == old_annotation
        and (new_annotation is None or new_annotation == old_annotation)
    )


def _class_upgraded_from_nil(new: Object, old: Object) -> bool:
    """A class set on a claim that had none (retroactive default storage class)."""
    return (
        _annotation(old) is None
        and pv.dict_at(old, "spec").get("storageClassName") is None
        and bool(pv.dict_at(new, "spec").get("storageClassName"))
    )


def _class_set_from_annotation_or_nil(new: Object, old: Object) -> bool:
    return _class_upgraded_from_annotation(new, old) or _class_upgraded_from_nil(new, old)


def _validate_storage_class_annotation(new: Object, old: Object) -> field.ErrorList:
    if _class_upgraded_from_annotation(new, old):
        return field.ErrorList()
    new_value, old_value = _annotation(new) or "", _annotation(old) or ""
    if new_value != old_value:
        # Upstream's ValidateImmutableAnnotation uses Child, so no brackets.
        path = field.Path("metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION)
        return field.ErrorList([field.invalid(path, new_value, "field is immutable")])
    return field.ErrorList()


def _validate_shrink(new: Object, old: Object) -> field.ErrorList:
    new_size = common.quantity_value(_storage(new, "spec", "resources", "requests") or 0)
    old_size = common.quantity_value(_storage(old, "spec", "resources", "requests") or 0)
    status_size = common.quantity_value(_storage(old, "status", "capacity") or 0)
    if None in (new_size, old_size, status_size):
        return field.ErrorList()
    assert new_size is not None and old_size is not None and status_size is not None
    if new_size < old_size and new_size <= status_size:
        path = field.Path("spec", "resources", "requests", "storage")
        return field.ErrorList(
            [field.forbidden(path, "field can not be less than status.capacity")]
        )
    return field.ErrorList()


def _validate_attributes_class(new: Object, old: Object) -> field.ErrorList:
    had = pv.dict_at(old, "spec").get("volumeAttributesClassName") is not None
    if had and pv.dict_at(new, "spec").get("volumeAttributesClassName") is None:
        path = field.Path("spec", "volumeAttributesClassName")
        return field.ErrorList(
            [field.forbidden(path, "update from non-nil value to nil is forbidden")]
        )
    return field.ErrorList()


def validate_persistent_volume_claim_status_update(new: Object, old: Object) -> field.ErrorList:
    """Metadata rules, and capacities that parse and are not negative."""
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    capacity_path = field.Path("status", "capacity")
    for name, value in pv.dict_at(new, "status", "capacity").items():
        amount = common.quantity_value(value)
        if amount is None:
            errs.append(field.invalid(capacity_path.key(name), value, common.QUANTITY_FORMAT_ERROR))
        elif amount < 0:
            errs.append(
                field.invalid(capacity_path.key(name), str(value), common.IS_NEGATIVE_ERROR)
            )
    return errs
