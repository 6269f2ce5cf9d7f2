"""The controller manager: shared informers plus the enabled controllers, started and stopped together.

Owns the lifecycle upstream's kube-controller-manager gives its controllers:
one ``InformerFactory`` shared by all of them and one ``EventBroadcaster``
writing every controller's Events (each through a recorder naming that
controller, ``EVENT_SOURCES``, as upstream's controllers name themselves),
each controller constructed with ``(client=, informers=, recorder=)`` (which
registers its informer handlers), then the informers started and each
controller's ``run(workers)`` spawned as a task. Like upstream with
``--use-service-account-credentials``, informers read as the manager itself
while each controller writes as its own kube-system ServiceAccount, so RBAC
grants each only its controller role.

``start`` returns at once: informers list and controllers wait for their
caches in the background, so starting the manager never delays a caller
such as ``kajitori up`` announcing it is ready. ``stop`` shuts the work
queues down (workers finish the key in hand), then stops the informers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kajitori.client import events, informer, rest
from kajitori.controllers import (
    clustertrustbundle_publisher,
    cronjob,
    csrsigning,
    daemonset,
    deployment,
    disruption,
    endpoints,
    endpointslice,
    garbage_collector,
    horizontal_pod_autoscaler,
    job,
    namespace,
    node_lifecycle,
    nodeipam,
    podcertificaterequest_cleaner,
    podgc,
    replicaset,
    resourceclaim,
    resourcequota,
    root_ca_publisher,
    serviceaccounts,
    servicecidrs,
    statefulset,
    storage_version_migrator,
    tokens,
    ttl_after_finished,
)
from kajitori.controllers.volume import (
    local_path_provisioner,
    pv_binder,
    pv_protection,
    pvc_protection,
)

log = logging.getLogger(__name__)

COMPONENT = "kube-controller-manager"
# How long ``stop`` lets workers finish the key in hand before cancelling them.
STOP_GRACE = 5.0


class Controller(Protocol):
    # Read-only: controllers declare their name as a class constant (ClassVar).
    @property
    def name(self) -> str: ...

    async def run(self, workers: int) -> None:
        """Work until ``shut_down``; may first wait for informers to sync."""

    def shut_down(self) -> None:
        """Stop handing out keys; ``run`` returns once workers finish the key in hand."""


ControllerFactory = Callable[..., Controller]
ClientFor = Callable[[str], rest.Client]


@dataclasses.dataclass(frozen=True, slots=True)
class ControllerSpec:
    """How to build one controller, and the kube-system ServiceAccount it acts as upstream."""

    factory: ControllerFactory
    workers: int
    service_account: str


# Worker counts are below upstream's (namespace 10, garbage collector 20): a
# worker here is a coroutine waiting on the API, not a thread.
CONTROLLERS: dict[str, ControllerSpec] = {
    "namespace": ControllerSpec(namespace.NamespaceController, 2, "namespace-controller"),
    "garbagecollector": ControllerSpec(
        garbage_collector.GarbageCollector, 5, "generic-garbage-collector"
    ),
    # Upstream: --concurrent-replicaset-syncs 5.
    "replicaset": ControllerSpec(replicaset.ReplicaSetController, 3, "replicaset-controller"),
    # Upstream: --concurrent-deployment-syncs 5.
    "deployment": ControllerSpec(deployment.DeploymentController, 3, "deployment-controller"),
    # Upstream: --concurrent-endpoint-syncs and --concurrent-service-endpoint-syncs 5.
    "endpoint": ControllerSpec(endpoints.EndpointsController, 3, "endpoint-controller"),
    "endpointslice": ControllerSpec(
        endpointslice.EndpointSliceController, 3, "endpointslice-controller"
    ),
    "disruption": ControllerSpec(disruption.DisruptionController, 2, "disruption-controller"),
    # Upstream: --concurrent-daemonset-syncs 2.
    "daemonset": ControllerSpec(daemonset.DaemonSetController, 2, "daemon-set-controller"),
    # Upstream: --concurrent-statefulset-syncs 5.
    "statefulset": ControllerSpec(statefulset.StatefulSetController, 3, "statefulset-controller"),
    # Upstream runs node IPAM and node lifecycle as the node-controller ServiceAccount.
    "nodeipam": ControllerSpec(nodeipam.NodeIpamController, 4, "node-controller"),
    "nodelifecycle": ControllerSpec(node_lifecycle.NodeLifecycleController, 2, "node-controller"),
    "serviceaccount": ControllerSpec(
        serviceaccounts.ServiceAccountsController, 1, "service-account-controller"
    ),
    # Upstream's tokens controller acts with the manager's own credentials ("").
    # It and the CA publisher take ca_pem (and sign_legacy) through ``options``.
    "serviceaccount-token": ControllerSpec(tokens.TokensController, 1, ""),
    "root-ca-cert-publisher": ControllerSpec(
        root_ca_publisher.RootCACertPublisher, 1, "root-ca-cert-publisher"
    ),
    # Upstream's csrsigning runs as certificate-controller; it takes the CA pair
    # (``ca``) through ``options`` and idles without one (decision 0080).
    "csrsigning": ControllerSpec(csrsigning.CSRSigningController, 1, "certificate-controller"),
    # Upstream: --concurrent-job-syncs, --concurrent-cron-job-syncs and
    # --concurrent-ttl-after-finished-syncs, 5 each.
    "job": ControllerSpec(job.JobController, 3, "job-controller"),
    "cronjob": ControllerSpec(cronjob.CronJobController, 2, "cronjob-controller"),
    "ttl-after-finished": ControllerSpec(
        ttl_after_finished.TTLAfterFinishedController, 1, "ttl-after-finished-controller"
    ),
    # Upstream's pod-garbage-collector: one periodic pass, no per-key workers.
    "pod-garbage-collector": ControllerSpec(podgc.PodGCController, 1, "pod-garbage-collector"),
    # Upstream: --concurrent-horizontal-pod-autoscaler-syncs 5.
    "horizontalpodautoscaling": ControllerSpec(
        horizontal_pod_autoscaler.HorizontalPodAutoscalerController,
        2,
        "horizontal-pod-autoscaler",
    ),
    # Upstream: --concurrent-resource-quota-syncs 5.
    "resourcequota": ControllerSpec(
        resourcequota.ResourceQuotaController, 2, "resourcequota-controller"
    ),
    # Upstream's service-cidr-controller, as the service-cidrs-controller ServiceAccount.
    "service-cidr-controller": ControllerSpec(
        servicecidrs.ServiceCIDRsController, 1, "service-cidrs-controller"
    ),
    # Upstream's kube-apiserver-serving-clustertrustbundle-publisher-controller (CTB GA in
    # 1.37); it takes the serving CA (``ca_pem``) through ``options`` and idles without one.
    "kube-apiserver-serving-clustertrustbundle-publisher-controller": ControllerSpec(
        clustertrustbundle_publisher.ClusterTrustBundlePublisher,
        1,
        "kube-apiserver-serving-clustertrustbundle-publisher",
    ),
    # Upstream's podcertificaterequest-cleaner-controller (PodCertificateRequest GA in 1.37).
    "podcertificaterequest-cleaner-controller": ControllerSpec(
        podcertificaterequest_cleaner.PodCertificateRequestCleaner,
        1,
        "podcertificaterequestcleaner",
    ),
    # Upstream's storage-version-migrator-controller (on by default since 1.37).
    "storage-version-migrator-controller": ControllerSpec(
        storage_version_migrator.StorageVersionMigratorController,
        1,
        "storage-version-migrator-controller",
    ),
    # Upstream's resourceclaim-controller (DynamicResourceAllocation GA): template
    # claims for pods, stale reservations released (--concurrent-resourceclaim-syncs 10).
    "resourceclaim-controller": ControllerSpec(
        resourceclaim.ResourceClaimController, 2, "resource-claim-controller"
    ),
    "persistentvolume-binder": ControllerSpec(
        pv_binder.PersistentVolumeController, 2, "persistent-volume-binder"
    ),
    "pvc-protection": ControllerSpec(
        pvc_protection.PVCProtectionController, 1, "pvc-protection-controller"
    ),
    "pv-protection": ControllerSpec(
        pv_protection.PVProtectionController, 1, "pv-protection-controller"
    ),
    # Not a kube-controller-manager controller: kind's add-on, run here as
    # its own namespaced ServiceAccount (decision 0021).
    "local-path-provisioner": ControllerSpec(
        local_path_provisioner.LocalPathProvisioner,
        2,
        f"{local_path_provisioner.NAMESPACE}/{local_path_provisioner.SERVICE_ACCOUNT}",
    ),
}
DEFAULT_CONTROLLERS: tuple[str, ...] = tuple(CONTROLLERS)

# The source.component of each controller's Events: upstream's EventSource
# names, not always its ServiceAccount's (the disruption controller reports as
# "controllermanager", node IPAM's range allocator as "cidrAllocator"). The
# others record nothing upstream, nor here.
EVENT_SOURCES: dict[str, str] = {
    "garbagecollector": "garbage-collector-controller",
    "replicaset": "replicaset-controller",
    "deployment": "deployment-controller",
    "endpoint": "endpoint-controller",
    "endpointslice": "endpoint-slice-controller",
    "disruption": "controllermanager",
    "daemonset": "daemonset-controller",
    "statefulset": "statefulset-controller",
    "nodeipam": "cidrAllocator",
    "nodelifecycle": "node-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "ttl-after-finished": "ttl-after-finished-controller",
    "horizontalpodautoscaling": "horizontal-pod-autoscaler",
    "persistentvolume-binder": "persistentvolume-controller",
    "service-cidr-controller": "service-cidr-controller",
    "resourceclaim-controller": "resource_claim",
}


def event_source(name: str) -> str:
    """The component controller ``name`` reports its Events as."""
    if name == "local-path-provisioner":
        return local_path_provisioner.event_source()
    return EVENT_SOURCES.get(name, COMPONENT)


class ControllerManager:
    """Runs ``controllers`` (names from ``CONTROLLERS``) against the API.

    ``client`` (the manager's own identity) feeds the shared informers and,
    without an ``event_client`` (upstream's eventClient), writes the Events;
    ``client_for(service_account)``, when given, makes the
    client each controller acts through (upstream's
    ``--use-service-account-credentials``), else every controller uses
    ``client``. Clients made by ``client_for`` are closed by ``stop``.
    """

    def __init__(
        self,
        client: rest.Client,
        *,
        client_for: ClientFor | None = None,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        resync_period: float = 0.0,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        event_client: rest.Client | None = None,
    ) -> None:
        unknown = set(controllers) - CONTROLLERS.keys()
        if unknown:
            raise ValueError(f"unknown controllers: {sorted(unknown)}")
        self.client = client
        self.client_for = client_for
        self.enabled = tuple(controllers)
        # Per-controller keyword arguments (e.g. nodelifecycle's node_monitor_grace_period).
        self.options = dict(options or {})
        # Cached objects without managedFields (no controller reads them), as upstream's.
        self.informers = informer.InformerFactory(
            client, resync_period=resync_period, transform=informer.strip_managed_fields
        )
        self.broadcaster = events.EventBroadcaster(event_client or client)
        self.controllers: dict[str, Controller] = {}
        self._own_clients: list[rest.Client] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Construct the controllers and start everything in the background."""
        self.broadcaster.start()
        for name in self.enabled:
            spec = CONTROLLERS[name]
            controller = spec.factory(
                client=self._client_for(spec.service_account),
                informers=self.informers,
                recorder=self.broadcaster.new_recorder(event_source(name)),
                **self.options.get(name, {}),
            )
            self.controllers[name] = controller
            self._tasks.append(asyncio.ensure_future(self._run(controller, spec.workers)))
        self.informers.start()

    def _client_for(self, service_account: str) -> rest.Client:
        if self.client_for is None or not service_account:
            return self.client
        client = self.client_for(service_account)
        self._own_clients.append(client)
        return client

    async def _run(self, controller: Controller, workers: int) -> None:
        try:
            await controller.run(workers)
        except Exception:
            log.exception("controller %s stopped with an error", controller.name)
            raise

    async def stop(self) -> None:
        for controller in self.controllers.values():
            controller.shut_down()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.informers.stop()
        await self.broadcaster.stop()
        for client in self._own_clients:
            await client.aclose()
        self._own_clients.clear()


def select_controllers(spec: str) -> tuple[str, ...]:
    """Upstream's --controllers: ``*`` (all), ``name`` (add one), ``-name`` (leave one out)."""
    chosen: list[str] = []
    excluded: set[str] = set()
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name = item.removeprefix("-")
        if item != "*" and name not in CONTROLLERS:
            raise ValueError(f'"{name}" is not in the list of known controllers')
        if item == "*":
            chosen.extend(DEFAULT_CONTROLLERS)
        elif item.startswith("-"):
            excluded.add(name)
        else:
            chosen.append(name)
    return tuple(dict.fromkeys(name for name in chosen if name not in excluded))
