"""Validation of ClusterRoles (upstream: ValidateClusterRole).

Cluster rules may name non-resource URLs; an ``aggregationRule`` needs at
least one valid cluster-role selector. Selectors stored with label values now
invalid stay accepted on update, as upstream's ClusterRoleValidationOptions.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.rbac_v1 import validation
from kajitori.machinery import field

Object = dict[str, Any]


def _validate_aggregation_rule(rule: Any, *, allow_invalid_label_value: bool) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(rule, dict):
        return errs
    path = field.Path("aggregationRule", "clusterRoleSelectors")
    selectors = rule.get("clusterRoleSelectors") or []
    if not selectors:
        detail = "at least one clusterRoleSelector required if aggregationRule is non-nil"
        errs.append(field.required(path, detail))
    for i, selector in enumerate(selectors):
        errs.extend(
            common.validate_label_selector(
                selector, path.index(i), allow_invalid_label_value=allow_invalid_label_value
            )
        )
    return errs


def _validate(obj: Object, *, allow_invalid_label_value: bool) -> field.ErrorList:
    errs = validation.validate_meta(obj, namespaced=False)
    errs.extend(validation.validate_rules(obj.get("rules"), namespaced=False))
    errs.extend(
        _validate_aggregation_rule(
            obj.get("aggregationRule"), allow_invalid_label_value=allow_invalid_label_value
        )
    )
    return errs


def validate_cluster_role(obj: Object) -> field.ErrorList:
    return _validate(obj, allow_invalid_label_value=False)


def _has_invalid_selector(obj: Object) -> bool:
    selectors = common.dict_at(obj, "aggregationRule").get("clusterRoleSelectors") or []
    return not all(common.selector_is_valid(selector) for selector in selectors)


def validate_cluster_role_update(new: Object, old: Object) -> field.ErrorList:
    errs = _validate(new, allow_invalid_label_value=_has_invalid_selector(old))
    errs.extend(common.validate_meta_update(new, old))
    return errs
