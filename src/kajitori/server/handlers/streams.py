"""Streaming subresources: ``pods/log``, ``exec``, ``attach``, ``portforward``, and proxies.

The API server does not run containers: it finds the pod's node, checks the
request as upstream's registry does (pkg/registry/core/pod/strategy.go
``LogLocation``/``ExecLocation``/``AttachLocation``/``PortForwardLocation``,
pkg/registry/core/node ``ResourceLocation``), and relays to the node's
kubelet API (``kubelet/server.py``) over HTTPS as
``kube-apiserver-kubelet-client``:

* ``pods/log`` — a GET whose body is the kubelet's ``/containerLogs``, copied
  chunk by chunk (``-f`` streams until either side stops);
* ``pods/exec``, ``pods/attach``, ``pods/portforward`` — a WebSocket upgrade
  (kubectl 1.30+ and the Python client speak ``v5``/``v4.channel.k8s.io``):
  the API server opens a WebSocket to the kubelet offering the client's
  subprotocols, accepts the client's with the kubelet's choice, and pipes
  messages both ways untouched;
* ``nodes/proxy`` — any HTTP request relayed to the kubelet's path;
  ``pods/proxy`` — relayed to the pod IP (``name[:port]``), as upstream;
  ``services/proxy`` — relayed to a random ready address of the Service's
  Endpoints for the port asked (``[scheme:]name[:port]``, port by number or
  name), as upstream's service ResourceLocation. On ``up --runtime oci``
  the host routes pod networks to the nodes (decision 0031), so pod IPs are
  reachable from the API server.

The node is reached at its preferred address (InternalIP, ExternalIP, then
Hostname: kubeadm's ``--kubelet-preferred-address-types``) and
``status.daemonEndpoints.kubeletEndpoint.Port``; the kubelet's serving
certificate is verified against the cluster CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import ssl
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kajitori.client import tls_sessions
from kajitori.client import websocket as ws
from kajitori.machinery import errors
from kajitori.server import asgi
from kajitori.server.request_info import RequestInfo, parse_bool

if TYPE_CHECKING:
    import httpx

Object = dict[str, Any]

# (group, resource) → the streaming subresources served here.
SUBRESOURCES = {
    "pods": frozenset(("log", "exec", "attach", "portforward", "proxy")),
    "nodes": frozenset(("proxy",)),
    "services": frozenset(("proxy",)),
}
# How discovery lists them, as upstream does: subresource → (kind, verbs).
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")
_DISCOVERY: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "pods": {
        "attach": ("PodAttachOptions", ("create", "get")),
        "exec": ("PodExecOptions", ("create", "get")),
        "log": ("Pod", ("get",)),
        "portforward": ("PodPortForwardOptions", ("create", "get")),
        "proxy": ("PodProxyOptions", _PROXY_VERBS),
    },
    "nodes": {"proxy": ("NodeProxyOptions", _PROXY_VERBS)},
    "services": {"proxy": ("ServiceProxyOptions", _PROXY_VERBS)},
}
# Upgrades that upstream (1.35+, AuthorizePodWebsocketUpgradeCreatePermission)
# also authorizes as "create", as their SPDY POSTs always were.
CREATE_ON_UPGRADE = frozenset(("exec", "attach", "portforward"))
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
PREFERRED_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
_LOG_READ_LIMIT = 64 * 1024
_HOP_HEADERS = frozenset(
    (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"host", b"content-length")
)

StoreLookup = Callable[[str, str, str], Any]


def handles(info: RequestInfo) -> bool:
    return not info.api_group and info.subresource in SUBRESOURCES.get(info.resource, ())


def discovery(group: str, plural: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The streaming subresources of a core resource for discovery: name → (kind, verbs)."""
    return {} if group else _DISCOVERY.get(plural, {})


def needs_create(info: RequestInfo, websocket: bool) -> bool:
    return websocket and info.resource == "pods" and info.subresource in CREATE_ON_UPGRADE


@dataclasses.dataclass
class KubeletClient:
    """How the API server reaches kubelets: TLS with its client certificate."""

    ssl_context: ssl.SSLContext
    timeout: float = 10.0

    @classmethod
    def from_pem(cls, *, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> KubeletClient:
        # Resumes its TLS session with each kubelet: every exec is a new connection (tls_sessions).
        context = tls_sessions.client_context(cadata=ca_pem.decode("ascii"))
        # Kubelet certificates name the node and its IPs; we dial an IP.
        context.check_hostname = False
        with tempfile.TemporaryDirectory(prefix="kajitori-kubelet-client-") as tmp:
            cert, key = Path(tmp) / "c.crt", Path(tmp) / "c.key"
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
            context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["http/1.1"])
        return cls(context)


@dataclasses.dataclass
class StreamRequest:
    request: asgi.Request
    send: asgi.Send
    info: RequestInfo
    query: dict[str, list[str]]
    lookup: StoreLookup
    kubelet: KubeletClient | None

    @property
    def websocket(self) -> bool:
        return bool(self.request.scope.get("type") == "websocket")


async def serve(req: StreamRequest) -> None:
    info = req.info
    if info.resource == "nodes":
        await _node_proxy(req)
    elif info.resource == "services":
        await _service_proxy(req)
    elif info.subresource == "log":
        await _pod_log(req)
    elif info.subresource in ("exec", "attach", "portforward"):
        await _pod_upgrade(req)
    else:
        await _pod_proxy(req)


# ----- objects and addresses ---------------------------------------------------------


async def _get(req: StreamRequest, plural: str, namespace: str, name: str) -> Object:
    store = req.lookup("", "v1", plural)
    assert store is not None
    obj: Object = await store.get(namespace, name)
    return obj


def _gr(subresource: str) -> errors.GroupResource:
    return errors.GroupResource("", f"pods/{subresource}")


async def _kubelet_of(req: StreamRequest, node_name: str) -> tuple[str, int]:
    if req.kubelet is None:
        raise errors.service_unavailable("the API server has no kubelet client configured")
    node = await _get(req, "nodes", "", node_name)
    return node_address(node)


def node_address(node: Object) -> tuple[str, int]:
    """(host, port) of the node's kubelet, by upstream's preferred address types."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or ()
    port = int(
        ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0
    )
    for kind in PREFERRED_ADDRESS_TYPES:
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return address["address"], port or 10250
    name = node["metadata"]["name"]
    raise errors.bad_request(f"no preferred addresses found; known addresses: [] for node {name}")


def _names(containers: Any) -> str:
    return "[" + " ".join(c.get("name", "") for c in containers or ()) + "]"


def validate_container(pod: Object, container: str) -> str:
    """The container a request means (upstream's ValidateContainer), or a 400."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    init = spec.get("initContainers") or []
    ephemeral = spec.get("ephemeralContainers") or []
    name = pod["metadata"]["name"]
    if not container:
        if len(containers) == 1:
            chosen: str = containers[0]["name"]
            return chosen
        message = (
            f"a container name must be specified for pod {name}, "
            f"choose one of: {_names(containers)}"
        )
        if init:
            message += f" or one of the init containers: {_names(init)}"
        if ephemeral:
            message += f" or one of the ephemeral containers: {_names(ephemeral)}"
        raise errors.bad_request(message)
    if not any(c.get("name") == container for c in (*containers, *init, *ephemeral)):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def _node_of(pod: Object) -> str:
    node: str = (pod.get("spec") or {}).get("nodeName") or ""
    if not node:
        raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
    return node


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _true(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name)
    return parse_bool(values[0]) if values else False


def _server_response(
    code: int, body: bytes, gr: errors.GroupResource, name: str
) -> errors.StatusError:
    """A kubelet's non-2xx answer as upstream's NewGenericServerResponse renders it."""
    text = body.decode("utf-8", "replace").strip()
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    reasons.update({405: "MethodNotAllowed", 409: "Conflict", 500: "InternalError"})
    reasons.update({503: "ServiceUnavailable", 504: "Timeout"})
    message = (
        text
        or f"the server responded with the status code {code} but did not return more information"
    )
    return errors.StatusError(
        code,
        reasons.get(code, "Unknown"),
        message,
        name=name,
        kind=gr.resource,
        causes=[errors.StatusCause("UnexpectedServerResponse", text)] if text else [],
    )


# ----- pods/log -------------------------------------------------------------------------


def _log_query(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    """PodLogOptions checked as upstream's validation, then passed on as the kubelet names them."""
    params: list[tuple[str, str]] = []
    for flag in ("follow", "previous", "timestamps"):
        if _true(query, flag):
            params.append((flag, "true"))
    numbers = {}
    for name in ("sinceSeconds", "tailLines", "limitBytes"):
        text = _one(query, name)
        if text:
            try:
                numbers[name] = int(text)
            except ValueError:
                raise errors.bad_request(f"{name}: Invalid value: {text!r}") from None
    if numbers.get("tailLines", 0) < 0:
        raise errors.bad_request("tailLines: Invalid value: must be greater than or equal to 0")
    if "limitBytes" in numbers and numbers["limitBytes"] < 1:
        raise errors.bad_request("limitBytes: Invalid value: must be greater than 0")
    if "sinceSeconds" in numbers and numbers["sinceSeconds"] < 1:
        raise errors.bad_request("sinceSeconds: Invalid value: must be greater than 0")
    if "sinceSeconds" in numbers and _one(query, "sinceTime"):
        raise errors.bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
    params += [(k, str(v)) for k, v in numbers.items()]
    if _one(query, "sinceTime"):
        params.append(("sinceTime", _one(query, "sinceTime")))
    return params


async def _pod_log(req: StreamRequest) -> None:
    import httpx  # only when a log is asked for: it costs 0.1 s of every server's start

    info = req.info
    pod = await _get(req, "pods", info.namespace, info.name)
    container = validate_container(pod, _one(req.query, "container"))
    params = _log_query(req.query)
    host, port = await _kubelet_of(req, _node_of(pod))
    path = "/containerLogs/" + "/".join(
        urllib.parse.quote(p, safe="") for p in (info.namespace, info.name, container)
    )
    assert req.kubelet is not None
    # No read timeout (a followed log may be quiet for hours), but a bounded connect.
    timeout = httpx.Timeout(None, connect=req.kubelet.timeout)
    async with httpx.AsyncClient(verify=req.kubelet.ssl_context, timeout=timeout) as http:
        try:
            async with http.stream(
                "GET", f"https://{host}:{port}{path}", params=tuple(params)
            ) as response:
                if not 200 <= response.status_code < 300:
                    body = await _read_limited(response)
                    raise _server_response(response.status_code, body, _gr("log"), info.name)
                await asgi.start_stream(req.send, 200, "text/plain")
                await _copy_until_disconnect(req, response)
        except httpx.TransportError as exc:
            raise _unreachable(host, port, exc) from None


async def _read_limited(response: httpx.Response) -> bytes:
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _LOG_READ_LIMIT:
            break
    return data[:_LOG_READ_LIMIT]


async def _copy_until_disconnect(req: StreamRequest, response: httpx.Response) -> None:
    import httpx

    async def copy() -> None:
        async for chunk in response.aiter_raw():
            if chunk:
                await asgi.send_chunk(req.send, chunk)
        await asgi.send_chunk(req.send, b"", more=False)

    async def disconnected() -> None:
        while (await req.request.receive())["type"] != "http.disconnect":
            pass

    copier = asyncio.ensure_future(copy())
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({copier, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        copier.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError, httpx.HTTPError):
            await copier


def _unreachable(host: str, port: int, exc: Exception) -> errors.StatusError:
    return errors.internal_error(f"error dialing backend: dial tcp {host}:{port}: {exc}")


# ----- exec, attach, portforward ----------------------------------------------------------


def _exec_params(req: StreamRequest, *, attach: bool) -> list[tuple[str, str]]:
    query = req.query
    params: list[tuple[str, str]] = []
    command = query.get("command") or []
    if not attach and not command:
        raise errors.bad_request("you must specify at least one command for the container")
    for flag, kubelet_name in (
        ("stdin", "input"),
        ("stdout", "output"),
        ("stderr", "error"),
        ("tty", "tty"),
    ):
        if _true(query, flag):
            params.append((kubelet_name, "1"))
    if not any(name in ("input", "output", "error") for name, _ in params):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    params += [("command", c) for c in command]
    return params


async def _pod_upgrade(req: StreamRequest) -> None:
    info = req.info
    pod = await _get(req, "pods", info.namespace, info.name)
    kind = info.subresource
    if kind == "portforward":
        ports = req.query.get("ports") or []
        path = f"/portForward/{info.namespace}/{info.name}"
        params = [("ports", p) for p in ports]
    else:
        container = validate_container(pod, _one(req.query, "container"))
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            verb = "exec into" if kind == "exec" else "attach to"
            raise errors.bad_request(
                f"cannot {verb} a container in a completed pod; current phase is {phase}"
            )
        params = _exec_params(req, attach=kind == "attach")
        path = f"/{kind}/{info.namespace}/{info.name}/{container}"
    if not req.websocket:
        # Checked after the pod's own checks, as upstream's registry validates before the
        # proxy upgrades: kubectl, retrying with SPDY after a refused WebSocket, then shows
        # why (e.g. a completed pod) rather than this.
        raise errors.bad_request("Upgrade request required")
    host, port = await _kubelet_of(req, _node_of(pod))
    assert req.kubelet is not None
    target = urllib.parse.quote(path) + "?" + urllib.parse.urlencode(params)
    offered = req.request.scope.get("subprotocols") or []
    try:
        upstream = await ws.connect(
            host,
            port,
            target,
            ssl_context=req.kubelet.ssl_context,
            subprotocols=offered,
            timeout=req.kubelet.timeout,
        )
    except ws.HandshakeError as exc:
        raise _server_response(exc.status_code, exc.body, _gr(kind), info.name) from None
    except (TimeoutError, OSError) as exc:
        raise _unreachable(host, port, exc) from None
    try:
        message = await req.request.receive()
        if message["type"] != "websocket.connect":
            return
        await req.send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        await _pipe(req, upstream)
    finally:
        await upstream.close()


async def _pipe(req: StreamRequest, upstream: ws.WebSocket) -> None:
    """Messages both ways until either side closes."""

    async def down() -> None:
        while (data := await upstream.receive()) is not None:
            key = "text" if isinstance(data, str) else "bytes"
            await req.send({"type": "websocket.send", key: data})
        with contextlib.suppress(OSError, RuntimeError):
            await req.send({"type": "websocket.close", "code": 1000})

    async def up() -> None:
        while True:
            message = await req.request.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = message.get("text") or ""
            await upstream.send(data)

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await task


# ----- proxies ---------------------------------------------------------------------------


def _proxy_path(info: RequestInfo) -> str:
    rest = info.parts[3:] if len(info.parts) > 3 else ()
    path = "/" + "/".join(rest)
    if info.path.endswith("/") and rest:
        path += "/"
    return path


async def _node_proxy(req: StreamRequest) -> None:
    if req.websocket:
        raise errors.bad_request("websocket proxying to nodes is not supported")
    node_name = req.info.name.split(":", 1)[0]
    host, port = await _kubelet_of(req, node_name)
    assert req.kubelet is not None
    await _relay(req, f"https://{host}:{port}{_proxy_path(req.info)}", req.kubelet.ssl_context)


async def _pod_proxy(req: StreamRequest) -> None:
    if req.websocket:
        raise errors.bad_request("websocket proxying to pods is not supported")
    name, _, port = req.info.name.partition(":")
    scheme = "http"
    if name in ("http", "https") and ":" in port:  # scheme:name:port
        scheme, (name, _, port) = name, port.partition(":")
    pod = await _get(req, "pods", req.info.namespace, name)
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.service_unavailable(f"address not allowed: pod {name} has no IP")
    target = f"{scheme}://{ip}:{port or 80}{_proxy_path(req.info)}"
    await _relay(req, target, False)


async def _service_proxy(req: StreamRequest) -> None:
    if req.websocket:
        raise errors.bad_request("websocket proxying to services is not supported")
    scheme, name, port = split_scheme_name_port(req.info.name)
    namespace = req.info.namespace
    address, target_port = await service_location(req, namespace, name, port)
    host = f"[{address}]" if ":" in address else address
    target = f"{scheme or 'http'}://{host}:{target_port}{_proxy_path(req.info)}"
    await _relay(req, target, False)


def split_scheme_name_port(id_: str) -> tuple[str, str, str]:
    """``name``, ``name:port`` or ``scheme:name:port`` (upstream's SplitSchemeNamePort), or a 400."""
    parts = id_.split(":")
    scheme, name, port = "", "", ""
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        name, port = parts
    elif len(parts) == 3:
        scheme, name, port = parts
    if not name or scheme not in ("", "http", "https"):
        raise errors.bad_request(f'invalid service request "{id_}"')
    return scheme, name, port


async def service_location(
    req: StreamRequest, namespace: str, name: str, port: str
) -> tuple[str, int]:
    """A random ready endpoint (ip, port) of the Service port, as upstream's ResourceLocation.

    A port number is first turned into the Service port's name (503 if the
    Service has none such); the Endpoints' ready ``addresses`` carry the
    ports by that name. Only addresses whose target Pod still has that IP
    are taken; none → 503 ``no endpoints available``.
    """
    if port.isdigit():
        service = await _get(req, "services", namespace, name)
        ports = (service.get("spec") or {}).get("ports") or ()
        match = next((p for p in ports if p.get("port") == int(port)), None)
        if match is None:
            raise errors.service_unavailable(
                f'no service port {int(port)} found for service "{name}"'
            )
        port = match.get("name") or ""
    endpoints = await _get(req, "endpoints", namespace, name)
    subsets = list(endpoints.get("subsets") or ())
    random.shuffle(subsets)
    for subset in subsets:
        addresses = list(subset.get("addresses") or ())
        random.shuffle(addresses)
        for endpoint_port in subset.get("ports") or ():
            if (endpoint_port.get("name") or "") != port:
                continue
            for address in addresses:
                if await _valid_address(req, namespace, address):
                    return address["ip"], int(endpoint_port["port"])
    raise errors.service_unavailable(f'no endpoints available for service "{name}"')


async def _valid_address(req: StreamRequest, namespace: str, address: Object) -> bool:
    """The address names a Pod of the namespace that still has its IP (upstream's isValidAddress)."""
    ref = address.get("targetRef") or {}
    if ref.get("kind") != "Pod" or ref.get("namespace", namespace) != namespace:
        return False
    try:
        pod = await _get(req, "pods", namespace, ref.get("name") or "")
    except errors.StatusError:
        return False
    ips = [p.get("ip") for p in (pod.get("status") or {}).get("podIPs") or ()]
    return address.get("ip") in ips


async def _relay(req: StreamRequest, url: str, verify: ssl.SSLContext | bool) -> None:
    import httpx

    request = req.request
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = [(k, v) for k, v in request.scope["headers"] if k not in _HOP_HEADERS]
    headers = [(k, v) for k, v in headers if k != b"authorization"]
    body = await request.body()
    async with httpx.AsyncClient(verify=verify, timeout=30.0) as http:
        try:
            response = await http.request(
                request.method, url + (f"?{query}" if query else ""), headers=headers, content=body
            )
        except httpx.TransportError as exc:
            raise errors.service_unavailable(f"error trying to reach service: {exc}") from None
    out = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in response.headers.raw
        if k.lower() not in _HOP_HEADERS and k.lower() != b"content-type"
    ]
    await asgi.send_response(
        req.send,
        response.status_code,
        response.content,
        response.headers.get("content-type", "application/octet-stream"),
        headers=out,
    )
