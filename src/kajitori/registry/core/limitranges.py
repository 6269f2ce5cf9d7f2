"""LimitRanges in the API server (pkg/registry/core/limitrange upstream).

Upstream has no printer for LimitRanges, so ``kubectl get limits`` shows the
default NAME / CREATED AT table.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import limitranges as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]


class LimitRangeStrategy(strategies.Strategy):
    """Create/update rules for ``v1 limitranges``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_limit_range(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_limit_range(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_limit_range_update(obj, old)


STRATEGY = LimitRangeStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="LimitRange",
    plural="limitranges",
    namespaced=True,
    short_names=("limits",),
    strategy=STRATEGY,
)
