"""The kubelet's own HTTPS API (upstream's port 10250), as an ASGI app.

Upstream: pkg/kubelet/server/server.go. The API server reaches a node here
for ``kubectl logs``, ``exec``, ``attach``, ``port-forward`` and
``nodes/proxy``; so can anyone the cluster authorizes on ``nodes/proxy``.
``cmd/kubelet.py`` serves it over TLS (a serving certificate from the
cluster CA for the node's address and name, client certificates verified
against that CA) with ``server/http.py``; the kubelet package itself may not
import the server, so this module is only the app.

Every request is authenticated and authorized as upstream's webhook modes do
(pkg/kubelet/server/auth.go): a verified client certificate names the user
(CN) and groups (O); a bearer token is checked with a TokenReview; the
request is then a ``SubjectAccessReview`` on ``nodes/<subresource>`` of this
node (``proxy`` for anything but stats, metrics, logs and spec), answered by
the API server and cached (5 minutes when allowed, 30 s when denied, as the
kubelet's webhook defaults).

Endpoints: ``/healthz``; ``/pods`` (the node's pods, as a PodList);
``/containerLogs/{ns}/{pod}/{container}``; ``/exec`` and ``/attach``
``/{ns}/{pod}[/{uid}]/{container}`` over WebSocket with the
``v5``/``v4``/``v3``/``v2``/``channel.k8s.io`` protocols
(``client/websocket.py`` describes the channels); ``/portForward/{ns}/{pod}``
over WebSocket (``v4.channel.k8s.io``/``portforward.k8s.io``: per port, a data
and an error channel, each opened by the port number in two bytes);
``/metrics/resource`` and ``/stats/summary`` (``resource_metrics.py``), when
the node is given its containers' usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson
from cryptography import x509
from cryptography.x509 import oid

from kajitori.client import rest
from kajitori.client import websocket as ws
from kajitori.kubelet import resource_metrics, spdy, streaming

log = logging.getLogger(__name__)

Object = dict[str, Any]
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SUBJECT_ACCESS_REVIEWS = rest.Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", False, "SubjectAccessReview"
)
TOKEN_REVIEWS = rest.Resource("authentication.k8s.io", "v1", "tokenreviews", False, "TokenReview")
# The kubelet's --authorization-webhook-cache-{authorized,unauthorized}-ttl defaults.
ALLOWED_TTL = 300.0
DENIED_TTL = 30.0
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}
_VERBS["DELETE"] = "delete"
# Paths with subresources of their own; everything else is nodes/proxy (auth.go).
_SUBRESOURCES = {"stats": "stats", "metrics": "metrics", "logs": "log", "spec": "spec"}


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


class Authenticator(Protocol):
    async def authenticate(self, scope: Scope) -> User | None: ...


class Authorizer(Protocol):
    async def allowed(self, user: User, verb: str, subresource: str) -> bool: ...


# ----- authentication and authorization -----------------------------------------------


def user_from_certificate(pem: str | bytes) -> User:
    """CN and O of a (TLS-verified) client certificate."""
    cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    subject = cert.subject
    names = subject.get_attributes_for_oid(oid.NameOID.COMMON_NAME)
    groups = subject.get_attributes_for_oid(oid.NameOID.ORGANIZATION_NAME)
    return User(str(names[0].value) if names else "", tuple(str(g.value) for g in groups))


class WebhookAuthenticator:
    """Client certificates (verified by TLS), then bearer tokens through TokenReview."""

    def __init__(self, client: rest.Client) -> None:
        self.client = client

    async def authenticate(self, scope: Scope) -> User | None:
        chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain")
        if chain:
            return user_from_certificate(chain[0])
        token = _bearer_token(scope)
        if not token:
            return None
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        answer = await self.client.create(TOKEN_REVIEWS, review)
        status = answer.get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        extra = tuple((k, tuple(v)) for k, v in sorted((user.get("extra") or {}).items()))
        return User(
            user.get("username", ""), tuple(user.get("groups") or ()), user.get("uid", ""), extra
        )


class WebhookAuthorizer:
    """SubjectAccessReviews on ``nodes/<subresource>`` of ``node``, with upstream's cache."""

    def __init__(
        self, client: rest.Client, node: str, *, clock: Callable[[], float] = time.monotonic
    ):
        self.client = client
        self.node = node
        self.clock = clock
        self._cache: dict[tuple[Any, ...], tuple[bool, float]] = {}

    async def allowed(self, user: User, verb: str, subresource: str) -> bool:
        key = (user, verb, subresource)
        cached = self._cache.get(key)
        now = self.clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.name,
                "groups": list(user.groups),
                "uid": user.uid,
                "extra": {k: list(v) for k, v in user.extra},
                "resourceAttributes": {
                    "verb": verb,
                    "group": "",
                    "version": "v1",
                    "resource": "nodes",
                    "subresource": subresource,
                    "name": self.node,
                },
            },
        }
        answer = await self.client.create(SUBJECT_ACCESS_REVIEWS, review)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (allowed, now + (ALLOWED_TTL if allowed else DENIED_TTL))
        return allowed


def _bearer_token(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer":
                return token.strip()
    return ""


def request_subresource(path: str) -> str:
    """The ``nodes/<subresource>`` a kubelet path is authorized as."""
    first = path.strip("/").split("/", 1)[0]
    return _SUBRESOURCES.get(first, "proxy")


# ----- the app ----------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class KubeletServer:
    """The ASGI app of one node's kubelet API."""

    def __init__(
        self,
        node_name: str,
        *,
        get_pod: Callable[[str, str], Object | None],
        list_pods: Callable[[], list[Object]],
        runtime: streaming.StreamingRuntime,
        authenticator: Authenticator,
        authorizer: Authorizer,
        resource_metrics: resource_metrics.ResourceMetrics | None = None,
    ) -> None:
        self.node_name = node_name
        self.resource_metrics = resource_metrics
        self.get_pod = get_pod
        self.list_pods = list_pods
        self.runtime = runtime
        self.authenticator = authenticator
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        websocket = scope["type"] == "websocket"
        respond = _denial(send) if websocket else send
        try:
            await self._check_access(scope)
            await self._route(scope, receive, send, websocket)
        except _HttpError as exc:
            await _plain(respond, exc.code, exc.message)
        except streaming.StreamingError as exc:
            await _plain(respond, exc.code, exc.message)

    async def _check_access(self, scope: Scope) -> None:
        user = await self.authenticator.authenticate(scope)
        if user is None:
            raise _HttpError(401, "Unauthorized")
        method = scope.get("method", "GET")
        verb = _VERBS.get(method, method.lower())
        subresource = request_subresource(scope["path"])
        if not await self.authorizer.allowed(user, verb, subresource):
            raise _HttpError(
                403,
                f"Forbidden (user={user.name}, verb={verb}, resource=nodes, "
                f"subresource={subresource})",
            )

    async def _route(self, scope: Scope, receive: Receive, send: Send, websocket: bool) -> None:
        parts = [urllib.parse.unquote(p) for p in scope["path"].strip("/").split("/")]
        query = urllib.parse.parse_qs(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        head = parts[0] if parts else ""
        if head == "healthz" and not websocket:
            await _plain(send, 200, "ok")
        elif head == "pods" and len(parts) == 1 and not websocket:
            await self._pods(send)
        elif parts == ["metrics", "resource"] and self.resource_metrics and not websocket:
            body = self.resource_metrics.prometheus()
            await _respond(send, 200, body, resource_metrics.PROMETHEUS_CONTENT_TYPE)
        elif parts == ["stats", "summary"] and self.resource_metrics and not websocket:
            summary = self.resource_metrics.summary()
            await _respond(send, 200, orjson.dumps(summary), b"application/json")
        elif head == "containerLogs" and len(parts) == 4 and not websocket:
            await self._logs(send, parts[1], parts[2], parts[3], query)
        elif head in ("exec", "attach") and len(parts) in (4, 5):
            if not websocket:
                raise _HttpError(400, "Upgrade request required")
            pod = self._pod(parts[1], parts[2], uid=parts[3] if len(parts) == 5 else "")
            await self._exec(scope, receive, send, pod, parts[-1], query, attach=head == "attach")
        elif head == "portForward" and len(parts) in (3, 4):
            if not websocket:
                raise _HttpError(400, "Upgrade request required")
            pod = self._pod(parts[1], parts[2], uid=parts[3] if len(parts) == 4 else "")
            await self._port_forward(receive, send, scope, pod, query)
        else:
            raise _HttpError(404, "404 page not found")

    def _pod(self, namespace: str, name: str, *, uid: str = "") -> Object:
        pod = self.get_pod(namespace, name)
        if pod is None or (pod.get("spec") or {}).get("nodeName") != self.node_name:
            raise _HttpError(404, f'pod "{name}" does not exist')
        if uid and pod["metadata"].get("uid") != uid:
            raise _HttpError(404, f'pod "{name}" does not exist')
        return pod

    async def _pods(self, send: Send) -> None:
        items = [
            p for p in self.list_pods() if (p.get("spec") or {}).get("nodeName") == self.node_name
        ]
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        await _respond(send, 200, orjson.dumps(body), b"application/json")

    # ----- logs ---------------------------------------------------------------------

    async def _logs(
        self, send: Send, namespace: str, name: str, container: str, query: dict[str, list[str]]
    ) -> None:
        pod = self._pod(namespace, name)
        options = log_options(query)
        check_log_status(pod, container, previous=options.previous)
        path = self.runtime.log_path(pod, container, previous=options.previous)
        if path is None or not path.exists():
            raise _HttpError(
                400, f'failed to get container status "{container}": log file not found'
            )

        def running() -> bool:
            latest = self.get_pod(namespace, name)
            return latest is not None and self.runtime.is_running(latest, container)

        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with contextlib.suppress(OSError):
            async for chunk in streaming.read_log(path, options, running=running):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    # ----- exec and attach ---------------------------------------------------------

    async def _exec(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        pod: Object,
        container: str,
        query: dict[str, list[str]],
        *,
        attach: bool,
    ) -> None:
        options = exec_options(query, attach=attach)
        protocol = ws.choose_protocol(scope.get("subprotocols") or (), ws.CHANNEL_PROTOCOLS)
        if protocol is None:
            raise _HttpError(400, "no supported websocket subprotocol was offered")
        _known_container(pod, container)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept", "subprotocol": protocol})
        channel = _Channels(send, protocol)
        try:
            if attach:
                process = await self.runtime.attach(
                    pod, container, stdin=options.stdin, tty=options.tty
                )
            else:
                process = await self.runtime.exec(
                    pod, container, options.command, stdin=options.stdin, tty=options.tty
                )
        except streaming.StreamingError as exc:
            await channel.finish(ws.error_status(exc.message))
            return
        # Upstream writes an empty frame on the lowest output channel: "connected".
        await channel.write(ws.STDOUT if options.stdout else ws.STDERR, b"")
        code = await _pump(receive, channel, process, options)
        await channel.finish(ws.exit_status(code, options.command) if code is not None else None)

    # ----- port-forward ---------------------------------------------------------------

    async def _port_forward(
        self, receive: Receive, send: Send, scope: Scope, pod: Object, query: dict[str, list[str]]
    ) -> None:
        offered = scope.get("subprotocols") or ()
        if spdy.PROTOCOL in offered:
            # kubectl: SPDY tunneled in the WebSocket; ports come in each stream's headers.
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept", "subprotocol": spdy.PROTOCOL})
                await self._port_forward_spdy(receive, send, pod)
            return
        ports = _ports(query)
        protocol = ws.choose_protocol(offered, ws.PORT_FORWARD_PROTOCOLS)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept", "subprotocol": protocol or ""})
        writers: dict[int, asyncio.StreamWriter] = {}
        tasks: list[asyncio.Task[None]] = []
        for index, port in enumerate(ports):
            # Each port opens its data and error channels with its number (little endian).
            prefix = struct.pack("<H", port)
            await send({"type": "websocket.send", "bytes": bytes([2 * index]) + prefix})
            await send({"type": "websocket.send", "bytes": bytes([2 * index + 1]) + prefix})
            try:
                reader, writer = await self.runtime.port_forward(pod, port)
            except (OSError, streaming.StreamingError) as exc:
                text = f"error forwarding port {port} to pod {pod['metadata']['uid']}: {exc}"
                await send(
                    {"type": "websocket.send", "bytes": bytes([2 * index + 1]) + text.encode()}
                )
                continue
            writers[2 * index] = writer
            tasks.append(asyncio.ensure_future(_copy_to_socket(reader, send, 2 * index)))
        try:
            await _port_forward_input(receive, writers)
        finally:
            for task in tasks:
                task.cancel()
            for writer in writers.values():
                writer.close()

    async def _port_forward_spdy(self, receive: Receive, send: Send, pod: Object) -> None:
        """Pair each request's error and data streams, then forward each pair (httpstream.go)."""

        async def send_bytes(data: bytes) -> None:
            await send({"type": "websocket.send", "bytes": data})

        pairs: dict[str, dict[str, spdy.Stream]] = {}
        tasks: set[asyncio.Task[None]] = set()

        def on_stream(stream: spdy.Stream) -> None:
            pair = pairs.setdefault(stream.headers.get("requestid", ""), {})
            pair[stream.headers.get("streamtype", "")] = stream
            if "data" in pair and "error" in pair:
                pairs.pop(stream.headers.get("requestid", ""), None)
                task = asyncio.ensure_future(self._forward(pod, pair["data"], pair["error"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        session = spdy.Session(send_bytes, on_stream)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                await session.feed(message.get("bytes") or b"")
        except spdy.ProtocolError as exc:
            log.warning("port-forward to %s: %s", pod["metadata"]["name"], exc)
        finally:
            session.close_all()
            for task in tasks:
                task.cancel()

    async def _forward(self, pod: Object, data: spdy.Stream, error: spdy.Stream) -> None:
        meta = pod["metadata"]
        port = int(data.headers.get("port") or 0)
        try:
            reader, writer = await self.runtime.port_forward(pod, port)
        except (OSError, streaming.StreamingError) as exc:
            text = f"error forwarding port {port} to pod {meta['name']}, uid {meta['uid']}: {exc}"
            with contextlib.suppress(OSError):
                await error.write(text.encode())
                await error.close()
                await data.close()
            return

        async def to_pod() -> None:
            while (chunk := await data.read()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        upload = asyncio.ensure_future(to_pod())
        try:
            while chunk := await reader.read(32 * 1024):
                await data.write(chunk)
        except OSError:
            pass
        finally:
            upload.cancel()
            writer.close()
            with contextlib.suppress(OSError):
                await data.close()
                await error.close()


# ----- request options ----------------------------------------------------------------


def _flag(query: dict[str, list[str]], *names: str) -> bool:
    for name in names:
        values = query.get(name)
        if values:
            return values[0].lower() in ("1", "true")
    return False


def _int(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or values[0] == "":
        return None
    try:
        return int(values[0])
    except ValueError:
        raise _HttpError(400, f"{name}: invalid value {values[0]!r}") from None


def log_options(query: dict[str, list[str]], *, now: float | None = None) -> streaming.LogOptions:
    """``/containerLogs`` query → LogOptions (sinceSeconds wins over sinceTime, as upstream)."""
    since: float | None = None
    since_seconds = _int(query, "sinceSeconds")
    if since_seconds is not None:
        since = (time.time() if now is None else now) - since_seconds
    elif query.get("sinceTime"):
        try:
            since = streaming.parse_rfc3339(query["sinceTime"][0])
        except ValueError:
            raise _HttpError(400, f"sinceTime: invalid value {query['sinceTime'][0]!r}") from None
    return streaming.LogOptions(
        follow=_flag(query, "follow"),
        previous=_flag(query, "previous"),
        since=since,
        tail_lines=_int(query, "tailLines"),
        timestamps=_flag(query, "timestamps"),
        limit_bytes=_int(query, "limitBytes"),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def exec_options(query: dict[str, list[str]], *, attach: bool = False) -> ExecOptions:
    """Upstream's kubelet names them input/output/error/tty; the API's stdin/stdout/stderr too."""
    options = ExecOptions(
        command=tuple(query.get("command") or ()),
        stdin=_flag(query, "input", "stdin"),
        stdout=_flag(query, "output", "stdout"),
        stderr=_flag(query, "error", "stderr"),
        tty=_flag(query, "tty"),
    )
    if not attach and not options.command:
        raise _HttpError(400, "you must specify at least one command for the container")
    if not (options.stdin or options.stdout or options.stderr):
        raise _HttpError(400, "you must specify at least 1 of stdin, stdout, stderr")
    if options.tty and options.stderr:
        # A terminal merges stderr into stdout (upstream drops the stderr stream).
        options = dataclasses.replace(options, stderr=False)
    return options


def _ports(query: dict[str, list[str]]) -> list[int]:
    ports: list[int] = []
    for value in query.get("ports") or ():
        for item in value.split(","):
            try:
                port = int(item)
            except ValueError:
                raise _HttpError(400, f"invalid port {item!r}") from None
            if not 0 < port < 65536:
                raise _HttpError(400, f"invalid port {port}")
            ports.append(port)
    if not ports:
        raise _HttpError(400, "at least one port must be specified")
    return ports


# ----- container state checks (upstream's validateContainerLogStatus) ----------------


def _statuses(pod: Object) -> list[Object]:
    status = pod.get("status") or {}
    return [
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
        *(status.get("ephemeralContainerStatuses") or ()),
    ]


def _known_container(pod: Object, container: str) -> None:
    spec = pod.get("spec") or {}
    names = [
        c.get("name")
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or ()
    ]
    if container not in names:
        raise _HttpError(
            404, f"container {container} is not valid for pod {pod['metadata']['name']}"
        )


def check_log_status(pod: Object, container: str, *, previous: bool) -> None:
    """The kubelet's refusals for a log request, with its messages (400 BadRequest)."""
    name = pod["metadata"]["name"]
    found = next((s for s in _statuses(pod) if s.get("name") == container), None)
    if found is None:
        _known_container(pod, container)
        raise _HttpError(
            400, f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
        )
    state = found.get("state") or {}
    last = (found.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise _HttpError(
                400, f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return
    if "waiting" in state and not state.get("running"):
        if last and last.get("containerID"):
            return  # between restarts the log is the previous run's
        reason = (state.get("waiting") or {}).get("reason") or ""
        raise _HttpError(
            400, f'container "{container}" in pod "{name}" is waiting to start: {reason}'
        )
    terminated = state.get("terminated")
    if (
        terminated is not None
        and not terminated.get("containerID")
        and not found.get("containerID")
    ):
        raise _HttpError(400, f'container "{container}" in pod "{name}" is terminated')


# ----- frames --------------------------------------------------------------------------


class _Channels:
    """Writes channel-prefixed messages; the error channel's content depends on the version."""

    def __init__(self, send: Send, protocol: str) -> None:
        self.send = send
        self.protocol = protocol
        self.closed = False

    async def write(self, channel: int, data: bytes) -> None:
        if not self.closed:
            await self.send({"type": "websocket.send", "bytes": bytes([channel]) + data})

    async def finish(self, status: Object | None) -> None:
        if status is not None:
            if self.protocol in (ws.V4, ws.V5):
                payload = orjson.dumps(status)
            else:
                # v1-v3 carry the error's text only, and nothing on success.
                payload = b"" if status.get("status") == "Success" else status["message"].encode()
            if payload:
                await self.write(ws.ERROR, payload)
        if not self.closed:
            self.closed = True
            await self.send({"type": "websocket.close", "code": 1000})


async def _pump(
    receive: Receive,
    channel: _Channels,
    process: streaming.ContainerProcess,
    options: ExecOptions,
) -> int | None:
    """Copy streams both ways until the process ends; its exit code (None if the client left)."""
    outputs = []
    if process.stdout is not None and options.stdout:
        outputs.append(asyncio.ensure_future(_copy_output(process.stdout, channel, ws.STDOUT)))
    if process.stderr is not None and options.stderr:
        outputs.append(asyncio.ensure_future(_copy_output(process.stderr, channel, ws.STDERR)))
    inputs = asyncio.ensure_future(_copy_input(receive, process, channel.protocol, options.stdin))
    waiter = asyncio.ensure_future(process.wait())
    try:
        done, _ = await asyncio.wait({waiter, inputs}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done and inputs.result() == "gone":
            process.kill()
            channel.closed = True
            return None
        code = await waiter
        # Output written before the exit is delivered before the status.
        await asyncio.wait(outputs, timeout=5.0) if outputs else None
        return code
    finally:
        for task in (*outputs, inputs, waiter):
            task.cancel()


async def _copy_output(reader: asyncio.StreamReader, channel: _Channels, number: int) -> None:
    while data := await reader.read(32 * 1024):
        await channel.write(number, data)


async def _copy_input(
    receive: Receive, process: streaming.ContainerProcess, protocol: str, stdin: bool
) -> str:
    """Client frames into the process until the client goes; returns "gone"."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return "gone"
        data = message.get("bytes")
        if data is None:
            data = (message.get("text") or "").encode("utf-8")
        if not data:
            continue
        number, payload = data[0], data[1:]
        if number == ws.STDIN and stdin:
            if payload:
                await process.write_stdin(payload)
            elif protocol not in (ws.V5,):
                continue
        elif number == ws.RESIZE:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                size = orjson.loads(payload)
                process.resize(int(size["Width"]), int(size["Height"]))
        elif number == ws.CLOSE and protocol == ws.V5 and payload[:1] == bytes([ws.STDIN]):
            process.close_stdin()


async def _copy_to_socket(reader: asyncio.StreamReader, send: Send, number: int) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(32 * 1024):
            await send({"type": "websocket.send", "bytes": bytes([number]) + data})


async def _port_forward_input(receive: Receive, writers: dict[int, asyncio.StreamWriter]) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes") or b""
        if not data:
            continue
        number, payload = data[0], data[1:]
        writer = writers.get(number)
        if writer is None:
            continue
        if payload:
            writer.write(payload)
            await writer.drain()


# ----- plain HTTP answers ------------------------------------------------------------------


def _denial(send: Send) -> Send:
    """Plain HTTP answers to a WebSocket upgrade (the ASGI denial-response extension)."""

    async def deny(message: Message) -> None:
        await send({**message, "type": "websocket." + message["type"]})

    return deny


async def _respond(send: Send, code: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, code: int, text: str) -> None:
    await _respond(send, code, text.encode(), b"text/plain; charset=utf-8")


def names_for(node_name: str, addresses: Sequence[str]) -> tuple[list[str], list[str]]:
    """The DNS names and IPs a node's serving certificate carries (upstream: hostname + IPs)."""
    return [node_name], list(addresses)
