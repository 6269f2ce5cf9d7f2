"""NodePorts: a pod's host ports must be free on the node.

Upstream's plugins/nodeports: ports conflict on the same protocol and port
when either host IP is the wildcard or both are equal.
"""

from __future__ import annotations

from typing import Any

from kajitori.scheduler import framework

REASON = "node(s) didn't have free ports for the requested pod ports"


class NodePorts:
    name = "NodePorts"

    def filter(
        self, state: framework.CycleState, pod: dict[str, Any], node: framework.NodeInfo
    ) -> framework.Status:
        for wanted in framework.host_ports(pod):
            if any(wanted.conflicts(used) for used in node.used_ports):
                return framework.unschedulable(REASON)
        return framework.SUCCESS
