"""ValidatingAdmissionPolicyBindings in the API server.

Upstream: pkg/registry/admissionregistration/validatingadmissionpolicybinding.
Owns: cluster scope, category ``api-extensions``; generation 1 on create and
+1 when ``spec`` changes; a PUT must name the resourceVersion it replaces;
defaulting and validation from ``api.admissionregistration_v1.policies``;
the ``kubectl get`` columns (NAME POLICYNAME PARAMREF AGE).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.admissionregistration_v1 import policies
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class BindingStrategy(strategies.Strategy):
    """Create/update rules for ``validatingadmissionpolicybindings``."""

    def set_defaults(self, obj: Object) -> None:
        policies.set_defaults_binding(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return policies.validate_binding(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return policies.validate_binding_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "PolicyName",
        description="PolicyName indicates the policy definition which the policy binding binded to",
    ),
    tables.Column(
        "ParamRef",
        description="ParamRef indicates the param resource which sets the configration param",
    ),
    tables.AGE_COLUMN,
)


def _go_requirement(requirement: Any) -> str:
    """A LabelSelectorRequirement as its generated Go String() prints it."""
    req = requirement if isinstance(requirement, dict) else {}
    values = " ".join(str(v) for v in req.get("values") or [])
    return (
        f"LabelSelectorRequirement{{Key:{req.get('key') or ''},"
        f"Operator:{req.get('operator') or ''},Values:[{values}],}}"
    )


def go_label_selector(selector: dict[str, Any]) -> str:
    """A metav1.LabelSelector as its generated Go String() prints it (upstream's printer)."""
    match_labels = selector.get("matchLabels") or {}
    labels = "".join(f"{k}: {match_labels[k]}," for k in sorted(match_labels))
    expressions = "".join(_go_requirement(r) + "," for r in selector.get("matchExpressions") or [])
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )


def param_ref_cell(ref: Any) -> str:
    """namespace/name, */name (no namespace given) or the selector; <unset> without one."""
    if not isinstance(ref, dict):
        return "<unset>"
    if ref.get("name"):
        return f"{ref.get('namespace') or '*'}/{ref['name']}"
    if isinstance(ref.get("selector"), dict):
        return go_label_selector(ref["selector"])
    return "<unset>"


def binding_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    raw = obj.get("spec")
    spec: Object = raw if isinstance(raw, dict) else {}
    return [
        tables.name(obj),
        str(spec.get("policyName") or ""),
        param_ref_cell(spec.get("paramRef")),
        tables.age(obj, now),
    ]


RESOURCE = resource.ResourceInfo(
    group="admissionregistration.k8s.io",
    version="v1",
    kind="ValidatingAdmissionPolicyBinding",
    plural="validatingadmissionpolicybindings",
    namespaced=False,
    categories=("api-extensions",),
    strategy=BindingStrategy(),
    table=tables.Table(columns=COLUMNS, row=binding_row),
    tracks_generation=True,
)
