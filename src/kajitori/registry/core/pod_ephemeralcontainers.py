"""``pods/ephemeralcontainers``: the one way to add ephemeral containers to a pod.

Owns upstream's podEphemeralContainersStrategy (pkg/registry/core/pod/strategy.go):
a GET answers the pod; an update (PUT, or any patch: ``kubectl debug`` sends a
strategic merge patch) changes ``spec.ephemeralContainers`` and nothing else.
The rest of the spec, the status and the metadata a status write may not
touch (labels, annotations, finalizers, owner references; upstream's
ResetObjectMetaForStatus) are taken from the stored pod, the generation goes
up when the ephemeral containers changed, and the result is checked by
``validation/ephemeral_containers.py`` (containers may only be added).

Declared by ``pods.py`` in ``extra_strategies``, so the generic update and
patch handlers and the admission chain serve it like ``namespaces/finalize``;
the admission plugins see the request's subresource through
``RequestContext.target`` (PodSecurity checks the added containers).
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import ephemeral_containers as validation
from kajitori.machinery import field
from kajitori.registry.core import pod_updates
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]

SUBRESOURCE = "ephemeralcontainers"


class EphemeralContainersStrategy(strategies.Strategy):
    """Update rules of ``pods/ephemeralcontainers`` (it serves no create or delete)."""

    def set_defaults(self, obj: Object) -> None:
        # The new containers get SetDefaults_Container like any other; the rest
        # of the spec is replaced by the stored (already defaulted) one anyway.
        defaults.set_defaults_pod(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        spec = obj.get("spec")
        ephemeral = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
        new_spec = copy.deepcopy(old.get("spec") or {})
        if ephemeral:
            new_spec["ephemeralContainers"] = ephemeral
        else:
            new_spec.pop("ephemeralContainers", None)
        obj["spec"] = new_spec
        pod_updates.keep_stored_parts(obj, old)
        pod_updates.update_pod_generation(obj, old)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_ephemeral_containers_update(obj, old)

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        return False  # done in prepare_for_update, as upstream's strategy does


STRATEGY = EphemeralContainersStrategy()
