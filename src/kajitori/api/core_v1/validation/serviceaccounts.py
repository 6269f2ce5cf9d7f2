"""ServiceAccount validation: only ObjectMeta, with a DNS-1123 subdomain name (as upstream)."""

from __future__ import annotations

from typing import Any

from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]


def validate_service_account(obj: Object) -> field.ErrorList:
    return objectmeta.validate_object_meta(
        obj.get("metadata") or {},
        namespaced=True,
        name_validator=names.validate_service_account_name,
        path=field.Path("metadata"),
    )


def validate_service_account_update(new: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        new.get("metadata") or {}, old.get("metadata") or {}, path=field.Path("metadata")
    )
    errs.extend(validate_service_account(new))
    return errs
