"""Nodes in the API server: strategy, nodes/status, the spec.unschedulable selector, table.

Owns: nodes are cluster-scoped and, unlike most kinds, may carry status on
create (kubelets register with their status); the main endpoint keeps the
stored status and the status endpoint keeps the stored spec. The table is
``kubectl get nodes``: STATUS from the Ready condition plus
SchedulingDisabled, ROLES from node-role labels. Mirrors
pkg/registry/core/node/strategy.go and printNode.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import nodes as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
LEGACY_ROLE_LABEL = "kubernetes.io/role"


class NodeStrategy(strategies.Strategy):
    """Create/update rules of ``nodes`` (status allowed on create)."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_node(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_node(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_node_update(obj, old)


class NodeStatusStrategy(strategies.StatusStrategy):
    """``nodes/status``: the kubelet's heartbeat; the spec stays as stored."""


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Status", description="The status of the node"),
    tables.Column("Roles", description="The roles of the node"),
    tables.AGE_COLUMN,
    tables.Column("Version", description=_doc("NodeSystemInfo", "kubeletVersion")),
    tables.Column("Internal-IP", priority=1, description=_doc("NodeStatus", "addresses")),
    tables.Column("External-IP", priority=1, description=_doc("NodeStatus", "addresses")),
    tables.Column("OS-Image", priority=1, description=_doc("NodeSystemInfo", "osImage")),
    tables.Column(
        "Kernel-Version", priority=1, description=_doc("NodeSystemInfo", "kernelVersion")
    ),
    tables.Column(
        "Container-Runtime",
        priority=1,
        description=_doc("NodeSystemInfo", "containerRuntimeVersion"),
    ),
)


def node_roles(node: Object) -> list[str]:
    """findNodeRoles: node-role.kubernetes.io/<role> label keys and kubernetes.io/role values."""
    roles: set[str] = set()
    for key, value in ((node.get("metadata") or {}).get("labels") or {}).items():
        if key.startswith(ROLE_LABEL_PREFIX) and key[len(ROLE_LABEL_PREFIX) :]:
            roles.add(key[len(ROLE_LABEL_PREFIX) :])
        elif key == LEGACY_ROLE_LABEL and value:
            roles.add(value)
    return sorted(roles)


def node_status(node: Object) -> str:
    status = node.get("status") or {}
    ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
    words = []
    if ready:
        words.append("Ready" if ready[-1].get("status") == "True" else "NotReady")
    else:
        words.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _address(node: Object, kind: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or ():
        if address.get("type") == kind:
            return str(address.get("address", ""))
    return "<none>"


def node_row(node: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [
        tables.name(node),
        node_status(node),
        ",".join(node_roles(node)) or "<none>",
        tables.age(node, now),
        info.get("kubeletVersion", ""),
        _address(node, "InternalIP"),
        _address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _unschedulable(node: Object) -> str:
    return "true" if (node.get("spec") or {}).get("unschedulable") else "false"


STRATEGY = NodeStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Node",
    plural="nodes",
    namespaced=False,
    short_names=("no",),
    strategy=STRATEGY,
    status=NodeStatusStrategy(STRATEGY),
    selectable_fields={"spec.unschedulable": _unschedulable},
    table=tables.Table(columns=COLUMNS, row=node_row),
)
