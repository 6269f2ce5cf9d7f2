"""A pod's QoS class, as upstream's pkg/apis/core/helper/qos computes it.

Owns ``compute_pod_qos`` (ComputePodQOS: Guaranteed, Burstable or
BestEffort from the cpu and memory requests and limits of the containers,
or of the pod when it sets pod-level resources) and ``get_pod_qos``
(GetPodQOS: the class the status records, computed only when it records
none). The API layer needs it to refuse a resize that would change the
class (``validation/pod_resize.py``), and the pod strategy records it in
``status.qosClass`` at create.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import validation as common

Object = dict[str, Any]

QOS_RESOURCES = ("cpu", "memory")


def _positive(resources: Any) -> dict[str, Any]:
    """The cpu and memory amounts above zero of a requests or limits map."""
    amounts: dict[str, Any] = {}
    for name, value in (resources if isinstance(resources, dict) else {}).items():
        amount = common.quantity_value(value)
        if name in QOS_RESOURCES and amount is not None and amount > 0:
            amounts[name] = amount
    return amounts


def _add(total: dict[str, Any], amounts: dict[str, Any]) -> None:
    for name, amount in amounts.items():
        total[name] = total.get(name, 0) + amount


def compute_pod_qos(pod: Object) -> str:
    """ComputePodQOS: the class the pod's spec asks for, whatever its status says."""
    spec = pod.get("spec") or {}
    pod_level = spec.get("resources") or {}
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    if pod_level.get("requests") or pod_level.get("limits"):
        # Pod-level resources decide alone when they are set.
        requests = _positive(pod_level.get("requests"))
        limits = _positive(pod_level.get("limits"))
        guaranteed = set(limits) >= set(QOS_RESOURCES)
    else:
        for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
            resources = (container or {}).get("resources") or {}
            _add(requests, _positive(resources.get("requests")))
            container_limits = _positive(resources.get("limits"))
            _add(limits, container_limits)
            if not set(container_limits) >= set(QOS_RESOURCES):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and len(requests) == len(limits):
        if all(limits.get(name) == amount for name, amount in requests.items()):
            return "Guaranteed"
    return "Burstable"


def get_pod_qos(pod: Object) -> str:
    """GetPodQOS: ``status.qosClass`` when set, otherwise computed from the spec."""
    recorded = (pod.get("status") or {}).get("qosClass")
    return recorded if isinstance(recorded, str) and recorded else compute_pod_qos(pod)
