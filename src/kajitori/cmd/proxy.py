"""The proxy process: a client for the API plus ``proxy.proxier.Proxier`` (kube-proxy's equivalent).

* ``start_in_process(app, ca, ...)`` — in the same process as the API
  server, as ``system:kube-proxy`` (bound by upstream's bootstrap RBAC to
  ``system:node-proxier``: list/watch Services, Endpoints, EndpointSlices);
* ``run(kubeconfig_path, stop, ...)`` — ``kajitori proxy --kubeconfig K``
  over HTTPS until ``stop`` is set; the table is removed on the way out.

Needs root and Debian's ``nft``; ``netns`` programs a named network
namespace instead of the host's (a node namespace, see decision 0027).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kajitori.auth import pki
from kajitori.client import kubeconfig, rest, transport
from kajitori.proxy import nftables, proxier

PROXY_USER = "system:kube-proxy"


def start_in_process(
    app: transport.ASGIApp,
    ca: pki.CertAndKey,
    *,
    netns: str | None = None,
    cluster_cidr: str = "",
    node_name: str = "",
) -> proxier.Proxier:
    """Start a proxy against ``app`` in the background; stop with ``await stop(p)``."""
    credentials = pki.issue_client_cert(ca, user=PROXY_USER, groups=())
    client = rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)
    component = proxier.Proxier(
        client,
        nft=nftables.Nftables(netns=netns),
        cluster_cidr=cluster_cidr,
        node_name=node_name,
    )
    component.start()
    return component


async def stop(component: proxier.Proxier) -> None:
    """Stop the proxy (its table is removed), then close its client."""
    await component.stop()
    await component.client.aclose()


async def run(
    kubeconfig_path: Path | str,
    stop_event: asyncio.Event,
    *,
    netns: str | None = None,
    cluster_cidr: str = "",
    node_name: str = "",
) -> None:
    """Proxy over HTTPS until ``stop_event`` is set."""
    if not nftables.available():
        raise OSError("nft not found: install Debian's nftables package")
    client = rest.Client.from_kubeconfig(kubeconfig.load_kubeconfig(kubeconfig_path))
    component = proxier.Proxier(
        client,
        nft=nftables.Nftables(netns=netns),
        cluster_cidr=cluster_cidr,
        node_name=node_name,
    )
    component.start()
    try:
        await stop_event.wait()
    finally:
        await stop(component)
