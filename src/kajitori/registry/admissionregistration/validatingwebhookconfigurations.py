"""ValidatingWebhookConfigurations in the API server.

Upstream: pkg/registry/admissionregistration/validatingwebhookconfiguration.
Declares the resource (cluster-scoped, category ``api-extensions``); its
rules are in ``webhookconfigurations``. The validating webhook dispatcher
reads these objects; it is not part of the registry.
"""

from __future__ import annotations

from kajitori.registry import resource
from kajitori.registry.admissionregistration import webhookconfigurations

RESOURCE = resource.ResourceInfo(
    group="admissionregistration.k8s.io",
    version="v1",
    kind="ValidatingWebhookConfiguration",
    plural="validatingwebhookconfigurations",
    namespaced=False,
    categories=("api-extensions",),
    strategy=webhookconfigurations.WebhookConfigurationStrategy(mutating=False),
    table=webhookconfigurations.TABLE,
    tracks_generation=True,
)
