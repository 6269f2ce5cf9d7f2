"""Validation of CSIStorageCapacities (upstream: ValidateCSIStorageCapacity).

Owns: a namespaced, DNS-subdomain name; ``nodeTopology`` is a valid label
selector; ``storageClassName`` is a DNS subdomain (so an empty one is
refused); ``capacity`` is not negative. On update the inputs of the CSI
GetCapacity call, ``nodeTopology`` and ``storageClassName``, are immutable.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1 import validation as core
from kajitori.machinery import field, gostrings, labels, names

Object = dict[str, Any]


def validate_csi_storage_capacity(obj: Object) -> field.ErrorList:
    """ValidateCSIStorageCapacity."""
    errs = common.validate_meta(obj, namespaced=True, name_validator=names.name_is_dns_subdomain)
    selector = obj.get("nodeTopology")
    if isinstance(selector, dict):
        errs.extend(labels.validate_label_selector(selector, field.Path("nodeTopology")))
    class_name = str(obj.get("storageClassName") or "")
    errs.extend(
        core.from_details(
            field.Path("storageClassName"),
            class_name,
            names.name_is_dns_subdomain(class_name, False),
        )
    )
    capacity = obj.get("capacity")
    if capacity is not None:
        amount = core.quantity_value(capacity)
        if amount is not None and amount < 0:
            errs.append(
                field.invalid(field.Path("capacity"), str(capacity), core.IS_NEGATIVE_ERROR)
            )
    return errs


def _go_requirement(requirement: Object) -> str:
    values = requirement.get("values")
    return gostrings.struct(
        "v1.LabelSelectorRequirement",
        (
            ("Key", gostrings.quote(requirement.get("key"))),
            ("Operator", gostrings.quote(requirement.get("operator"))),
            ("Values", gostrings.string_slice(values if values else None)),
        ),
    ).text


def _go_selector(selector: Any) -> Any:
    """A ``*metav1.LabelSelector`` as upstream prints it: dereferenced, with ``%#v``."""
    if not isinstance(selector, dict):
        return None
    match_labels = selector.get("matchLabels")
    expressions = [e for e in selector.get("matchExpressions") or [] if isinstance(e, dict)]
    shown = (
        "[]v1.LabelSelectorRequirement{" + ", ".join(map(_go_requirement, expressions)) + "}"
        if expressions
        else "[]v1.LabelSelectorRequirement(nil)"
    )
    return gostrings.struct(
        "v1.LabelSelector",
        (
            ("MatchLabels", gostrings.string_map(match_labels if match_labels else None)),
            ("MatchExpressions", shown),
        ),
    )


def validate_csi_storage_capacity_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateCSIStorageCapacityUpdate: metadata, then the two immutable inputs."""
    errs = common.validate_meta_update(new, old)
    if new.get("nodeTopology") != old.get("nodeTopology"):
        errs.append(
            field.invalid(
                field.Path("nodeTopology"), _go_selector(new.get("nodeTopology")), common.IMMUTABLE
            )
        )
    new_class = str(new.get("storageClassName") or "")
    if new_class != str(old.get("storageClassName") or ""):
        errs.append(field.invalid(field.Path("storageClassName"), new_class, common.IMMUTABLE))
    return errs
