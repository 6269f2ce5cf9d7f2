"""Validation of Leases (upstream: ValidateLease in pkg/apis/coordination/validation).

Owns the spec's numeric bounds and the coordinated-leader-election strategy
name. Upstream reports a bad strategy at ``spec.strategy.strategy`` (the
strategy check appends its own child to the path it is given); kept so clients
see the same field.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, names

Object = dict[str, Any]

# Kubernetes-defined strategies; others must be qualified "<domain>/<name>".
LEASE_STRATEGIES = ("OldestEmulationVersion",)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_coordinated_lease_strategy(strategy: str, path: field.Path) -> field.ErrorList:
    """``ValidateCoordinatedLeaseStrategy``: a built-in name or a qualified custom one."""
    errs = field.ErrorList()
    if len(strategy.split("/")) == 1:
        if strategy not in LEASE_STRATEGIES:
            errs.append(field.not_supported(path.child("strategy"), strategy, LEASE_STRATEGIES))
        return errs
    for msg in names.is_qualified_name(strategy):
        errs.append(field.invalid(path.child("strategy"), strategy, msg))
    return errs


def validate_lease_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    duration = spec.get("leaseDurationSeconds")
    if _is_int(duration) and duration <= 0:
        errs.append(
            field.invalid(path.child("leaseDurationSeconds"), duration, "must be greater than 0")
        )
    errs.extend(
        common.validate_nonnegative(spec.get("leaseTransitions"), path.child("leaseTransitions"))
    )
    strategy = spec.get("strategy")
    if isinstance(strategy, str):
        errs.extend(validate_coordinated_lease_strategy(strategy, path.child("strategy")))
    if spec.get("preferredHolder") and not strategy:
        errs.append(
            field.forbidden(
                path.child("preferredHolder"), "may only be specified if `strategy` is defined"
            )
        )
    return errs


def validate_lease(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_lease_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def validate_lease_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_lease_spec(common.dict_at(new, "spec"), field.Path("spec")))
    return errs
