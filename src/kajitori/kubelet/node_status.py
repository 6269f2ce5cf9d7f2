"""A kubelet's Node and Lease objects, as upstream's kubelet registers and renews them.

Mirrors pkg/kubelet/kubelet_node_status.go (``initialNode``, the
``setNodeStatus`` setters in pkg/kubelet/nodestatus/setters.go) and
pkg/kubelet/nodelease: capacity and allocatable (cpu, memory, pods 110,
ephemeral-storage), the well-known labels, addresses, ``nodeInfo``, the four
conditions with upstream's reasons and messages, and a Lease in
``kube-node-lease`` owned by the Node.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from kajitori.machinery import times

Object = dict[str, Any]

KUBELET_VERSION = "v1.37.0"
NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_LEASE_DURATION = 40
# Annotation the simulated kubelet obeys: "true" stops it (no heartbeats, no pod syncs).
STOPPED_ANNOTATION = "kajitori.io/simulate-stopped"

# (type, reason, message) while healthy, as upstream's setters write them.
_HEALTHY_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "KubeletReady", "kubelet is posting ready status"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class NodeConfig:
    """What one (simulated) machine looks like."""

    name: str
    internal_ip: str
    cpu: str = "8"
    memory: str = "32Gi"
    pods: str = "110"
    ephemeral_storage: str = "100Gi"
    arch: str = "amd64"
    runtime_version: str = "simulated://1.0.0"
    os_image: str = "kajitori simulated node"
    # Simulated nodes carry the ``type: kajitori-simulated`` label; real ones do not.
    simulated: bool = True
    # Where the kubelet API listens (status.daemonEndpoints); 10250 as upstream.
    kubelet_port: int = 10250


def this_machine(
    name: str, internal_ip: str, *, runtime_version: str, kubelet_port: int = 10250
) -> NodeConfig:
    """A real node's config: this machine's CPUs, memory, disk and OS, as cAdvisor reports them."""
    return NodeConfig(
        name=name,
        internal_ip=internal_ip,
        cpu=str(os.cpu_count() or 1),
        memory=f"{_mem_total_kib()}Ki",
        ephemeral_storage=f"{shutil.disk_usage('/').total // 1024}Ki",
        arch=_GO_ARCH.get(platform.machine(), platform.machine()),
        runtime_version=runtime_version,
        os_image=_os_image(),
        simulated=False,
        kubelet_port=kubelet_port,
    )


# Go's GOARCH names for what uname(2) says.
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _os_image() -> str:
    """PRETTY_NAME of /etc/os-release, as the kubelet reports osImage."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def node_conditions(old: list[Object], now: datetime.datetime) -> list[Object]:
    """Healthy conditions; a condition keeps its transition time while its status holds."""
    previous = {c.get("type"): c for c in old}
    stamp = times.format_time(now)
    conditions = []
    for kind, reason, message in _HEALTHY_CONDITIONS:
        status = "True" if kind == "Ready" else "False"
        before = previous.get(kind) or {}
        same = before.get("status") == status
        conditions.append(
            {
                "type": kind,
                "status": status,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": before.get("lastTransitionTime", stamp) if same else stamp,
                "reason": reason,
                "message": message,
            }
        )
    return conditions


def node_status(config: NodeConfig, *, old: Object, now: datetime.datetime) -> Object:
    resources = {
        "cpu": config.cpu,
        "memory": config.memory,
        "pods": config.pods,
        "ephemeral-storage": config.ephemeral_storage,
    }
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": node_conditions(list(old.get("conditions") or ()), now),
        "addresses": [
            {"type": "InternalIP", "address": config.internal_ip},
            {"type": "Hostname", "address": config.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": config.os_image,
            "containerRuntimeVersion": config.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": config.arch,
        },
    }


def initial_node(config: NodeConfig, now: datetime.datetime) -> Object:
    """The Node a kubelet registers (spec.podCIDR comes later, from node IPAM)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.name,
            "labels": {
                "kubernetes.io/hostname": config.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": config.arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": config.arch,
            }
            | ({"type": "kajitori-simulated"} if config.simulated else {}),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": node_status(config, old={}, now=now),
    }


def node_lease(node: Object, *, duration: int, now: datetime.datetime) -> Object:
    """The node's Lease, owned by the Node so that it goes when the Node does."""
    meta = node["metadata"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": meta["name"],
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": {
            "holderIdentity": meta["name"],
            "leaseDurationSeconds": duration,
            "renewTime": times.format_micro_time(now),
        },
    }


def is_stopped(node: Object) -> bool:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return annotations.get(STOPPED_ANNOTATION) == "true"
