"""The kubelet process: simulated nodes talking to an API server.

Composition root for ``kubelet.KubeletHost``. Two ways in:

* ``start_in_process(app, ca, nodes=N)`` — what ``kajitori up --nodes N
  --runtime simulated`` does: N nodes named as kind names its workers
  (``kajitori-worker``, ``kajitori-worker2``, ...), one host, calling the API
  server's ASGI app directly. The host reads nodes and pods as
  ``system:kajitori:simulated-kubelets``; each node writes as
  ``system:node:<name>``, so the Node authorizer and NodeRestriction hold;
* ``run(kubeconfig_path, node_name, stop_event)`` — ``kajitori kubelet``:
  one node over HTTPS, as the kubeconfig's user.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

from kajitori.auth import pki
from kajitori.client import kubeconfig, rest, transport
from kajitori.kubelet import kubelet, node_status
from kajitori.kubelet.runtimes import interface, simulated
from kajitori.kubelet.runtimes.oci import runtime as oci_runtime

RUNTIMES = ("simulated", "oci")
# Where the oci runtime keeps pods, containers and their logs (as /var/lib/kubelet).
OCI_ROOT = Path("/var/lib/kajitori/oci")
CLUSTER_NAME = "kajitori"
# kind's node network is 172.18.0.0/16 and its first node is .2.
NODE_NETWORK = ipaddress.ip_network("172.18.0.0/16")
# Containers of simulated pods spend this long in ContainerCreating, as real ones do briefly.
DEFAULT_START_SECONDS = 0.5


def worker_name(index: int) -> str:
    """kind's worker names: ``kajitori-worker``, ``kajitori-worker2``, ..."""
    return f"{CLUSTER_NAME}-worker" + (str(index + 1) if index else "")


def node_configs(count: int) -> list[node_status.NodeConfig]:
    """``count`` simulated workers with InternalIPs counted up from 172.18.0.2."""
    base = int(NODE_NETWORK.network_address) + 2
    return [
        node_status.NodeConfig(name=worker_name(i), internal_ip=str(ipaddress.ip_address(base + i)))
        for i in range(count)
    ]


def new_runtime(name: str, *, start_seconds: float = DEFAULT_START_SECONDS) -> interface.Runtime:
    if name == "oci":
        # Real containers under runc (root only); pods are not networked yet (loopback only).
        return oci_runtime.new_runtime(OCI_ROOT)
    if name != "simulated":
        raise ValueError(f"unknown runtime {name!r} (known: {', '.join(RUNTIMES)})")
    return simulated.SimulatedRuntime(start_delay=start_seconds)


async def start_in_process(
    app: transport.ASGIApp,
    ca: pki.CertAndKey,
    *,
    nodes: int,
    runtime: str = "simulated",
    lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
) -> kubelet.KubeletHost:
    """Register ``nodes`` simulated nodes and run their kubelets in the background."""
    credentials = pki.issue_simulated_kubelet_cert(ca)
    client = rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)
    configs = node_configs(nodes)
    node_certs = pki.issue_node_certs(ca, [config.name for config in configs])
    host = kubelet.KubeletHost(
        client,
        configs,
        new_runtime(runtime),
        lease_duration=lease_duration,
        client_for=lambda name: client.as_identity(node_certs[name].cert_pem),
    )
    await host.start()
    return host


async def stop(host: kubelet.KubeletHost) -> None:
    await host.stop()
    await host.client.aclose()


async def run(
    kubeconfig_path: Path | str,
    node_name: str,
    stop_event: asyncio.Event,
    *,
    runtime: str = "simulated",
    internal_ip: str = "172.18.0.2",
    lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
) -> None:
    """Run one kubelet for ``node_name`` over HTTPS until ``stop_event`` is set."""
    client = rest.Client.from_kubeconfig(kubeconfig.load_kubeconfig(kubeconfig_path))
    config = node_status.NodeConfig(name=node_name, internal_ip=internal_ip)
    host = kubelet.KubeletHost(
        client, [config], new_runtime(runtime), lease_duration=lease_duration
    )
    try:
        await host.start()
        await stop_event.wait()
    finally:
        await stop(host)
