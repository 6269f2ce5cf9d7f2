"""Validation of apps/v1 ControllerRevisions (upstream: ValidateControllerRevision).

A revision is a snapshot: ``data`` is mandatory and never changes afterwards.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field

Object = dict[str, Any]


def validate_controller_revision(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(field.required(field.Path("data"), "data is mandatory"))
    errs.extend(common.validate_nonnegative(obj.get("revision"), field.Path("revision")))
    return errs


def validate_controller_revision_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_controller_revision(new))
    errs.extend(common.validate_immutable(new.get("data"), old.get("data"), field.Path("data")))
    return errs
