"""The REST client every kajitori component uses to reach the API server (≈ client-go's rest + dynamic).

Owns: addressing a resource (``Resource``: group, version, plural, scope),
the verbs (get, list, create, update, patch, delete, deletecollection,
watch) and subresources, and turning every non-2xx answer into one
``ApiError`` that carries the server's ``metav1.Status``. Objects stay in
wire form (dicts), as everywhere in kajitori.

The client is transport-agnostic: ``Client.from_kubeconfig`` speaks HTTPS
with the kubeconfig's CA and client certificate, through our own lean
HTTP/1.1 client (``client.http1``, decision 0050); ``Client.in_process``
calls an ASGI app directly (``client.transport``) for components running
inside ``kajitori up``. Both go through the server's authentication,
authorization and admission, so a component behaves the same either way.

Watch streams are async iterators of ``{"type", "object"}`` events; an
``ERROR`` event (e.g. 410 Expired) is raised as ``ApiError``, which is how
informers learn that they must re-list.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import functools
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import httpx
import orjson

from kajitori.client import http1, kubeconfig, transport

Object = dict[str, Any]
PatchType = Literal["json", "merge", "strategic"]
PropagationPolicy = Literal["", "Orphan", "Background", "Foreground"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
# Metadata-only lists and watches: the server strips everything but
# apiVersion, kind and metadata, which is all the garbage collector needs.
METADATA_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# A watch's body as its transport reads it: the next chunk (None at the end), and close.
_Body = tuple[Callable[[], Awaitable[bytes | None]], Callable[[], Awaitable[None]]]
# Names and paths made only of these need no quoting (nearly all of them): a regex
# match is far cheaper than urllib's quote, which every in-process request ran.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")
_PATH_SAFE_CHARS = "/%:@!$&'()*+,;=-._~?"
_PATH_SAFE = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=._~?-]*")
_AGGREGATED_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
DEFAULT_TIMEOUT = 30.0
# client-go's default number of retries of a request answered with Retry-After.
MAX_RETRIES = 10


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """Where a resource lives in the API: ``/apis/{group}/{version}/[namespaces/{ns}/]{plural}``."""

    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str = ""
    verbs: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{_quote(namespace)}")
        parts.append(self.plural)
        if name:
            parts.append(_quote(name))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


def _core(plural: str, kind: str, *, namespaced: bool = True) -> Resource:
    return Resource("", "v1", plural, namespaced, kind)


NAMESPACES = _core("namespaces", "Namespace", namespaced=False)
NODES = _core("nodes", "Node", namespaced=False)
CONFIGMAPS = _core("configmaps", "ConfigMap")
SECRETS = _core("secrets", "Secret")
PODS = _core("pods", "Pod")
SERVICES = _core("services", "Service")
EVENTS = _core("events", "Event")
SERVICEACCOUNTS = _core("serviceaccounts", "ServiceAccount")
DEPLOYMENTS = Resource("apps", "v1", "deployments", True, "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", True, "ReplicaSet")
LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")
ENDPOINTS = _core("endpoints", "Endpoints")
PERSISTENTVOLUMECLAIMS = _core("persistentvolumeclaims", "PersistentVolumeClaim")
PERSISTENTVOLUMES = _core("persistentvolumes", "PersistentVolume", namespaced=False)
RESOURCEQUOTAS = _core("resourcequotas", "ResourceQuota")
LIMITRANGES = _core("limitranges", "LimitRange")
STATEFULSETS = Resource("apps", "v1", "statefulsets", True, "StatefulSet")
DAEMONSETS = Resource("apps", "v1", "daemonsets", True, "DaemonSet")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions", True, "ControllerRevision")
JOBS = Resource("batch", "v1", "jobs", True, "Job")
CRONJOBS = Resource("batch", "v1", "cronjobs", True, "CronJob")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", False, "StorageClass")
PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", True, "PodDisruptionBudget")
RESOURCECLAIMS = Resource("resource.k8s.io", "v1", "resourceclaims", True, "ResourceClaim")
RESOURCECLAIMTEMPLATES = Resource(
    "resource.k8s.io", "v1", "resourceclaimtemplates", True, "ResourceClaimTemplate"
)
RESOURCESLICES = Resource("resource.k8s.io", "v1", "resourceslices", False, "ResourceSlice")
DEVICECLASSES = Resource("resource.k8s.io", "v1", "deviceclasses", False, "DeviceClass")

WELL_KNOWN: tuple[Resource, ...] = (
    NAMESPACES,
    NODES,
    CONFIGMAPS,
    SECRETS,
    PODS,
    SERVICES,
    EVENTS,
    SERVICEACCOUNTS,
    DEPLOYMENTS,
    REPLICASETS,
    LEASES,
    ENDPOINTS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    RESOURCEQUOTAS,
    LIMITRANGES,
    STATEFULSETS,
    DAEMONSETS,
    CONTROLLERREVISIONS,
    JOBS,
    CRONJOBS,
    ENDPOINTSLICES,
    STORAGECLASSES,
    PODDISRUPTIONBUDGETS,
)


class ApiError(Exception):
    """A non-success answer from the API server, with its ``metav1.Status``."""

    def __init__(self, status: Object) -> None:
        self.status = status
        self.code: int = int(status.get("code") or 0)
        self.reason: str = str(status.get("reason") or "")
        self.message: str = str(status.get("message") or "")
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def gone(self) -> bool:
        return self.code == 410


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.not_found


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.conflict


# client-go multiplexes a component's requests over one HTTP/2 connection; over HTTP/1.1
# each request in flight needs a connection of its own. httpx's pool keeps 20 idle
# connections, and httpcore (1.0) closes an idle one whenever the pool holds more than
# that many connections *in all*, watch streams included: a controller manager with 35
# watches paid a TLS handshake, on both sides, for every request. And at each request's
# start and end the pool checks every idle connection's socket (~0.1 ms each). So a
# client has at most MAX_IN_FLIGHT requests (not watches) in flight, which bounds its
# idle connections, and keeps them all, up to 60 s (the API server closes them after 90).
# The API server serves on one core: more in flight from one client buys no throughput.
MAX_IN_FLIGHT = 8
HTTPS_LIMITS = httpx.Limits(
    max_connections=None, max_keepalive_connections=None, keepalive_expiry=60
)


class Client:
    """An async API client over one httpx transport; close it with ``aclose``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        default_namespace: str = "default",
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.http = http
        self.default_namespace = default_namespace
        # httpx request extensions sent with every request (see ``as_identity``).
        self.extensions = dict(extensions or {})
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)  # over HTTPS (see HTTPS_LIMITS)
        # In process, plain requests skip httpx (``InProcessTransport.call``) but send
        # the client's default headers (User-Agent names the field manager) as httpx would.
        direct = getattr(http, "_transport", None)
        self._direct = direct if isinstance(direct, transport.InProcessTransport) else None
        # Over HTTPS, requests and watches skip httpx too (decision 0050), with the
        # same default headers (User-Agent, Authorization) but not httpx's
        # Accept-Encoding: nothing here decodes a compressed answer.
        self._pool = http.pool if isinstance(http, http1.PooledAsyncClient) else None
        self._direct_headers = [
            (name.lower(), value)
            for name, value in http.headers.raw
            # Nothing is compressed in process: answers are read as sent.
            if name.lower() not in (b"accept", b"content-type", b"accept-encoding", b"connection")
        ]
        self._pool_headers = list(self._direct_headers)
        self._direct_headers.append((b"host", transport.HOST.encode("ascii")))

    @classmethod
    def from_kubeconfig(cls, config: kubeconfig.KubeConfig) -> Client:
        """HTTPS to ``config.server`` with its CA, client certificate or bearer token."""
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        context = config.ssl_context()
        pool = http1.Pool(
            config.server,
            context,
            timeout=DEFAULT_TIMEOUT,
            keepalive_expiry=HTTPS_LIMITS.keepalive_expiry or 60.0,
        )
        http = http1.PooledAsyncClient(
            pool,
            base_url=config.server,
            verify=context,
            headers=headers,
            timeout=DEFAULT_TIMEOUT,
            limits=HTTPS_LIMITS,
        )
        return cls(http, default_namespace=config.namespace)

    @classmethod
    def in_process(cls, app: transport.ASGIApp, *, client_cert_pem: bytes | str) -> Client:
        """Call ``app`` directly, authenticating as the user named by ``client_cert_pem``."""
        asgi = transport.InProcessTransport(app, client_cert_pem=client_cert_pem)
        http = httpx.AsyncClient(
            transport=asgi, base_url=f"https://{transport.HOST}", timeout=DEFAULT_TIMEOUT
        )
        return cls(http)

    def as_identity(self, client_cert_pem: bytes | str) -> Client:
        """This in-process client's connection, acting as the holder of ``client_cert_pem``.

        The returned client shares the transport (close only the original);
        only the in-process transport honours it: over HTTPS the identity is
        the connection's.
        """
        pem = (
            client_cert_pem.decode("ascii")
            if isinstance(client_cert_pem, bytes)
            else client_cert_pem
        )
        return Client(
            self.http,
            default_namespace=self.default_namespace,
            extensions={**self.extensions, transport.CLIENT_CERT_EXTENSION: pem},
        )

    @property
    def in_process_app(self) -> transport.ASGIApp | None:
        """The app this client calls directly, or None over HTTPS."""
        return None if self._direct is None else self._direct.app

    def in_process_copy(self) -> Client:
        """A client of its own on the same app and identity (only for an in-process client)."""
        assert self._direct is not None, "not an in-process client"
        pem = self.extensions.get(transport.CLIENT_CERT_EXTENSION)
        return Client.in_process(
            self._direct.app, client_cert_pem=pem or self._direct.client_cert_pem
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # ----- verbs ------------------------------------------------------------

    async def get(
        self, resource: Resource, name: str, *, namespace: str = "", subresource: str = ""
    ) -> Object:
        path = resource.path(namespace=namespace, name=name, subresource=subresource)
        return await self.request("GET", path)

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
        metadata_only: bool = False,
    ) -> Object:
        """One page (or all, without ``limit``) of the collection, as a ``*List``."""
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=str(limit) if limit else "",
            resourceVersion=resource_version,
        )
        if continue_:
            params["continue"] = continue_
        accept = METADATA_ACCEPT if metadata_only else None
        return await self.request(
            "GET", resource.path(namespace=namespace), params=params, accept=accept
        )

    async def list_all(self, resource: Resource, **kwargs: Any) -> Object:
        """Every page of a collection merged into one list (``limit`` sets the page size)."""
        kwargs.setdefault("limit", 500)
        first = await self.list(resource, **kwargs)
        items = list(first.get("items") or [])
        token = (first.get("metadata") or {}).get("continue", "")
        while token:
            page = await self.list(resource, **{**kwargs, "continue_": token})
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue", "")
        first["items"] = items
        first.setdefault("metadata", {}).pop("continue", None)
        return first

    async def create(
        self,
        resource: Resource,
        body: Object,
        *,
        namespace: str = "",
        subresource: str = "",
        decode: bool = True,
    ) -> Object:
        """POST ``body``; ``decode=False`` as for ``update`` (an event writer's answer)."""
        ns = namespace or _namespace_of(resource, body)
        name = (body.get("metadata") or {}).get("name", "") if subresource else ""
        path = resource.path(namespace=ns, name=name, subresource=subresource)
        return await self.request("POST", path, body=body, decode=decode)

    async def update(
        self,
        resource: Resource,
        body: Object,
        *,
        namespace: str = "",
        subresource: str = "",
        decode: bool = True,
    ) -> Object:
        """PUT ``body`` (its ``metadata.resourceVersion`` makes it a compare-and-swap).

        ``decode=False``: the answer is not decoded and ``{}`` returned, for a
        caller that never reads it (a kubelet's status write: a whole pod).
        """
        meta = body.get("metadata") or {}
        ns = namespace or _namespace_of(resource, body)
        path = resource.path(namespace=ns, name=meta.get("name", ""), subresource=subresource)
        return await self.request("PUT", path, body=body, decode=decode)

    async def update_status(
        self, resource: Resource, body: Object, *, decode: bool = True
    ) -> Object:
        return await self.update(resource, body, subresource="status", decode=decode)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str = "",
        patch_type: PatchType = "merge",
        subresource: str = "",
    ) -> Object:
        path = resource.path(namespace=namespace, name=name, subresource=subresource)
        return await self.request(
            "PATCH", path, body=patch, content_type=PATCH_CONTENT_TYPES[patch_type]
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str = "",
        propagation_policy: PropagationPolicy = "",
        grace_period_seconds: int | None = None,
        uid: str = "",
        resource_version: str = "",
    ) -> Object:
        """Delete one object; the answer is the object (still being deleted) or a Status."""
        body = _delete_options(propagation_policy, grace_period_seconds, uid, resource_version)
        path = resource.path(namespace=namespace, name=name)
        return await self.request("DELETE", path, body=body)

    async def delete_collection(
        self,
        resource: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        propagation_policy: PropagationPolicy = "",
    ) -> Object:
        body = _delete_options(propagation_policy, None, "", "")
        params = _params(labelSelector=label_selector)
        path = resource.path(namespace=namespace)
        return await self.request("DELETE", path, body=body, params=params)

    def watch(
        self,
        resource: Resource,
        *,
        namespace: str = "",
        resource_version: str = "",
        timeout_seconds: int = 0,
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = False,
        metadata_only: bool = False,
    ) -> AsyncIterator[Object]:
        """Events of the collection until the server ends the stream.

        Raises ``ApiError`` for a refused watch and for an ``ERROR`` event.
        Nothing is sent before the first event is asked for.
        """
        params = _params(
            watch="true",
            resourceVersion=resource_version,
            timeoutSeconds=str(timeout_seconds) if timeout_seconds else "",
            labelSelector=label_selector,
            fieldSelector=field_selector,
            allowWatchBookmarks="true" if allow_bookmarks else "",
        )
        accept = METADATA_ACCEPT if metadata_only else "application/json"
        path = resource.path(namespace=namespace)
        opening: Callable[[], Awaitable[_Body]]
        if self._direct is not None:
            opening = functools.partial(
                self._open_direct, self._direct, _target(path, params), accept
            )
        elif self._pool is not None:
            opening = functools.partial(self._open_pool, self._pool, _target(path, params), accept)
        else:
            opening = functools.partial(self._open_httpx, path, params, accept)
        return _watch_events(opening)

    async def _open_direct(
        self, direct: transport.InProcessTransport, target: str, accept: str
    ) -> _Body:
        """A watch in process: the app's chunks straight from ``InProcessTransport.stream``.

        No httpx request, response or byte-stream layers between the app and
        the decoder, and no coroutine per chunk but ``next_chunk``'s.
        """
        headers = [*self._direct_headers, (b"accept", accept.encode())]
        stream = await direct.stream("GET", target, headers, self.extensions)
        if stream.status < 300:
            return stream.next_chunk, stream.aclose
        try:
            raise _error(httpx.Response(stream.status, content=await stream.read()))
        finally:
            await stream.aclose()

    async def _open_pool(self, pool: http1.Pool, target: str, accept: str) -> _Body:
        """A watch over HTTPS (``client.http1``); an early exit drops the connection."""
        headers = [*self._pool_headers, (b"accept", accept.encode())]
        stream = await pool.stream("GET", target, headers)
        if stream.status < 300:

            async def close() -> None:
                stream.close()

            return functools.partial(anext, stream, None), close
        try:
            raise _error(_response(stream.status, stream.reason, await stream.read()))
        finally:
            stream.close()

    async def _open_httpx(self, path: str, params: Mapping[str, str], accept: str) -> _Body:
        """A watch through httpx (a client built on another httpx transport)."""
        request = self.http.build_request(
            "GET",
            path,
            params=params,
            headers={"Accept": accept},
            timeout=httpx.Timeout(DEFAULT_TIMEOUT, read=None),
            extensions=self.extensions or None,
        )
        response = await self.http.send(request, stream=True)
        if response.status_code < 300:
            return functools.partial(anext, response.aiter_bytes(), None), response.aclose
        try:
            await response.aread()
            raise _error(response)
        finally:
            await response.aclose()

    # ----- discovery --------------------------------------------------------

    async def discover(self) -> builtins.list[Resource]:
        """Every served resource at its preferred version (aggregated discovery, v2)."""
        found: builtins.list[Resource] = []
        for root in ("/api", "/apis"):
            document = await self.request("GET", root, accept=_AGGREGATED_ACCEPT)
            found.extend(_resources_from_discovery(document.get("items") or []))
        return found

    # ----- plumbing ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str | None = None,
        decode: bool = True,
    ) -> Object:
        """One request; the decoded JSON answer (``{}`` unless ``decode``), or ``ApiError``
        for a non-2xx status.

        As client-go's request: a 429 or 5xx answer with a Retry-After of whole
        seconds (API Priority and Fairness' rejections, a server shutting down) is
        sent again after that long, up to ``MAX_RETRIES`` times.
        """
        content = None if body is None else orjson.dumps(body)
        for attempt in range(MAX_RETRIES + 1):
            if self._direct is not None:
                answer = await self._request_direct(
                    self._direct, method, path, content, params, content_type, accept
                )
            elif self._pool is not None:
                answer = await self._request_pool(
                    self._pool, method, path, content, params, content_type, accept
                )
            else:
                answer = await self._request_httpx(
                    method, path, content, params, content_type, accept
                )
            if answer.status < 300:
                decoded: Object = orjson.loads(answer.body) if answer.body and decode else {}
                return decoded
            delay = retry_delay(answer.status, answer.retry_after)
            if delay is None or attempt == MAX_RETRIES:
                raise _error(_response(answer.status, answer.reason, answer.body))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _request_httpx(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        content_type: str,
        accept: str | None,
    ) -> http1.Response:
        headers = {"Accept": accept or "application/json"}
        if content is not None:
            headers["Content-Type"] = content_type
        async with self._in_flight:
            response = await self.http.request(
                method,
                path,
                content=content,
                params=params,
                headers=headers,
                extensions=self.extensions or None,
            )
        reason = response.reason_phrase.encode("latin-1", "replace")
        retry_after = response.headers.get("retry-after", "").encode("latin-1", "replace")
        return http1.Response(response.status_code, reason, response.content, retry_after)

    async def _request_direct(
        self,
        direct: transport.InProcessTransport,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        content_type: str,
        accept: str | None,
    ) -> http1.Response:
        """``request`` in process: the same request, without httpx's URL and message objects."""
        headers = [*self._direct_headers, (b"accept", (accept or "application/json").encode())]
        if content is not None:
            headers.append((b"content-type", content_type.encode()))
            headers.append((b"content-length", str(len(content)).encode()))
        target = _target(path, params)
        status, answer, retry_after = await direct.call(
            method, target, headers, content or b"", self.extensions
        )
        return http1.Response(status, b"", answer, retry_after)

    async def _request_pool(
        self,
        pool: http1.Pool,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        content_type: str,
        accept: str | None,
    ) -> http1.Response:
        """``request`` over HTTPS (``client.http1``), at most MAX_IN_FLIGHT at a time."""
        headers = [*self._pool_headers, (b"accept", (accept or "application/json").encode())]
        if content is not None:
            headers.append((b"content-type", content_type.encode()))
        target = _target(path, params)
        async with self._in_flight:
            return await pool.request(method, target, headers, content)


async def _watch_events(opening: Callable[[], Awaitable[_Body]]) -> AsyncIterator[Object]:
    """The events of a watch, whichever transport reads its body; closes the body at the end.

    ``opening`` sends the request and answers the body's ``(next_chunk,
    close)``, or raises ``ApiError`` for a refused watch; it is called at the
    first ``__anext__``, so nothing is sent before an event is asked for. An
    ``ERROR`` event (410 Expired, ...) is raised as ``ApiError``. The body is
    newline-delimited JSON, decoded as bytes (httpx's ``aiter_lines`` decodes
    each chunk to text and scans it for every kind of line break first: a
    large part of an informer's work per event). Our server sends each batch
    of events as one chunk of whole lines, so such a chunk is decoded as it
    comes; a line split across chunks (TLS records, another server) is
    joined first.
    """
    next_chunk, close = await opening()
    try:
        tail = b""
        ended = False
        while not ended:
            chunk = await next_chunk()
            if chunk is None:  # the body's end; its last line may lack its newline
                ended, chunk, tail = True, tail, b""
            elif tail or not chunk.endswith(b"\n"):
                chunk, _, tail = (tail + chunk).rpartition(b"\n")
            # One whole line (the usual live event) is decoded as it is, without a copy.
            lines = (chunk,) if chunk.find(b"\n") == len(chunk) - 1 else chunk.split(b"\n")
            for line in lines:
                if not line or line.isspace():
                    continue
                event = orjson.loads(line)
                if event.get("type") == "ERROR":
                    raise ApiError(event.get("object") or {})
                yield event
    finally:
        await close()


def _target(path: str, params: Mapping[str, str] | None) -> str:
    """The request target: the path, quoted where needed, and the query."""
    target = path if _PATH_SAFE.fullmatch(path) else urllib.parse.quote(path, safe=_PATH_SAFE_CHARS)
    if params:
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        target += ("&" if "?" in target else "?") + query
    return target


def _response(status: int, reason: bytes, body: bytes) -> httpx.Response:
    """An httpx response for ``_error``, with the reason phrase the server sent (as httpx keeps it)."""
    if not reason:  # in process nothing sends one: httpx then names the status's own
        return httpx.Response(status, content=body)
    return httpx.Response(status, content=body, extensions={"reason_phrase": reason})


def _quote(segment: str) -> str:
    if _UNRESERVED.fullmatch(segment):
        return segment
    return urllib.parse.quote(segment, safe="")


def _params(**values: str) -> dict[str, str]:
    return {key: value for key, value in values.items() if value}


def _namespace_of(resource: Resource, body: Object) -> str:
    if not resource.namespaced:
        return ""
    return str((body.get("metadata") or {}).get("namespace") or "")


def _delete_options(
    policy: str, grace: int | None, uid: str, resource_version: str
) -> Object | None:
    options: Object = {}
    if policy:
        options["propagationPolicy"] = policy
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    preconditions = _params(uid=uid, resourceVersion=resource_version)
    if preconditions:
        options["preconditions"] = preconditions
    if not options:
        return None
    return {"kind": "DeleteOptions", "apiVersion": "v1", **options}


def retry_delay(status: int, retry_after: bytes) -> int | None:
    """client-go's checkWait: seconds to wait before sending a request again, or None.

    Only a 429 or a 5xx answer with a Retry-After of whole seconds asks for it.
    """
    if status != 429 and status < 500:
        return None
    value = retry_after.strip()
    if not value.isdigit():
        return None
    return int(value)


def _error(response: httpx.Response) -> ApiError:
    """The Status the server sent, or one made up from the HTTP status when there is none."""
    try:
        status = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        text = response.content.decode("utf-8", "replace").strip()
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": response.status_code,
            "reason": response.reason_phrase.replace(" ", ""),
            "message": text or response.reason_phrase,
        }
    status.setdefault("code", response.status_code)
    return ApiError(status)


def _resources_from_discovery(groups: Iterable[Object]) -> list[Resource]:
    found = []
    for group in groups:
        versions = group.get("versions") or []
        if not versions:
            continue
        preferred = versions[0]  # aggregated discovery lists the preferred version first
        name = (group.get("metadata") or {}).get("name", "")
        for entry in preferred.get("resources") or []:
            kind = (entry.get("responseKind") or {}).get("kind", "")
            found.append(
                Resource(
                    name,
                    preferred["version"],
                    entry["resource"],
                    entry.get("scope") == "Namespaced",
                    kind,
                    frozenset(entry.get("verbs") or ()),
                )
            )
    return found
