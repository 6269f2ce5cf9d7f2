"""The scheduler process: a client for the API plus ``scheduler.scheduler.Scheduler``.

Composition root for kube-scheduler's equivalent, shaped like
``cmd/controller_manager.py``:

* ``start_in_process(app, ca)`` — what ``kajitori up`` does once its API
  server is serving: the scheduler calls the server's ASGI app directly
  with an in-memory client certificate for ``system:kube-scheduler``, the
  user upstream's bootstrap RBAC binds to the ``system:kube-scheduler``
  ClusterRole (pods/binding, pods/status, events, reads of nodes and pods);
* ``run(kubeconfig_path, stop)`` — ``kajitori scheduler --kubeconfig K``,
  a standalone scheduler talking HTTPS to the API server K names; several
  elect one leader through the ``kube-scheduler`` Lease. With ``--config``
  (a ``KubeSchedulerConfiguration``, ``scheduler/config.py``) its profile's
  ``schedulerName`` says which pods it takes, so a second scheduler can run
  beside the cluster's default one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kajitori.auth import pki
from kajitori.client import kubeconfig, leaderelection, rest, transport
from kajitori.scheduler import scheduler

SCHEDULER_USER = "system:kube-scheduler"
LEADER_ELECTION = leaderelection.Config(name="kube-scheduler")


def start_in_process(app: transport.ASGIApp, ca: pki.CertAndKey) -> scheduler.Scheduler:
    """Start the scheduler against ``app`` in the background; stop with ``await stop(s)``."""
    credentials = pki.issue_client_cert(ca, user=SCHEDULER_USER, groups=())
    client = rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)
    component = scheduler.Scheduler(client)
    component.start()
    return component


async def stop(component: scheduler.Scheduler) -> None:
    """Stop scheduling, then close the client."""
    await component.stop()
    await component.client.aclose()


async def run(
    kubeconfig_path: Path | str,
    stop_event: asyncio.Event,
    *,
    election: leaderelection.Config | None = LEADER_ELECTION,
    scheduler_name: str = scheduler.COMPONENT,
) -> bool:
    """Schedule pods naming ``scheduler_name`` over HTTPS until ``stop_event`` is set.

    While holding the Lease, when ``election`` is given. Returns False when
    leadership was lost (upstream then exits non-zero).
    """
    config = kubeconfig.load_kubeconfig(kubeconfig_path)
    client = rest.Client.from_kubeconfig(config)
    # Upstream's kube-scheduler writes Events through an eventClient of its own,
    # so they never queue behind binds in the main client's requests in flight.
    event_client = rest.Client.from_kubeconfig(config)

    async def lead() -> None:
        component = scheduler.Scheduler(
            client, event_client=event_client, scheduler_name=scheduler_name
        )
        component.start()
        try:
            await stop_event.wait()
        finally:
            await component.stop()

    try:
        return await leaderelection.run_elected(client, election, lead, stop_event)
    finally:
        await event_client.aclose()
        await client.aclose()
