"""Validation helpers shared by the workload-style API groups (apps, batch, policy, ...).

Owns the pieces upstream keeps in apimachinery's ``meta/v1/validation`` and
``apps/validation`` that several of our groups need: label-selector syntax and
matching (``ValidateLabelSelector``, ``LabelSelectorAsSelector``), ``IntOrString``
percentages, non-negative and immutable fields, and thin wrappers over ObjectMeta
validation so each resource module states only its name rule and scope.

They live here rather than in ``machinery`` because this module's owner does
not own ``machinery``; the lead may move them (see the report of the
resources-engineer for apps/batch/...). Every message is upstream's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]
NameValidator = Callable[[str, bool], list[str]]

IMMUTABLE = "field is immutable"
NONNEGATIVE = "must be greater than or equal to 0"

name_is_dns_subdomain: NameValidator = names.name_is_dns_subdomain
name_is_dns_label: NameValidator = names.name_is_dns_label


def dict_at(obj: Any, *path: str) -> Object:
    """The dict at ``path`` or {} (malformed or absent parts read as empty)."""
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return {}
        node = node.get(key)
    return node if isinstance(node, dict) else {}


def ensure_dict(obj: Object, key: str) -> Object:
    """``obj[key]`` as a dict, created (or replaced if malformed) when needed."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


# --- ObjectMeta ------------------------------------------------------------------------


def validate_meta(
    obj: Object, *, namespaced: bool, name_validator: NameValidator
) -> field.ErrorList:
    """``ValidateObjectMeta`` on ``obj.metadata`` at path ``metadata``."""
    return objectmeta.validate_object_meta(
        dict_at(obj, "metadata"),
        namespaced=namespaced,
        name_validator=name_validator,
        path=field.Path("metadata"),
    )


def validate_meta_update(new: Object, old: Object) -> field.ErrorList:
    """``ValidateObjectMetaUpdate`` of ``new.metadata`` against ``old.metadata``."""
    return objectmeta.validate_object_meta_update(
        dict_at(new, "metadata"), dict_at(old, "metadata"), path=field.Path("metadata")
    )


# --- scalars ---------------------------------------------------------------------------


def validate_nonnegative(value: Any, path: field.Path) -> field.ErrorList:
    """``ValidateNonnegativeField``: absent values are fine; negatives are refused."""
    errs = field.ErrorList()
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        errs.append(field.invalid(path, value, NONNEGATIVE))
    return errs


def validate_immutable(new: Any, old: Any, path: field.Path) -> field.ErrorList:
    """``ValidateImmutableField``: the new value is reported when it differs."""
    errs = field.ErrorList()
    if new != old:
        errs.append(field.invalid(path, new, IMMUTABLE))
    return errs


# --- labels and label selectors --------------------------------------------------------


def validate_labels(labels: Any, path: field.Path) -> field.ErrorList:
    """``ValidateLabels``: keys are qualified names, values label values (errors at ``path``)."""
    errs = field.ErrorList()
    if not isinstance(labels, dict):
        return errs
    for key, value in labels.items():
        for msg in names.is_qualified_name(key):
            errs.append(field.invalid(path, key, msg))
        for msg in names.is_valid_label_value(value if isinstance(value, str) else ""):
            errs.append(field.invalid(path, value, msg))
    return errs


_OPERATORS_WITH_VALUES = ("In", "NotIn")
_OPERATORS_WITHOUT_VALUES = ("Exists", "DoesNotExist")


def _validate_requirement(
    req: Any, path: field.Path, *, allow_invalid_label_value: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    req = req if isinstance(req, dict) else {}
    operator = req.get("operator", "")
    values = req.get("values") or []
    if operator in _OPERATORS_WITH_VALUES:
        if not values:
            errs.append(
                field.required(
                    path.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
    elif operator in _OPERATORS_WITHOUT_VALUES:
        if values:
            errs.append(
                field.forbidden(
                    path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    else:
        errs.append(
            field.invalid(path.child("operator"), operator, "not a valid selector operator")
        )
    for msg in names.is_qualified_name(str(req.get("key", ""))):
        errs.append(field.invalid(path.child("key"), req.get("key", ""), msg))
    if not allow_invalid_label_value:
        for i, value in enumerate(values):
            for msg in names.is_valid_label_value(str(value)):
                errs.append(field.invalid(path.child("values").index(i), value, msg))
    return errs


def validate_label_selector(
    selector: Any, path: field.Path, *, allow_invalid_label_value: bool = False
) -> field.ErrorList:
    """``ValidateLabelSelector`` for a ``metav1.LabelSelector`` dict (None is valid)."""
    errs = field.ErrorList()
    if not isinstance(selector, dict):
        return errs
    errs.extend(validate_labels(selector.get("matchLabels"), path.child("matchLabels")))
    for i, req in enumerate(selector.get("matchExpressions") or []):
        errs.extend(
            _validate_requirement(
                req,
                path.child("matchExpressions").index(i),
                allow_invalid_label_value=allow_invalid_label_value,
            )
        )
    return errs


def selector_is_empty(selector: Any) -> bool:
    """True for ``{}`` (which selects everything), not for None (which selects nothing)."""
    return (
        isinstance(selector, dict)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )


def selector_is_valid(selector: Any) -> bool:
    """Whether ``LabelSelectorAsSelector`` would succeed (None converts to "nothing")."""
    if selector is None:
        return True
    return isinstance(selector, dict) and not validate_label_selector(selector, field.Path(""))


def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a ``metav1.LabelSelector`` selects ``labels``; None selects nothing."""
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, Mapping) else {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement_matches(req, labels) for req in selector.get("matchExpressions") or [])


def _requirement_matches(req: Object, labels: Mapping[str, Any]) -> bool:
    key = req.get("key", "")
    operator = req.get("operator")
    values = req.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def validate_template_labels_match(
    selector: Any, template: Any, path: field.Path, *, skip_empty: bool = True
) -> field.ErrorList:
    """Upstream's "`selector` does not match template `labels`" check.

    Run only when the selector converts; an empty selector is skipped when
    ``skip_empty`` (ReplicaSet-style templates), a nil one never matches.
    """
    errs = field.ErrorList()
    if not selector_is_valid(selector):
        return errs
    if skip_empty and selector_is_empty(selector):
        return errs
    labels = dict_at(template, "metadata", "labels")
    if not selector_matches(selector, labels):
        raw = dict_at(template, "metadata").get("labels")
        errs.append(
            field.invalid(
                path.child("metadata", "labels"), raw, "`selector` does not match template `labels`"
            )
        )
    return errs


# --- IntOrString -----------------------------------------------------------------------

_PERCENT = re.compile(r"^[0-9]+%$")


def percent_value(value: Any) -> int | None:
    """The number in a valid percent string ("25%" → 25), None otherwise."""
    if isinstance(value, str) and _PERCENT.match(value):
        return int(value[:-1])
    return None


def int_or_percent_value(value: Any) -> int:
    """upstream's ``getIntOrPercentValue``: the percentage or the integer (0 if neither)."""
    percent = percent_value(value)
    if percent is not None:
        return percent
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def validate_positive_int_or_percent(value: Any, path: field.Path) -> field.ErrorList:
    """``ValidatePositiveIntOrPercent``: a non-negative integer or an "N%" string."""
    errs = field.ErrorList()
    if isinstance(value, str):
        for msg in names.is_valid_percent(value):
            errs.append(field.invalid(path, value, msg))
    elif isinstance(value, int) and not isinstance(value, bool):
        errs.extend(validate_nonnegative(value, path))
    elif value is not None:
        errs.append(field.invalid(path, value, "must be an integer or percentage (e.g '5%')"))
    return errs


def is_not_more_than_100_percent(value: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    percent = percent_value(value)
    if percent is not None and percent > 100:
        errs.append(field.invalid(path, value, "must not be greater than 100%"))
    return errs
