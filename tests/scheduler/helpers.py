"""Builders for the pods and nodes the scheduler tests use (plain dicts, as the API returns)."""

from __future__ import annotations

import itertools
from typing import Any

from kajitori.scheduler import framework

Object = dict[str, Any]
_uids = itertools.count()


def make_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: Object | None = None,
    taints: list[Object] | None = None,
    unschedulable: bool = False,
    extra: Object | None = None,
) -> Object:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"allocatable": allocatable, "capacity": allocatable},
    }


def make_pod(
    name: str = "p",
    *,
    namespace: str = "default",
    requests: Object | None = None,
    labels: Object | None = None,
    node: str = "",
    priority: int = 0,
    **spec: Any,
) -> Object:
    container: Object = {"name": "c", "image": "i"}
    if requests:
        container["resources"] = {"requests": requests}
    full_spec: Object = {"containers": [container], "priority": priority, **spec}
    if node:
        full_spec["nodeName"] = node
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{next(_uids)}",
            "labels": labels or {},
        },
        "spec": full_spec,
        "status": {"phase": "Pending"},
    }


def info(node: Object, *pods: Object) -> framework.NodeInfo:
    node_info = framework.NodeInfo(node)
    for pod in pods:
        node_info.add_pod(pod)
    return node_info
