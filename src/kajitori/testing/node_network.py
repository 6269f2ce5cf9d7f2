"""Node networks for tests of ``kajitori up --runtime oci``: a unique name and a free CIDR each.

``up``'s node network (decision 0031) puts a bridge, veths and namespaces
on the host, named after ``--cluster-name`` and addressed from
``--node-cidr``. Tests run side by side on one machine, so each asks
``up_args()`` for a random cluster name, a random ``172.31.X.0/24`` node
network and a random ``10.2XX.0.0/16`` pod network that no host route
overlaps (``up`` routes pod networks on the host), and checks with ``leftovers()`` that stopping the
cluster removed everything. ``skip_reason()`` says why ``up --runtime oci``
with a node network cannot run here.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence

from kajitori.kubelet.network import node_network

CNI_PATH = "/usr/lib/cni"


def skip_reason() -> str | None:
    """Why a node-network cluster cannot run here (not root, no runc/CNI/nft/ip), else None."""
    if os.geteuid() != 0:
        return "needs root: creates a bridge and network namespaces"
    missing = [name for name in ("ip", "nft", "runc") if shutil.which(name) is None]
    if missing:
        return f"missing binaries: {', '.join(missing)} (scripts/install-test-deps installs them)"
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.path.exists(f"{CNI_PATH}/{plugin}"):
            return f"CNI plugin {plugin} missing (Debian package containernetworking-plugins)"
    return None


def free_node_cidr() -> str:
    """A random 172.31.X.0/24 that overlaps no route of the host."""
    used = _host_routes()
    for _ in range(50):
        candidate = ipaddress.ip_network(f"172.31.{secrets.randbelow(254) + 1}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return str(candidate)
    raise RuntimeError("no free 172.31.X.0/24 on this host")


def free_cluster_cidr() -> str:
    """A random pod network 10.2XX.0.0/16 (not kind's 10.244) that no host route overlaps.

    ``up`` routes each node's podCIDR on the host, so two clusters must not share one.
    """
    used = _host_routes()
    for _ in range(50):
        second = 200 + secrets.randbelow(55)
        if second == 244:
            continue
        candidate = ipaddress.ip_network(f"10.{second}.0.0/16")
        if not any(candidate.overlaps(net) for net in used):
            return str(candidate)
    raise RuntimeError("no free 10.2XX.0.0/16 on this host")


def _host_routes() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every destination in the host's IPv4 routing tables, except default routes."""
    routes = subprocess.run(
        ["ip", "-4", "-o", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = []
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            word = line.split()[1]
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return [net for net in used if net.prefixlen > 0]


def cluster_name() -> str:
    return f"t{secrets.token_hex(4)}"


def up_args(name: str, node_cidr: str, cluster_cidr: str | None = None) -> tuple[str, ...]:
    """``up`` flags for a cluster of its own: name, node network and (random if not given) pods."""
    pods = cluster_cidr or free_cluster_cidr()
    return (f"--cluster-name={name}", f"--node-cidr={node_cidr}", f"--cluster-cidr={pods}")


def leftovers(
    name: str, node_names: Sequence[str], node_cidr: str, cluster_cidr: str | None = None
) -> list[str]:
    """What of cluster ``name``'s node network is still on the host (empty after a clean stop).

    With ``cluster_cidr``, also the host's routes into that pod network.
    """
    network = node_network.NodeNetwork(name, node_names, node_cidr=node_cidr)
    found = network.leftovers()
    if cluster_cidr:
        pods = ipaddress.ip_network(cluster_cidr)
        found += [f"route {net}" for net in _host_routes() if net.overlaps(pods)]
    return found
