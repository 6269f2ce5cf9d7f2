"""Calling a webhook over HTTPS from the server's event loop (upstream: util/webhook ClientManager).

Owns where a webhook is reached and how: ``clientConfig.url`` as given, or
``clientConfig.service`` resolved to one ready endpoint of the Service's
EndpointSlices, as upstream does with ``--enable-aggregator-routing`` (we run
no service proxy the server could send through), with the TLS server name
``<name>.<namespace>.svc`` and the Host header of the service URL. The server
certificate is verified with ``caBundle``, or the system roots without one.
The call carries ``?timeout=<n>s`` and is cut off after timeoutSeconds.

One ``httpx.AsyncClient`` is kept per (CA bundle, server name) (its TLS
context is built once), and connections are not kept idle between calls. Failures raise ``CallError`` worded as upstream's
Go client words them (``Post "<url>": ...``), so failurePolicy can decide.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import random
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from kajitori.admission.lister import StoreLister
from kajitori.admission.webhooks.accessors import Webhook
from kajitori.admission.webhooks.review import CallError
from kajitori.machinery import errors
from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    import httpx

    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
StoreGetter = Callable[[], "Store | None"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_SERVICE_TYPES = ("ClusterIP", "LoadBalancer", "NodePort")


class ServiceResolver:
    """A Service's ready endpoint address, read from watch-fed Service and EndpointSlice caches.

    One per server (``cmd/apiserver.py`` builds it): the webhooks and the
    aggregator's proxy resolve through the same two watches. Whoever built it
    stops it.
    """

    def __init__(self, services: StoreGetter, slices: StoreGetter) -> None:
        self._services_store = services
        self._slices_store = slices
        self._services = StoreLister(services, name="service resolver services watch")
        self._slices = StoreLister(slices, name="service resolver endpointslices watch")

    async def resolve(self, namespace: str, name: str, port: int) -> tuple[str, int]:
        """(address, port) of a ready endpoint; raises ``LookupError`` with upstream's text."""
        service = await self._service(namespace, name)
        service_type = (service.get("spec") or {}).get("type") or "ClusterIP"
        if service_type not in _SERVICE_TYPES:
            raise LookupError(f'unsupported service type "{service_type}"')
        port_name = None
        for entry in (service.get("spec") or {}).get("ports") or ():
            if entry.get("port") == port:
                port_name = entry.get("name") or ""
                break
        if port_name is None:
            raise LookupError(f'no service port {port} found for service "{name}"')
        found = _random_endpoint(await self._endpoint_slices(namespace, name), port_name)
        if found is None:
            raise LookupError(f'no endpoints available for service "{name}"')
        return found

    async def _service(self, namespace: str, name: str) -> Object:
        cached = self._services.cached_get(namespace, name)
        if cached is not None:
            return cached
        store = self._services_store()
        if store is None:
            raise LookupError(f'service "{name}" not found')
        try:
            return await store.get(namespace, name)
        except errors.StatusError as exc:
            if exc.code == 404:
                raise LookupError(f'service "{name}" not found') from exc
            raise LookupError(exc.message) from exc

    async def _endpoint_slices(self, namespace: str, service: str) -> list[Object]:
        slices = self._slices.cached_list(namespace)
        if slices is None:
            store = self._slices_store()
            slices = [] if store is None else (await store.list(namespace, ListOptions())).items
        return [
            s
            for s in slices
            if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == service
        ]

    async def stop(self) -> None:
        await self._services.stop()
        await self._slices.stop()


def _random_endpoint(slices: list[Object], port_name: str) -> tuple[str, int] | None:
    """A ready endpoint serving ``port_name``, slices and endpoints taken in random order."""
    for endpoint_slice in random.sample(slices, len(slices)):
        endpoints = endpoint_slice.get("endpoints") or []
        for port in endpoint_slice.get("ports") or ():
            if (port.get("name") or "") != port_name or port.get("port") is None or not endpoints:
                continue
            offset = random.randrange(len(endpoints))
            for i in range(len(endpoints)):
                endpoint = endpoints[(i + offset) % len(endpoints)]
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                addresses = endpoint.get("addresses") or []
                if addresses:
                    return addresses[0], int(port["port"])
    return None


class WebhookClients:
    """Posts AdmissionReviews to webhooks; one reused HTTPS client per CA bundle and server name."""

    def __init__(self, services: ServiceResolver, *, owns_services: bool = True) -> None:
        """``owns_services``: stop ``services`` on ``aclose`` (False: it is shared)."""
        self._services = services
        self._owns_services = owns_services
        self._clients: dict[tuple[bytes, str], httpx.AsyncClient] = {}

    async def post(self, webhook: Webhook, review: Object) -> Any:
        """The decoded JSON answer; raises CallError for anything that is not one."""
        config = webhook.client_config
        body = orjson.dumps(review)
        ca_bundle = _ca_bundle(webhook, config.get("caBundle"))
        timeout = webhook.timeout_seconds
        service = config.get("service")
        if isinstance(service, dict):
            namespace, name = service.get("namespace", ""), service.get("name", "")
            port = int(service.get("port") or 443)
            server_name = f"{name}.{namespace}.svc"
            url = f"https://{server_name}:{port}{service.get('path') or ''}"
            url = _with_timeout(url, timeout)
            try:
                address, endpoint_port = await self._services.resolve(namespace, name, port)
            except LookupError as exc:
                raise _call_failed(webhook, url, str(exc)) from exc
            host = f"[{address}]" if ":" in address else address
            target = url.replace(f"https://{server_name}:{port}", f"https://{host}:{endpoint_port}")
            return await self._send(webhook, body, url, target, ca_bundle, server_name, timeout)
        raw_url = config.get("url")
        if not raw_url:
            raise CallError(webhook.name, "webhook configuration must have either service or URL")
        url = _with_timeout(str(raw_url), timeout)
        return await self._send(webhook, body, url, url, ca_bundle, "", timeout)

    async def _send(
        self,
        webhook: Webhook,
        body: bytes,
        url: str,
        target: str,
        ca_bundle: bytes,
        server_name: str,
        timeout: int,
    ) -> Any:
        import httpx  # on first use: importing it costs ~0.1 s of every start

        client = self._client(ca_bundle, server_name)
        headers = {"Content-Type": "application/json", "Accept": "application/json, */*"}
        extensions: dict[str, Any] = {}
        if server_name:
            headers["Host"] = urlsplit(url).netloc
            extensions["sni_hostname"] = server_name
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                response = await client.post(
                    target, content=body, headers=headers, extensions=extensions
                )
        except TimeoutError as exc:
            raise _call_failed(webhook, url, "context deadline exceeded") from exc
        except httpx.HTTPError as exc:
            raise _call_failed(webhook, url, _transport_text(exc, url)) from exc
        return _decode(webhook, response)

    def _client(self, ca_bundle: bytes, server_name: str) -> httpx.AsyncClient:
        import httpx  # on first use: importing it costs ~0.1 s of every start

        key = (ca_bundle, server_name)
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=_ssl_context(ca_bundle),
                trust_env=False,
                timeout=None,
                http2=False,
                # Each call closes its connection once answered (upstream keeps them
                # alive). An idle TLS connection is never read by the pool, so a webhook
                # server that stops (an operator's test run, a rollout) cannot finish
                # closing it; with asyncio servers that leaks their transport. A TLS
                # handshake per call costs about a millisecond on a local network.
                limits=httpx.Limits(max_keepalive_connections=0),
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        if self._owns_services:
            await self._services.stop()


def _with_timeout(url: str, timeout: int) -> str:
    if timeout <= 0:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timeout={timeout}s"


def _ca_bundle(webhook: Webhook, raw: Any) -> bytes:
    if not raw:
        return b""
    try:
        return base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise CallError(webhook.name, f"could not get REST client: {exc}") from exc


def _ssl_context(ca_bundle: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_bundle:
        context = ssl.create_default_context(cadata=ca_bundle.decode("ascii", "replace"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _call_failed(webhook: Webhook, url: str, text: str) -> CallError:
    return CallError(webhook.name, f'failed to call webhook: Post "{url}": {text}')


def _transport_text(exc: httpx.HTTPError, url: str) -> str:
    """Go's words for the common transport failures."""
    import httpx  # on first use: importing it costs ~0.1 s of every start

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _tls_text(cause)
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            parts = urlsplit(url)
            return f"dial tcp {parts.hostname}:{parts.port or 443}: connect: connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "Connection refused" in text or "connection refused" in text:
        parts = urlsplit(url)
        return f"dial tcp {parts.hostname}:{parts.port or 443}: connect: connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "context deadline exceeded"
    return text or type(exc).__name__


def _tls_text(exc: ssl.SSLCertVerificationError) -> str:
    detail = exc.verify_message or str(exc)
    if "Hostname mismatch" in detail or "IP address mismatch" in detail:
        return f"tls: failed to verify certificate: x509: {detail}"
    return "tls: failed to verify certificate: x509: certificate signed by unknown authority"


def _decode(webhook: Webhook, response: httpx.Response) -> Any:
    url = str(response.request.url)
    if not 200 <= response.status_code < 300:
        raise CallError(webhook.name, f"failed to call webhook: {_status_text(response)}")
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise CallError(
            webhook.name, f"failed to call webhook: decoding response from {url}: {exc}"
        ) from exc


def _status_text(response: httpx.Response) -> str:
    """What client-go says of an unexpected status (upstream: NewGenericServerResponse)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
        return str(body["message"])
    code = response.status_code
    messages = {
        400: "the server rejected our request for an unknown reason",
        401: "the server has asked for the client to provide credentials",
        403: "the server does not allow access to the requested resource",
        404: "the server could not find the requested resource",
        405: "the server does not allow this method on the requested resource",
        409: "the server reported a conflict",
        413: "the server rejected our request due to an error in our request",
        422: "the server rejected our request due to an error in our request",
        429: "the server has received too many requests and has asked us to try again later",
    }
    if code in messages:
        return messages[code]
    text = response.text.strip()
    if code >= 500:
        return f'an error on the server ("{text}") has prevented the request from succeeding'
    return f"the server responded with the status code {code} but did not return more information"
