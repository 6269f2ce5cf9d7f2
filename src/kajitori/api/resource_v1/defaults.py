"""Defaulting for resource.k8s.io/v1 objects (upstream: pkg/apis/resource/v1/defaults.go).

A request asked with ``exactly`` or as a ``firstAvailable`` alternative gets
allocationMode ExactCount and, in that mode, count 1; tolerations get
operator Equal (also in an allocation's results); a device taint without
``timeAdded`` gets the current second. In place and idempotent.
"""

from __future__ import annotations

import datetime
from typing import Any

Object = dict[str, Any]

EXACT_COUNT = "ExactCount"


def _dicts(value: Any) -> list[Object]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _set_defaults_tolerations(tolerations: Any) -> None:
    for toleration in _dicts(tolerations):
        if not toleration.get("operator"):
            toleration["operator"] = "Equal"


def set_defaults_request_shape(request: Object) -> None:
    """SetDefaults_ExactDeviceRequest and SetDefaults_DeviceSubRequest (the same rule)."""
    if not request.get("allocationMode"):
        request["allocationMode"] = EXACT_COUNT
    if request["allocationMode"] == EXACT_COUNT and not request.get("count"):
        request["count"] = 1
    _set_defaults_tolerations(request.get("tolerations"))


def set_defaults_resource_claim_spec(spec: Object) -> None:
    for request in _dicts(_dict(spec.get("devices")).get("requests")):
        exactly = request.get("exactly")
        if isinstance(exactly, dict):
            set_defaults_request_shape(exactly)
        for sub_request in _dicts(request.get("firstAvailable")):
            set_defaults_request_shape(sub_request)


def set_defaults_resource_claim(obj: Object) -> None:
    set_defaults_resource_claim_spec(_dict(obj.get("spec")))
    allocation = _dict(_dict(obj.get("status")).get("allocation"))
    for result in _dicts(_dict(allocation.get("devices")).get("results")):
        _set_defaults_tolerations(result.get("tolerations"))


def set_defaults_resource_claim_template(obj: Object) -> None:
    set_defaults_resource_claim_spec(_dict(_dict(obj.get("spec")).get("spec")))


def _now() -> str:
    # Upstream truncates to the second, which is also all RFC 3339 keeps here.
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_defaults_device_taint(taint: Object) -> None:
    if taint.get("timeAdded") is None:
        taint["timeAdded"] = _now()


def set_defaults_resource_slice(obj: Object) -> None:
    for device in _dicts(_dict(obj.get("spec")).get("devices")):
        for taint in _dicts(device.get("taints")):
            set_defaults_device_taint(taint)


def set_defaults_device_taint_rule(obj: Object) -> None:
    taint = _dict(obj.get("spec")).get("taint")
    if isinstance(taint, dict):
        set_defaults_device_taint(taint)
