"""Admission of CONNECT requests: ``pods/exec``, ``attach``, ``portforward`` and the proxies.

Upstream's ConnectResource handler (endpoints/handlers/rest.go) runs
admission before it connects: operation CONNECT, the request's options as
the object (``v1 PodExecOptions``, ``PodAttachOptions``,
``PodPortForwardOptions``, ``PodProxyOptions``, ``NodeProxyOptions``,
``ServiceProxyOptions``, decoded from the query as upstream's parameter
codec does; a proxy's ``path`` is the rest of the URL), no old object and no
operation options. Mutating admission runs, then validating; a refusal is
answered before anything reaches the kubelet or the pod (kubectl exec prints
it). ``pods/log`` is a plain GET and is not admitted.

The streams themselves (``streams.py``) read the query: a mutating webhook's
patch of the options is not carried into the connection.

Warnings admission gives (a webhook's ``warnings``, a policy's Warn action)
are sent as ``Warning`` headers on whatever answers the request: the refusal,
the ``101`` of an exec or attach upgrade, or the proxied response, as
upstream's warning recorder writes them on the response's headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, RequestTarget, UserInfo
from kajitori.server import asgi
from kajitori.server.filters.audit import bind_context
from kajitori.server.handlers.scope import warning_headers
from kajitori.server.request_info import RequestInfo, parse_bool

Object = dict[str, Any]
Lookup = Callable[[str, str, str], Any]

# (resource, subresource) -> the options kind upstream's installer registers.
CONNECT_KINDS = {
    ("pods", "exec"): "PodExecOptions",
    ("pods", "attach"): "PodAttachOptions",
    ("pods", "portforward"): "PodPortForwardOptions",
    ("pods", "proxy"): "PodProxyOptions",
    ("nodes", "proxy"): "NodeProxyOptions",
    ("services", "proxy"): "ServiceProxyOptions",
}
_STREAM_FLAGS = ("stdin", "stdout", "stderr", "tty")


def is_connect(info: RequestInfo) -> bool:
    return not info.api_group and (info.resource, info.subresource) in CONNECT_KINDS


async def admit(
    request: asgi.Request,
    send: asgi.Send,
    info: RequestInfo,
    query: dict[str, list[str]],
    user: UserInfo,
    lookup: Lookup,
) -> asgi.Send | None:
    """Run the admission chain for a CONNECT request.

    Returns the ``send`` the stream answers through (it adds admission's
    warnings to the response), or None when admission refused the request
    and the refusal has been answered.
    """
    if not is_connect(info):
        return send
    store = lookup("", "v1", info.resource)
    if store is None:
        return send
    target = RequestTarget(info.api_group, info.api_version, info.resource, info.subresource)
    ctx = RequestContext(user=user, target=target)
    bind_context(request.scope, ctx)
    options = options_object(info, query)
    namespace = info.namespace if store.info.namespaced else ""
    admission = store.admission
    try:
        await admission.admit_subresource(store, "CONNECT", info.name, namespace, options, ctx)
        await admission.validate_subresource(store, "CONNECT", info.name, namespace, options, ctx)
    except errors.StatusError as exc:
        await asgi.send_status_error(with_warnings(send, ctx), exc)
        return None
    return with_warnings(send, ctx) if ctx.warnings else send


# The ASGI messages that start an answer: plain HTTP (a refusal, a proxied
# response) or an accepted upgrade (exec, attach, portforward).
_STARTS = frozenset(("http.response.start", "websocket.accept"))


def with_warnings(send: asgi.Send, ctx: RequestContext) -> asgi.Send:
    """``send`` adding ``ctx``'s warnings (as they are when the answer starts) to its headers."""

    async def wrapped(message: asgi.Message) -> None:
        if message["type"] in _STARTS and ctx.warnings:
            extra = [(k.encode(), v.encode()) for k, v in warning_headers(ctx.warnings)]
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return wrapped


def options_object(info: RequestInfo, query: dict[str, list[str]]) -> Object:
    """The request's options object, in ``v1``, as upstream decodes it from the query."""
    kind = CONNECT_KINDS[(info.resource, info.subresource)]
    out: Object = {"kind": kind, "apiVersion": "v1"}
    if info.subresource in ("exec", "attach"):
        for flag in _STREAM_FLAGS:
            values = query.get(flag)
            if values and parse_bool(values[0]):
                out[flag] = True
        container = _first(query, "container")
        if container:
            out["container"] = container
        if info.subresource == "exec":
            out["command"] = list(query.get("command") or ()) or None
    elif info.subresource == "portforward":
        # Unreadable ports are left to the stream's own checks.
        ports = [int(p) for p in query.get("ports") or () if p.strip().lstrip("-").isdigit()]
        if ports:
            out["ports"] = ports
    else:
        path = _subpath(info)
        if path:
            out["path"] = path
    return out


def _first(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _subpath(info: RequestInfo) -> str:
    """What follows ``<name>/proxy`` in the URL: "/" first, a trailing "/" kept."""
    rest = "/".join(info.parts[3:])
    path = "/" + rest if rest else ""
    if info.path.endswith("/") and not path.endswith("/"):
        path += "/"
    return path
