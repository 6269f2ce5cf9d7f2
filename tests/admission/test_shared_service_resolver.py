"""One Service -> endpoint resolver for the admission webhooks and the aggregator.

``cmd/apiserver.py`` builds one ``ServiceResolver`` (two watches: Services
and EndpointSlices) and hands it to both webhook plugins and the
aggregator's transport; neither stops it (the server does, last), so the
webhooks closing their clients leaves the aggregator's resolution working.
"""

from __future__ import annotations

from kajitori.admission.webhooks.dispatch import MutatingWebhook, ValidatingWebhook
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "api"},
    "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]},
}
SLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {"name": "api-1", "labels": {"kubernetes.io/service-name": "api"}},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.9.8.7"], "conditions": {"ready": True}}],
    "ports": [{"name": "https", "port": 8443}],
}


async def test_webhooks_and_aggregator_resolve_through_one_resolver(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    assert apiserver.registry is not None and apiserver.aggregator is not None
    store = apiserver.registry.lookup("", "v1", "configmaps")
    assert store is not None
    plugins = [
        p for p in store.admission.plugins if isinstance(p, MutatingWebhook | ValidatingWebhook)
    ]
    assert len(plugins) == 2
    shared = apiserver.service_resolver
    assert apiserver.aggregator.transport.resolver is shared
    for plugin in plugins:
        assert plugin.dispatcher.clients._services is shared

    await admin.create(rest.SERVICES, SERVICE, namespace="default")
    await admin.create(rest.ENDPOINTSLICES, SLICE, namespace="default")
    assert await shared.resolve("default", "api", 443) == ("10.9.8.7", 8443)
    # The webhooks let go of their clients; the shared watches keep running.
    for plugin in plugins:
        await plugin.close()
    for lister in (shared._services, shared._slices):
        assert lister._task is not None and not lister._task.done()
    assert await apiserver.aggregator.transport.resolver.resolve("default", "api", 443) == (
        "10.9.8.7",
        8443,
    )
