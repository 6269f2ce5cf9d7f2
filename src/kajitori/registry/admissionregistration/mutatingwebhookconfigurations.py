"""MutatingWebhookConfigurations in the API server.

Upstream: pkg/registry/admissionregistration/mutatingwebhookconfiguration.
Declares the resource (cluster-scoped, category ``api-extensions``); its
rules are in ``webhookconfigurations`` (mutating webhooks also default and
check ``reinvocationPolicy``).
"""

from __future__ import annotations

from kajitori.registry import resource
from kajitori.registry.admissionregistration import webhookconfigurations

RESOURCE = resource.ResourceInfo(
    group="admissionregistration.k8s.io",
    version="v1",
    kind="MutatingWebhookConfiguration",
    plural="mutatingwebhookconfigurations",
    namespaced=False,
    categories=("api-extensions",),
    strategy=webhookconfigurations.WebhookConfigurationStrategy(mutating=True),
    table=webhookconfigurations.TABLE,
    tracks_generation=True,
)
