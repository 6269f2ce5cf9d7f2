"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take no new pods.

Upstream's plugins/nodeunschedulable: a pod that tolerates the
``node.kubernetes.io/unschedulable:NoSchedule`` taint may still go there.
"""

from __future__ import annotations

from typing import Any

from kajitori.scheduler import framework
from kajitori.scheduler.plugins import taint_toleration

REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        if not (node.node.get("spec") or {}).get("unschedulable"):
            return framework.SUCCESS
        tolerations = (pod.get("spec") or {}).get("tolerations") or ()
        if taint_toleration.tolerated(TAINT, tolerations):
            return framework.SUCCESS
        return framework.unschedulable(REASON, unresolvable=True)
