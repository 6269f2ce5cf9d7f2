"""How the aggregator reaches an APIService's Service: endpoint, TLS and front-proxy identity.

Owns the HTTPS clients the proxy, the availability check and discovery use.
The Service is resolved to one ready endpoint of its EndpointSlices by the
server's ``ServiceResolver``, the one the webhooks use too (upstream's ``--enable-aggregator-routing``:
we run no service proxy the server could send through). The server
certificate is checked against ``caBundle`` for the name ``<name>.<namespace>.svc``
(or the system roots without one; nothing with ``insecureSkipTLSVerify``), and
the API server presents its front-proxy client certificate, which aggregated
servers trust through ``extension-apiserver-authentication``.

One ``httpx.AsyncClient`` is kept per (CA bundle, verify); connections are not
kept idle (see the webhook client for why).
"""

from __future__ import annotations

import base64
import binascii
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kajitori.admission.webhooks.client import ServiceResolver
from kajitori.auth import pki
from kajitori.server.aggregator.index import service_of

if TYPE_CHECKING:
    import httpx

Object = dict[str, Any]

DEFAULT_PORT = 443


@dataclass(frozen=True, slots=True)
class Target:
    """Where one APIService's requests go."""

    base_url: str  # https://<endpoint address>:<port>
    server_name: str  # <name>.<namespace>.svc, the TLS name and Host
    host_header: str  # <name>.<namespace>.svc:<service port>
    ca_bundle: bytes
    verify: bool


def ca_bundle_of(api_service: Object) -> bytes:
    raw = (api_service.get("spec") or {}).get("caBundle")
    if not raw or not isinstance(raw, str):
        return b""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return b""


class Transport:
    """Resolves APIServices to endpoints and hands out the clients that reach them."""

    def __init__(
        self,
        resolver: ServiceResolver,
        front_proxy_client: pki.CertAndKey,
        *,
        owns_resolver: bool = True,
    ) -> None:
        """``owns_resolver``: stop ``resolver`` on ``aclose`` (False: the server shares it)."""
        self.resolver = resolver
        self._owns_resolver = owns_resolver
        self._client_cert = front_proxy_client
        self._clients: dict[tuple[bytes, bool], httpx.AsyncClient] = {}

    async def target(self, api_service: Object) -> Target:
        """Raises ``LookupError`` (upstream's resolver words) when no endpoint is ready."""
        service = service_of(api_service) or {}
        namespace, name = str(service.get("namespace") or ""), str(service.get("name") or "")
        port = int(service.get("port") or DEFAULT_PORT)
        address, endpoint_port = await self.resolver.resolve(namespace, name, port)
        host = f"[{address}]" if ":" in address else address
        server_name = f"{name}.{namespace}.svc"
        spec = api_service.get("spec") or {}
        return Target(
            base_url=f"https://{host}:{endpoint_port}",
            server_name=server_name,
            host_header=f"{server_name}:{port}",
            ca_bundle=ca_bundle_of(api_service),
            verify=spec.get("insecureSkipTLSVerify") is not True,
        )

    def client(self, ca_bundle: bytes, verify: bool) -> httpx.AsyncClient:
        import httpx  # on first use: importing it costs ~0.1 s of every start

        key = (ca_bundle, verify)
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._ssl_context(ca_bundle, verify),
                trust_env=False,
                timeout=None,
                http2=False,
                limits=httpx.Limits(max_keepalive_connections=0),
                follow_redirects=False,
            )
            self._clients[key] = client
        return client

    def _ssl_context(self, ca_bundle: bytes, verify: bool) -> ssl.SSLContext:
        if ca_bundle and verify:
            context = ssl.create_default_context(cadata=ca_bundle.decode("ascii", "replace"))
        else:
            context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl reads a certificate only from files: give it a private, short-lived copy.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert.write_bytes(self._client_cert.cert_pem)
            key.write_bytes(self._client_cert.key_pem)
            context.load_cert_chain(cert, key)
        return context

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        if self._owns_resolver:
            await self.resolver.stop()


def request_extensions(target: Target) -> dict[str, Any]:
    """The TLS server name of a request to ``target`` (httpx dials the endpoint's address)."""
    return {"sni_hostname": target.server_name}
