"""CustomResourceDefinitions in the API server (upstream: apiextensions-apiserver/pkg/registry/customresourcedefinition).

Owns: defaulting and validation through ``api.apiextensions_v1``; status is
written only through ``/status`` (the in-process CRD controller in
``server/crds.py`` writes the NamesAccepted and Established conditions);
generation counts spec changes; and deletion: the first DELETE only marks the
CRD (``deletionTimestamp``, the ``customresourcecleanup.apiextensions.k8s.io``
finalizer, condition Terminating), so the controller can delete every custom
resource first and then remove the finalizer, as upstream's REST Delete does.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apiextensions_v1 import defaults, validation
from kajitori.machinery import field, times
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


class CRDStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``apiextensions.k8s.io/v1 customresourcedefinitions``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_crd(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_crd(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_crd_update(obj, old)

    def deletion_pending(self, obj: Object) -> bool:
        # Held back until marked: the first DELETE marks it (prepare_for_delete)
        # and only the cleanup finalizer keeps it from then on.
        return not obj.get("metadata", {}).get("deletionTimestamp")

    def prepare_for_delete(self, obj: Object) -> None:
        meta = obj["metadata"]
        finalizers = meta.setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        set_condition(
            obj,
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        )


def set_condition(obj: Object, type_: str, status: str, reason: str, message: str) -> None:
    """Set one status condition, keeping lastTransitionTime when the status is unchanged."""
    conditions: list[Object] = obj.setdefault("status", {}).setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == type_:
            if condition.get("status") != status:
                condition["lastTransitionTime"] = times.now_rfc3339()
            condition.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": type_,
            "status": status,
            "lastTransitionTime": times.now_rfc3339(),
            "reason": reason,
            "message": message,
        }
    )


def condition_true(obj: Object, type_: str) -> bool:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return bool(condition.get("status") == "True")
    return False


_STRATEGY = CRDStrategy()

RESOURCE = resource.ResourceInfo(
    group=GROUP,
    version="v1",
    kind="CustomResourceDefinition",
    plural="customresourcedefinitions",
    namespaced=False,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    strategy=_STRATEGY,
    status=strategies.StatusStrategy(_STRATEGY),
    tracks_generation=True,
)
