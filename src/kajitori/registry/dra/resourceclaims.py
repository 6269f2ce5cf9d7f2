"""ResourceClaims in the API server (upstream: pkg/registry/resource/resourceclaim).

Owns: namespace scope; defaulting (api.resource_v1.defaults: ExactCount and
count 1, toleration operator Equal); dropping the fields of features that
are off by default in 1.37 (``gates``); a spec that never changes; ``status``
(allocation, reservedFor, devices) written only through
``resourceclaims/status``, where devices no longer allocated lose their
status entries; DELETE answering with the object; the ``kubectl get
resourceclaims`` columns (NAME STATE AGE, the state a summary such as
``pending`` or ``allocated,reserved``).

Not here: upstream's strategy refuses ``adminAccess`` unless the claim's
namespace carries ``resource.kubernetes.io/admin-access: "true"``; that
needs a namespace read, which ours cannot make, so the
``admission.plugins.dra_admin_access`` plugin makes it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.resource_v1 import claims as validation
from kajitori.api.resource_v1 import defaults
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.dra import gates
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ResourceClaimStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``resource.k8s.io/v1 resourceclaims``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_resource_claim(obj)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        gates.drop_disabled_claim_fields(obj, None)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        super().prepare_for_update(obj, old)
        gates.drop_disabled_claim_fields(obj, old)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_resource_claim(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        # Upstream checks only immutability here: an unchanged spec was valid when stored.
        return validation.validate_resource_claim_update(obj, old)


def _device_key(item: Any) -> tuple[str, str, str, str]:
    """A shared device's identity: driver, pool, device and share ID."""
    entry = item if isinstance(item, dict) else {}
    keys = ("driver", "pool", "device", "shareID")
    driver, pool, device, share = (str(entry.get(k) or "") for k in keys)
    return driver, pool, device, share


def _allocated(claim: Object) -> set[tuple[str, str, str, str]]:
    allocation = (claim.get("status") or {}).get("allocation")
    if not isinstance(allocation, dict):
        return set()
    results = (allocation.get("devices") or {}).get("results") or []
    return {_device_key(r) for r in results}


def drop_deallocated_status_devices(obj: Object, old: Object) -> None:
    """Status entries of devices the update deallocates go with them (upstream does the same)."""
    gone = _allocated(old) - _allocated(obj)
    status = obj.get("status")
    if not gone or not isinstance(status, dict) or not isinstance(status.get("devices"), list):
        return
    kept = [d for d in status["devices"] if _device_key(d) not in gone]
    if kept:
        status["devices"] = kept
    else:
        del status["devices"]


class ResourceClaimStatusStrategy(strategies.StatusStrategy):
    """``resourceclaims/status``: the scheduler allocates here, kubelets reserve and report."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        super().prepare_for_update(obj, old)
        drop_deallocated_status_devices(obj, old)
        gates.drop_disabled_claim_fields(obj, old)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_resource_claim_status_update(obj, old)


STRATEGY = ResourceClaimStrategy()

STATE_COLUMN = tables.Column(
    "State", description="A summary of the current state (allocated, pending, reserved, etc.)."
)


def claim_state(obj: Object) -> str:
    """``deleted``, ``pending``, ``allocated`` and ``reserved``, as upstream's printer joins them."""
    deleted = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    status = obj.get("status") or {}
    states = ["deleted"] if deleted else []
    if not isinstance(status.get("allocation"), dict):
        if not deleted:
            states.append("pending")
    else:
        states.append("allocated")
        if status.get("reservedFor"):
            states.append("reserved")
    return ",".join(states)


def resource_claim_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [tables.name(obj), claim_state(obj), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="resource.k8s.io",
    version="v1",
    kind="ResourceClaim",
    plural="resourceclaims",
    namespaced=True,
    strategy=STRATEGY,
    status=ResourceClaimStatusStrategy(STRATEGY),
    return_deleted_object=True,
    table=tables.Table(
        columns=(tables.NAME_COLUMN, STATE_COLUMN, tables.AGE_COLUMN), row=resource_claim_row
    ),
)
