"""DeviceTaintRules in the API server (upstream: pkg/registry/resource/devicetaintrule).

Served because DRADeviceTaintRules is GA and on by default in 1.37. Owns:
cluster scope; a generation that starts at 1 and counts spec changes; the
taint's ``timeAdded`` defaulted; ``status`` (conditions) written only
through ``devicetaintrules/status``; DELETE answering with the object.
Upstream's printers have no handler for this kind, so ``kubectl get`` shows
the default NAME and CREATED AT.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.resource_v1 import defaults, taints
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]


class DeviceTaintRuleStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``resource.k8s.io/v1 devicetaintrules``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_device_taint_rule(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return taints.validate_device_taint_rule(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return taints.validate_device_taint_rule_update(obj, old)


class DeviceTaintRuleStatusStrategy(strategies.StatusStrategy):
    """``devicetaintrules/status``: the eviction controller reports progress here."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return taints.validate_device_taint_rule_status_update(obj, old)


STRATEGY = DeviceTaintRuleStrategy()

RESOURCE = resource.ResourceInfo(
    group="resource.k8s.io",
    version="v1",
    kind="DeviceTaintRule",
    plural="devicetaintrules",
    namespaced=False,
    strategy=STRATEGY,
    status=DeviceTaintRuleStatusStrategy(STRATEGY),
    tracks_generation=True,
    return_deleted_object=True,
)
