"""NodePorts: a pod's host ports must be free on the node.

Upstream's plugins/nodeports: ports conflict on the same protocol and port
when either host IP is the wildcard or both are equal.
"""

from __future__ import annotations

from typing import Any

from kajitori.scheduler import framework

REASON = "node(s) didn't have free ports for the requested pod ports"
_STATE_KEY = "NodePorts.ports"


class NodePorts:
    name = "NodePorts"

    def pre_filter(
        self, state: framework.CycleState, pod: dict[str, Any], nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        """The pod's host ports, once; without any, Filter is skipped (as upstream)."""
        ports = framework.host_ports(pod)
        if not ports:
            return framework.Status(framework.Code.SKIP)
        state[_STATE_KEY] = ports
        return framework.SUCCESS

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        ports = state.get(_STATE_KEY)
        for wanted in framework.host_ports(pod) if ports is None else ports:
            if any(wanted.conflicts(used) for used in node.used_ports):
                return framework.unschedulable(REASON)
        return framework.SUCCESS
