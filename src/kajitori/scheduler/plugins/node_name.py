"""NodeName: a pod that names a node in ``spec.nodeName`` fits only that node.

Upstream's plugins/nodename. The scheduler only sees unassigned pods, so
this matters for what-if checks (preemption) and keeps parity with upstream.
"""

from __future__ import annotations

from typing import Any

from kajitori.scheduler import framework

REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"

    def pre_filter(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """Skip Filter for a pod that names no node (every pod the scheduler places)."""
        if not (pod.get("spec") or {}).get("nodeName"):
            return framework.Status(framework.Code.SKIP)
        return framework.SUCCESS

    def filter_many(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> list[bool]:
        """Whether each node passes ``filter``."""
        wanted = (pod.get("spec") or {}).get("nodeName")
        return [not wanted or wanted == n.name for n in nodes]

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        wanted = (pod.get("spec") or {}).get("nodeName")
        if not wanted or wanted == node.name:
            return framework.SUCCESS
        return framework.unschedulable(REASON, unresolvable=True)
