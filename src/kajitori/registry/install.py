"""Every built-in resource the API server serves, in install order.

Each entry names a resource module that declares ``RESOURCE``; adding a
built-in kind is writing that module and one line here.
"""

from __future__ import annotations

import importlib

from kajitori.registry.authentication import selfsubjectreviews
from kajitori.registry.authorization import reviews
from kajitori.registry.authorization.authorizer import Authorizer
from kajitori.registry.legacy import resources as legacy
from kajitori.registry.resource import ResourceInfo

RESOURCE_MODULES: tuple[str, ...] = (
    # core/v1
    "kajitori.registry.core.namespaces",
    "kajitori.registry.core.pods",
    "kajitori.registry.core.services",
    "kajitori.registry.core.endpoints",
    "kajitori.registry.core.secrets",
    "kajitori.registry.core.configmaps",
    "kajitori.registry.core.serviceaccounts",
    "kajitori.registry.core.nodes",
    "kajitori.registry.core.events",
    "kajitori.registry.core.persistentvolumes",
    "kajitori.registry.core.persistentvolumeclaims",
    "kajitori.registry.core.limitranges",
    "kajitori.registry.core.resourcequotas",
    "kajitori.registry.core.replicationcontrollers",
    "kajitori.registry.core.podtemplates",
    # apps/v1
    "kajitori.registry.apps.deployments",
    "kajitori.registry.apps.replicasets",
    "kajitori.registry.apps.statefulsets",
    "kajitori.registry.apps.daemonsets",
    "kajitori.registry.apps.controllerrevisions",
    # batch/v1
    "kajitori.registry.batch.jobs",
    "kajitori.registry.batch.cronjobs",
    # autoscaling/v2 (stored, preferred) and autoscaling/v1
    "kajitori.registry.autoscaling.horizontalpodautoscalers",
    "kajitori.registry.autoscaling.horizontalpodautoscalers_v1",
    # others
    "kajitori.registry.certificates.certificatesigningrequests",
    "kajitori.registry.certificates.clustertrustbundles",
    "kajitori.registry.certificates.podcertificaterequests",
    "kajitori.registry.coordination.leases",
    "kajitori.registry.discovery.endpointslices",
    "kajitori.registry.events.events",
    "kajitori.registry.policy.poddisruptionbudgets",
    "kajitori.registry.scheduling.priorityclasses",
    "kajitori.registry.node.runtimeclasses",
    "kajitori.registry.flowcontrol.flowschemas",
    "kajitori.registry.flowcontrol.prioritylevelconfigurations",
    "kajitori.registry.storage.storageclasses",
    "kajitori.registry.storage.csidrivers",
    "kajitori.registry.storage.csinodes",
    "kajitori.registry.storage.csistoragecapacities",
    "kajitori.registry.storage.volumeattachments",
    "kajitori.registry.storage.volumeattributesclasses",
    "kajitori.registry.networking.ingresses",
    "kajitori.registry.networking.ingressclasses",
    "kajitori.registry.networking.networkpolicies",
    "kajitori.registry.networking.servicecidrs",
    "kajitori.registry.networking.ipaddresses",
    "kajitori.registry.rbac.roles",
    "kajitori.registry.rbac.clusterroles",
    "kajitori.registry.rbac.rolebindings",
    "kajitori.registry.rbac.clusterrolebindings",
    "kajitori.registry.admissionregistration.mutatingwebhookconfigurations",
    "kajitori.registry.admissionregistration.validatingwebhookconfigurations",
    "kajitori.registry.admissionregistration.validatingadmissionpolicies",
    "kajitori.registry.admissionregistration.validatingadmissionpolicybindings",
    # resource.k8s.io/v1 (Dynamic Resource Allocation)
    "kajitori.registry.dra.deviceclasses",
    "kajitori.registry.dra.resourceclaims",
    "kajitori.registry.dra.resourceclaimtemplates",
    "kajitori.registry.dra.resourceslices",
    "kajitori.registry.dra.devicetaintrules",
    "kajitori.registry.admissionregistration.mutatingadmissionpolicies",
    "kajitori.registry.admissionregistration.mutatingadmissionpolicybindings",
    # apiextensions.k8s.io/v1 (custom resources are served by server/crds.py)
    "kajitori.registry.apiextensions.customresourcedefinitions",
    # apiregistration.k8s.io/v1 (what they register is served by server/aggregator/)
    "kajitori.registry.apiregistration.apiservices",
    # storagemigration.k8s.io/v1 (migrated by controllers/storage_version_migrator.py)
    "kajitori.registry.storagemigration.storageversionmigrations",
)


def all_resources(
    *, authorizer: Authorizer | None = None, legacy_versions: bool = False
) -> tuple[ResourceInfo, ...]:
    """The declared resources, importing each module once.

    The review kinds (authentication.k8s.io SelfSubjectReview and the
    authorization.k8s.io access reviews) belong to a server that
    authenticates and authorizes: they answer with the server's authorizer,
    so they are served only when one is given. ``legacy_versions`` adds the
    workload versions upstream removed in 1.16 (``registry.legacy``), after
    apps/v1 so that it stays the preferred version.
    """
    resources: list[ResourceInfo] = []
    for module_name in RESOURCE_MODULES:
        module = importlib.import_module(module_name)
        resources.append(module.RESOURCE)
    if authorizer is not None:
        resources.append(selfsubjectreviews.RESOURCE)
        resources.extend(reviews.resources(authorizer))
    if legacy_versions:
        resources.extend(legacy.resources())
    return tuple(resources)
