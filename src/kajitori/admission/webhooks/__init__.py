"""Admission webhooks: upstream's MutatingAdmissionWebhook and ValidatingAdmissionWebhook.

The request path: ``dispatch`` (the two plugins the admission chain calls) →
``attributes`` (the request as webhooks see it, equivalent resources and
version views) → ``admission.matching`` (rules and selectors, shared with
the policy plugin) and ``conditions`` (which webhooks apply) →
``review`` (the AdmissionReview sent and the answer checked) → ``client``
(HTTPS to the webhook's URL or Service). ``accessors`` reads the
Validating/MutatingWebhookConfigurations (admissionregistration.k8s.io/v1)
from a watch of their stores.

``plugins`` builds both plugins over one registry; they share the namespace
cache, the service resolver (the server's, which the aggregator uses too) and
the HTTPS clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kajitori.admission.lister import StoreLister
from kajitori.admission.webhooks.accessors import GROUP, WebhookSource
from kajitori.admission.webhooks.attributes import ServedResources, Versions
from kajitori.admission.webhooks.client import ServiceResolver, WebhookClients
from kajitori.admission.webhooks.dispatch import (
    MutatingWebhook,
    Namespaces,
    ValidatingWebhook,
    WebhookDispatcher,
)

if TYPE_CHECKING:
    from kajitori.registry.authorization.authorizer import Authorizer
    from kajitori.registry.generic.store import Store

Lookup = Callable[[str, str, str], "Store | None"]

__all__ = ["MutatingWebhook", "ValidatingWebhook", "plugins"]


def plugins(
    lookup: Lookup,
    served: ServedResources,
    authorizer: Authorizer | None = None,
    *,
    namespaces: StoreLister | None = None,
    service_resolver: ServiceResolver | None = None,
) -> tuple[MutatingWebhook, ValidatingWebhook]:
    """Both webhook plugins over the registry that ``lookup`` and ``served`` read.

    ``authorizer`` answers the ``authorizer`` of matchConditions (upstream's plugins get
    the server's authorizer); ``namespaces``, a namespaces lister shared with other plugins;
    ``service_resolver``, the server's resolver (shared with the aggregator, stopped by
    its builder); without one the plugins build and stop their own.
    """
    namespace_reader = Namespaces(lambda: lookup("", "v1", "namespaces"), namespaces)
    versions = Versions(served)
    if service_resolver is None:
        clients = WebhookClients(
            ServiceResolver(
                lambda: lookup("", "v1", "services"),
                lambda: lookup("discovery.k8s.io", "v1", "endpointslices"),
            )
        )
    else:
        clients = WebhookClients(service_resolver, owns_services=False)

    def dispatcher(plural: str, *, mutating: bool) -> WebhookDispatcher:
        source = WebhookSource(lambda: lookup(GROUP, "v1", plural), plural=plural)
        return WebhookDispatcher(
            source,
            namespaces=namespace_reader,
            versions=versions,
            clients=clients,
            mutating=mutating,
            authorizer=authorizer,
        )

    return (
        MutatingWebhook(dispatcher("mutatingwebhookconfigurations", mutating=True)),
        ValidatingWebhook(dispatcher("validatingwebhookconfigurations", mutating=False)),
    )
