"""``kajitori up``'s cluster network around the API server: node network, then cluster DNS.

Composition root for decision 0031, in the order ``up`` needs it:

* ``prepare(cluster_name, node_names, ...)`` — before the API server starts:
  the host bridge and one namespace per node (``kubelet/network/node_network.py``),
  so the API server can also listen on the bridge address;
* ``start_dns(network, app, ca)`` — once it serves: the cluster DNS (``dns/``)
  on ``<bridge address>:53`` (UDP and TCP), reading as ServiceAccount
  ``kube-system/coredns`` (ClusterRole ``system:coredns``, as kubeadm's
  CoreDNS). The API server publishes ``kube-system/kube-dns`` (10.96.0.10)
  with endpoints at that address, so each node's kube-proxy DNATs pods'
  queries to it;
* ``close(network)`` — after everything else stopped: DNS, then the bridge,
  veths, namespaces (with their nftables tables and routes).

The kubelets, their runtimes and the per-node kube-proxies are ``cmd/kubelet.py``'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from kajitori.auth import pki
from kajitori.client import rest, transport
from kajitori.dns import server as dns_server
from kajitori.kubelet.network import node_network

DNS_PORT = 53
DNS_SERVICE_ACCOUNT = ("kube-system", "coredns")


@dataclasses.dataclass
class ClusterNetwork:
    """The node network of one ``up``, and the DNS server on its bridge once started."""

    network: node_network.NodeNetwork
    dns: dns_server.ClusterDNS | None = None

    @property
    def address(self) -> str:
        """The host's address on the bridge: where pods reach the API server and DNS."""
        return self.network.gateway


async def prepare(
    cluster_name: str,
    node_names: Sequence[str],
    *,
    node_cidr: str = node_network.DEFAULT_NODE_CIDR,
    cluster_cidr: str,
) -> ClusterNetwork:
    """Build the node network (replacing a crashed run's leftovers of the same cluster)."""
    network = node_network.NodeNetwork(
        cluster_name, node_names, node_cidr=node_cidr, cluster_cidr=cluster_cidr
    )
    await network.setup()
    return ClusterNetwork(network)


async def start_dns(
    cluster: ClusterNetwork, app: transport.ASGIApp, ca: pki.CertAndKey, *, port: int = DNS_PORT
) -> dns_server.ClusterDNS:
    """Serve cluster DNS on the bridge address, reading the API as ``kube-system/coredns``."""
    namespace, name = DNS_SERVICE_ACCOUNT
    credentials = pki.issue_service_account_cert(ca, namespace=namespace, name=name)
    client = rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)
    server = dns_server.ClusterDNS(client, host=cluster.address, port=port)
    await server.start()
    cluster.dns = server
    return server


async def close(cluster: ClusterNetwork) -> None:
    """Stop DNS and remove the whole node network."""
    if cluster.dns is not None:
        await cluster.dns.stop()
        await cluster.dns.client.aclose()
        cluster.dns = None
    await cluster.network.teardown()
