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

    def pre_filter(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip Filter when no node is cordoned: it would pass every node."""
        if not framework.any_cordoned(nodes):
            return framework.Status(framework.Code.SKIP)
        return framework.SUCCESS

    def filter_many(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> list[bool]:
        """Whether each node passes ``filter``: schedulable nodes without a call."""
        check, success = self.filter, framework.SUCCESS
        return [not n.unschedulable or check(state, pod, n) is success for n in nodes]

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        if not node.unschedulable:
            return framework.SUCCESS
        tolerations = (pod.get("spec") or {}).get("tolerations") or ()
        if taint_toleration.tolerated(TAINT, tolerations):
            return framework.SUCCESS
        return framework.unschedulable(REASON, unresolvable=True)
