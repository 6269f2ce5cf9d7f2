"""The aggregator as one object: what ``cmd/apiserver.py`` starts and ``server/app.py`` asks.

Composes the APIService index, autoregistration, availability, remote
discovery and the proxy over one registry. Start order: the index and the
controllers, then the built-in APIServices synced once and the
authentication ConfigMap published (upstream's autoregister-completion check
keeps the server unready until then). Stop order is the reverse.
"""

from __future__ import annotations

from typing import Any

from kajitori.admission.webhooks.client import ServiceResolver
from kajitori.auth import pki
from kajitori.registry.apiextensions import customresourcedefinitions as crds
from kajitori.registry.apiregistration import apiservices
from kajitori.registry.generic.request import UserInfo
from kajitori.registry.generic.store import Store
from kajitori.server import asgi
from kajitori.server.aggregator import authentication_trust
from kajitori.server.aggregator.autoregister import AutoRegister
from kajitori.server.aggregator.availability import AvailabilityController
from kajitori.server.aggregator.discovery import RemoteDiscovery
from kajitori.server.aggregator.index import APIServiceIndex
from kajitori.server.aggregator.proxy import Proxy
from kajitori.server.aggregator.transport import Transport
from kajitori.server.apis import APIRegistry

Object = dict[str, Any]


def _store(registry: APIRegistry, group: str, plural: str) -> Store:
    store = registry.lookup(group, "v1", plural)
    assert store is not None, f"{plural}.{group} must be installed for the aggregator"
    return store


class Aggregator:
    """APIServices: local ones kept, remote ones checked, proxied and discovered."""

    def __init__(
        self,
        registry: APIRegistry,
        *,
        front_proxy: pki.FrontProxyPKI,
        client_ca_pem: bytes,
        service_resolver: ServiceResolver | None = None,
    ) -> None:
        """``service_resolver``: the server's (shared with the webhooks); else one of its own."""
        self.registry = registry
        self._front_proxy = front_proxy
        self._client_ca_pem = client_ca_pem
        self.index = APIServiceIndex(_store(registry, apiservices.GROUP, "apiservices"))
        services = _store(registry, "", "services")
        slices = _store(registry, "discovery.k8s.io", "endpointslices")
        if service_resolver is None:
            resolver = ServiceResolver(lambda: services, lambda: slices)
            self.transport = Transport(resolver, front_proxy.client)
        else:
            self.transport = Transport(service_resolver, front_proxy.client, owns_resolver=False)
        self.autoregister = AutoRegister(
            self.index, registry, _store(registry, crds.GROUP, "customresourcedefinitions")
        )
        self.availability = AvailabilityController(self.index, services, slices, self.transport)
        self.discovery = RemoteDiscovery(self.index, self.transport)
        self.proxy = Proxy(self.index, self.transport)

    async def start(self) -> None:
        self.index.start()
        await self.autoregister.start()
        self.availability.start()
        self.discovery.start()
        await authentication_trust.publish(
            self.registry, self._client_ca_pem, self._front_proxy.ca.cert_pem
        )
        await self.autoregister.wait_synced()

    async def stop(self) -> None:
        await self.discovery.stop()
        await self.availability.stop()
        await self.autoregister.stop()
        await self.index.stop()
        await self.transport.aclose()

    def match(self, path: str) -> Object | None:
        """The remote APIService that serves ``path``; None when kajitori serves it."""
        return self.proxy.match(path)

    async def serve(
        self, request: asgi.Request, send: asgi.Send, user: UserInfo, api_service: Object
    ) -> None:
        await self.proxy.serve(request, send, user, api_service)
