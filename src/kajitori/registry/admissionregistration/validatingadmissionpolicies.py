"""ValidatingAdmissionPolicies in the API server.

Upstream: pkg/registry/admissionregistration/validatingadmissionpolicy.
Owns: cluster scope, category ``api-extensions``; status is written only
through ``/status`` (reset to ``{}`` on create, kept on spec updates);
generation 1 on create and +1 when ``spec`` changes; a PUT must name the
resourceVersion it replaces; defaulting and validation from
``api.admissionregistration_v1.policies``; the ``kubectl get`` columns
(NAME VALIDATIONS PARAMKIND AGE). Enforcement is the ValidatingAdmissionPolicy
admission plugin's (``admission.policy``).
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


class PolicyStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``admissionregistration.k8s.io/v1 validatingadmissionpolicies``."""

    def set_defaults(self, obj: Object) -> None:
        policies.set_defaults_policy(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return policies.validate_policy(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return policies.validate_policy_update(obj, old)

    def allow_unconditional_update(self) -> bool:
        return False


class PolicyStatusStrategy(strategies.StatusStrategy):
    """``/status``: only status changes, checked as upstream's status validation."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return policies.validate_policy_status(obj)


def policy_table(rules: str, title: str, description: str) -> tables.Table:
    """Both policy kinds' printer: NAME, the count of ``spec.<rules>``, PARAMKIND, AGE."""
    columns = (
        tables.NAME_COLUMN,
        tables.Column(title, type="integer", description=description),
        tables.Column(
            "ParamKind",
            description="ParamKind specifies the kind of resources used to parameterize this "
            "policy",
        ),
        tables.AGE_COLUMN,
    )

    def row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
        raw = obj.get("spec")
        spec: Object = raw if isinstance(raw, dict) else {}
        listed = spec.get(rules)
        kind = spec.get("paramKind")
        shown = "<unset>"
        if isinstance(kind, dict):
            shown = f"{kind.get('apiVersion') or ''}/{kind.get('kind') or ''}"
        count = len(listed) if isinstance(listed, list) else 0
        return [tables.name(obj), count, shown, tables.age(obj, now)]

    return tables.Table(columns=columns, row=row)


_STRATEGY = PolicyStrategy()

RESOURCE = resource.ResourceInfo(
    group="admissionregistration.k8s.io",
    version="v1",
    kind="ValidatingAdmissionPolicy",
    plural="validatingadmissionpolicies",
    namespaced=False,
    categories=("api-extensions",),
    strategy=_STRATEGY,
    status=PolicyStatusStrategy(_STRATEGY),
    table=policy_table(
        "validations",
        "Validations",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    tracks_generation=True,
)
