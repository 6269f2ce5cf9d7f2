"""Validation of Roles (upstream: ValidateRole): path-segment names and namespaced rules."""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.rbac_v1 import validation
from kajitori.machinery import field

Object = dict[str, Any]


def validate_role(obj: Object) -> field.ErrorList:
    errs = validation.validate_meta(obj, namespaced=True)
    errs.extend(validation.validate_rules(obj.get("rules"), namespaced=True))
    return errs


def validate_role_update(new: Object, old: Object) -> field.ErrorList:
    errs = validate_role(new)
    errs.extend(common.validate_meta_update(new, old))
    return errs
