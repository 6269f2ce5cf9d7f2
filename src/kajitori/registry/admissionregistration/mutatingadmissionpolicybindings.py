"""MutatingAdmissionPolicyBindings in the API server.

Upstream: pkg/registry/admissionregistration/mutatingadmissionpolicybinding.
Owns: cluster scope, category ``api-extensions``; generation 1 on create and
+1 when ``spec`` changes; a PUT must name the resourceVersion it replaces;
defaulting and validation from ``api.admissionregistration_v1.mutating_policies``;
the ``kubectl get`` columns, which upstream prints as for a
ValidatingAdmissionPolicyBinding (NAME POLICYNAME PARAMREF AGE).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.admissionregistration_v1 import mutating_policies
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.admissionregistration import validatingadmissionpolicybindings as vapb
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class BindingStrategy(strategies.Strategy):
    """Create/update rules for ``mutatingadmissionpolicybindings``."""

    def set_defaults(self, obj: Object) -> None:
        mutating_policies.set_defaults_binding(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return mutating_policies.validate_binding(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return mutating_policies.validate_binding_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


RESOURCE = resource.ResourceInfo(
    group="admissionregistration.k8s.io",
    version="v1",
    kind="MutatingAdmissionPolicyBinding",
    plural="mutatingadmissionpolicybindings",
    namespaced=False,
    categories=("api-extensions",),
    strategy=BindingStrategy(),
    # Upstream's columns and cells are the validating binding's, word for word.
    table=tables.Table(columns=vapb.COLUMNS, row=vapb.binding_row),
    tracks_generation=True,
)
