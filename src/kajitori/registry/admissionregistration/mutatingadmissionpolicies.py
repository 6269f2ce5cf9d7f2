"""MutatingAdmissionPolicies in the API server.

Upstream: pkg/registry/admissionregistration/mutatingadmissionpolicy.
Owns: cluster scope, category ``api-extensions``, no status (the kind has
none); generation 1 on create and +1 when ``spec`` changes; a PUT must name
the resourceVersion it replaces; defaulting and validation from
``api.admissionregistration_v1.mutating_policies``; the ``kubectl get``
columns (NAME MUTATIONS PARAMKIND AGE). Enforcement is the
MutatingAdmissionPolicy admission plugin's (``admission.policy.mutating``).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.admissionregistration_v1 import mutating_policies
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.admissionregistration import validatingadmissionpolicies
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]


class PolicyStrategy(strategies.Strategy):
    """Create/update rules for ``admissionregistration.k8s.io/v1 mutatingadmissionpolicies``."""

    def set_defaults(self, obj: Object) -> None:
        mutating_policies.set_defaults_policy(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return mutating_policies.validate_policy(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return mutating_policies.validate_policy_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


RESOURCE = resource.ResourceInfo(
    group="admissionregistration.k8s.io",
    version="v1",
    kind="MutatingAdmissionPolicy",
    plural="mutatingadmissionpolicies",
    namespaced=False,
    categories=("api-extensions",),
    strategy=PolicyStrategy(),
    table=validatingadmissionpolicies.policy_table(
        "mutations",
        "Mutations",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    tracks_generation=True,
)
