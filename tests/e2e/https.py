"""A raw HTTPS client for the end-to-end tests that speak to the API server without kubectl.

It reads the kubeconfig a cluster wrote with the client's own reader
(``kajitori.client.kubeconfig``), so the URL, the CA it trusts and the
certificate it presents are the ones kubectl and our components use.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from kajitori.client.kubeconfig import load_kubeconfig


def https_client(kubeconfig: Path, *, timeout: float = 30) -> httpx.Client:
    """An httpx client that trusts the cluster CA and presents the kubeconfig's client cert."""
    config = load_kubeconfig(kubeconfig)
    return httpx.Client(base_url=config.server, verify=config.ssl_context(), timeout=timeout)
