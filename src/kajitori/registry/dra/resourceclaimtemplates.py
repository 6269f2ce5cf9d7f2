"""ResourceClaimTemplates in the API server (upstream: pkg/registry/resource/resourceclaimtemplate).

Owns: namespace scope; the claim defaults applied to ``spec.spec``; a spec
that never changes after creation; the template's own labels and
annotations checked; the ``kubectl get resourceclaimtemplates`` columns
(NAME AGE); DELETE answering with the object, as upstream's storage.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.resource_v1 import claims as validation
from kajitori.api.resource_v1 import defaults
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.dra import gates
from kajitori.registry.dra.deviceclasses import name_age_row
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


def _claim_spec(obj: Object | None) -> Object | None:
    spec = (obj or {}).get("spec")
    inner = spec.get("spec") if isinstance(spec, dict) else None
    return inner if isinstance(inner, dict) else ({} if obj is not None else None)


class ResourceClaimTemplateStrategy(strategies.Strategy):
    """Create/update rules for ``resource.k8s.io/v1 resourceclaimtemplates``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_resource_claim_template(obj)

    def prepare_for_create(self, obj: Object) -> None:
        spec = _claim_spec(obj)
        if spec is not None:
            gates.drop_disabled_claim_spec_fields(spec, None)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        spec = _claim_spec(obj)
        if spec is not None:
            gates.drop_disabled_claim_spec_fields(spec, _claim_spec(old))

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_resource_claim_template(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_resource_claim_template(obj)
        errs.extend(validation.validate_resource_claim_template_update(obj, old))
        return errs


RESOURCE = resource.ResourceInfo(
    group="resource.k8s.io",
    version="v1",
    kind="ResourceClaimTemplate",
    plural="resourceclaimtemplates",
    namespaced=True,
    strategy=ResourceClaimTemplateStrategy(),
    return_deleted_object=True,
    table=tables.Table(columns=(tables.NAME_COLUMN, tables.AGE_COLUMN), row=name_age_row),
)
