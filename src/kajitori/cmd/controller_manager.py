"""The controller manager process: a client for the API plus ``controllers.manager``.

Composition root for kube-controller-manager's equivalent. Two ways in:

* ``start_in_process(app, ca)`` — what ``kajitori up`` does once its API
  server is serving: clients call the server's ASGI app directly
  (``client.transport``) with certificates freshly issued from the cluster
  CA, so every request is authenticated, authorized and admitted exactly as
  over the network, without a socket or a TLS handshake. The shared
  informers read as ``system:kube-controller-manager``; each controller
  writes as its kube-system ServiceAccount (``namespace-controller``,
  ``generic-garbage-collector``), as upstream's
  ``--use-service-account-credentials`` arranges, so RBAC's bootstrap
  controller roles apply unchanged;
* ``run(kubeconfig_path, stop)`` — ``kajitori controller-manager``, a standalone
  controller manager talking HTTPS to an API server named by a kubeconfig;
  several of them elect one leader through the ``kube-controller-manager``
  Lease and only the leader's controllers run.

The certificates for the in-process path live only in memory: nothing else
needs them, and issuing one costs about a millisecond. (Service account
tokens will replace the per-controller certificates once they exist.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kajitori.auth import pki
from kajitori.client import kubeconfig, leaderelection, rest, transport
from kajitori.controllers import manager, tokens

# Upstream's controllers act as ServiceAccounts in kube-system.
CONTROLLER_NAMESPACE = "kube-system"
LEADER_ELECTION = leaderelection.Config(name=manager.COMPONENT)


def start_in_process(
    app: transport.ASGIApp,
    ca: pki.CertAndKey,
    *,
    controllers: Sequence[str] = manager.DEFAULT_CONTROLLERS,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    sign_legacy: tokens.LegacySigner | None = None,
) -> manager.ControllerManager:
    """Start the controllers against ``app`` in the background; stop with ``await stop(m)``.

    ``sign_legacy`` (the API server's service-account key) lets the tokens
    controller fill legacy token Secrets; the CA publisher publishes ``ca``.
    """
    options = _with_ca_options(options, ca_pem=ca.cert_pem, sign_legacy=sign_legacy)
    # The CSR signer signs with the cluster CA this process already holds (decision 0080).
    options.setdefault("csrsigning", {"ca": ca})

    def client_for(service_account: str) -> rest.Client:
        # "name" is a kube-system account; "namespace/name" one elsewhere
        # (the local-path provisioner's, as kind installs it).
        namespace, _, name = service_account.rpartition("/")
        credentials = pki.issue_service_account_cert(
            ca, namespace=namespace or CONTROLLER_NAMESPACE, name=name
        )
        return rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)

    own = pki.issue_controller_manager_cert(ca)
    client = rest.Client.in_process(app, client_cert_pem=own.cert_pem)
    controller_manager = manager.ControllerManager(
        client, client_for=client_for, controllers=controllers, options=options
    )
    controller_manager.start()
    return controller_manager


def _with_ca_options(
    options: Mapping[str, Mapping[str, Any]] | None,
    *,
    ca_pem: bytes,
    sign_legacy: tokens.LegacySigner | None,
) -> dict[str, Mapping[str, Any]]:
    merged: dict[str, Mapping[str, Any]] = dict(options or {})
    merged.setdefault("root-ca-cert-publisher", {"ca_pem": ca_pem})
    # The cluster CA signs the API server's serving certificate: its trust bundle.
    merged.setdefault(
        "kube-apiserver-serving-clustertrustbundle-publisher-controller", {"ca_pem": ca_pem}
    )
    if sign_legacy is not None:
        merged.setdefault("serviceaccount-token", {"ca_pem": ca_pem, "sign_legacy": sign_legacy})
    return merged


async def stop(controller_manager: manager.ControllerManager) -> None:
    """Stop the controllers, then close their client."""
    await controller_manager.stop()
    await controller_manager.client.aclose()


async def run(
    kubeconfig_path: Path | str,
    stop_event: asyncio.Event,
    *,
    controllers: Sequence[str] = manager.DEFAULT_CONTROLLERS,
    election: leaderelection.Config | None = LEADER_ELECTION,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> bool:
    """Run the controllers over HTTPS until ``stop_event`` is set.

    With ``election`` (upstream's --leader-elect, on by default) they run
    only while this process holds the ``kube-controller-manager`` Lease.
    ``options`` as ``start_in_process``'s (e.g. node IPAM's cluster CIDR).
    Returns False when leadership was lost (upstream then exits non-zero).
    """
    config = kubeconfig.load_kubeconfig(kubeconfig_path)
    client = rest.Client.from_kubeconfig(config)
    # Upstream's kube-controller-manager writes Events through an eventClient of its own.
    event_client = rest.Client.from_kubeconfig(config)
    options = {**(options or {}), "root-ca-cert-publisher": {"ca_pem": config.ca_pem or b""}}
    options.setdefault(
        "kube-apiserver-serving-clustertrustbundle-publisher-controller",
        {"ca_pem": config.ca_pem or b""},
    )

    async def lead() -> None:
        controller_manager = manager.ControllerManager(
            client, controllers=controllers, options=options, event_client=event_client
        )
        controller_manager.start()
        try:
            await stop_event.wait()
        finally:
            await controller_manager.stop()

    try:
        return await leaderelection.run_elected(client, election, lead, stop_event)
    finally:
        await event_client.aclose()
        await client.aclose()
