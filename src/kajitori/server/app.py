"""The API server as one ASGI application.

``APIServer`` is the handler chain, outermost first (upstream's
DefaultBuildHandlerChain, reduced to what exists today):

1. panic recovery: any unexpected exception becomes a 500 ``Status``;
2. request info: the URL parsed into verb/resource/namespace/name;
3. authentication: client certificate, bearer token or anonymous (401 for bad
   credentials, ``auth.authenticator``); impersonation headers, themselves
   authorized (``auth.authn.impersonation``); then audit (``filters/audit.py``),
   when a policy is configured;
4. authorization: the given authorizer (the server uses system:masters, then
   RBAC); 403 with upstream's message when nobody allows;
5. routing: a remote APIService's ``/apis/<group>/<version>`` goes to the
   aggregator's proxy (``server/aggregator``) before anything of ours; then
   health, version and ``/metrics``, discovery, then resource handlers;
   each answered request is counted in ``apiserver_request_total``
   (``server/metrics.py``).

Admission is not a filter: it runs inside the write path of the generic
store, after decoding and defaulting (registry.generic.hooks).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable

from kajitori.auth import authenticator as authenticators
from kajitori.auth import authorizer
from kajitori.auth.authn import impersonation
from kajitori.machinery import errors
from kajitori.registry.authorization import authorizer as authz
from kajitori.registry.generic.request import RequestTarget, UserInfo
from kajitori.server import asgi, metrics, negotiation, openapi_v2
from kajitori.server.aggregator.aggregator import Aggregator
from kajitori.server.apis import APIRegistry
from kajitori.server.discovery import (
    HEALTH_CHECKS,
    Discovery,
    health,
    not_found_path,
    version_info,
)
from kajitori.server.filters.audit import AuditFilter, annotate_authorization, bind_context
from kajitori.server.flowcontrol.filter import PriorityAndFairness
from kajitori.server.handlers import connect_admission, patch, resources, streams, watch
from kajitori.server.handlers.scope import RequestScope, new_context
from kajitori.server.http import ClientDisconnected
from kajitori.server.openapi import OpenAPIV2, OpenAPIV3
from kajitori.server.request_info import RequestInfo, new_request_info, parse_query

log = logging.getLogger(__name__)

Handler = Callable[[RequestScope], Awaitable[None]]

_HANDLERS: dict[str, Handler] = {
    "get": resources.get,
    "list": resources.list_,
    "watch": watch.watch,
    "create": resources.create,
    "update": resources.update,
    "patch": patch.patch,
    "delete": resources.delete,
    "deletecollection": resources.delete_collection,
}

_TABLE_TRANSFORMS = frozenset(("Table", "PartialObjectMetadata", "PartialObjectMetadataList"))
_HEALTH = ("/healthz", "/livez", "/readyz")
_NOSNIFF = ("x-content-type-options", "nosniff")


class APIServer:
    """ASGI entry point: ``await app(scope, receive, send)``."""

    def __init__(
        self,
        registry: APIRegistry,
        *,
        server_address: str,
        authorizer: authz.Authorizer,
        audit: AuditFilter | None = None,
        authenticator: authenticators.Authenticator = authenticators.DEFAULT,
        kubelet_client: streams.KubeletClient | None = None,
        flow_control: PriorityAndFairness | None = None,
    ) -> None:
        self.registry = registry
        # How pods/log, exec, attach, portforward and nodes/proxy reach kubelets.
        self.kubelet_client = kubelet_client
        self.authorizer = authorizer
        self.authenticator = authenticator
        self.audit = audit
        self.discovery = Discovery(registry, server_address)
        self.openapi = OpenAPIV3(registry.resources())
        self.openapi_v2 = OpenAPIV2(registry.resources())
        # apiserver_request_total, served at /metrics.
        self.request_counter = metrics.RequestCounter()
        # Post-start hooks still running (``APIServerProcess.start`` names and
        # clears them): until none is left, /healthz, /livez and /readyz fail.
        self.unfinished_hooks: set[str] = set()
        # Set once the aggregator runs (``cmd/apiserver.py``): it proxies remote APIServices.
        self.aggregator: Aggregator | None = None
        # API Priority and Fairness, between impersonation and authorization (server/flowcontrol).
        self.flow_control = flow_control
        if flow_control is not None:
            flow_control.count_rejection = self._count_rejection

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] == "websocket":
            # An upgrade is a GET; errors before it is accepted answer as plain HTTP.
            scope = {**scope, "method": "GET"}
            send = _websocket_denial(send)
        elif scope["type"] != "http":
            return
        request = asgi.Request(scope, receive)
        try:
            await self._serve(request, send)
        except ClientDisconnected:
            # The peer went away before its answer was written: there is nobody to
            # answer, and it is not the server's failure (upstream's handlers see a
            # failed write and log nothing at error level).
            log.debug("client went away during %s %s", request.method, request.path)
        except errors.StatusError as exc:
            await asgi.send_status_error(send, exc)
        except Exception as exc:  # panic recovery: never leak a stack trace to clients
            log.error(
                "unhandled error serving %s %s\n%s",
                request.method,
                request.path,
                traceback.format_exc(),
            )
            await asgi.send_status_error(
                send, errors.internal_error(f"{type(exc).__name__}: {exc}")
            )

    async def _serve(self, request: asgi.Request, send: asgi.Send) -> None:
        query = parse_query(request.scope.get("query_string", b""))
        info = new_request_info(request.method, request.path, query)
        user = await self.authenticator.authenticate(request.scope)
        if user is None:
            raise errors.unauthorized()
        user = self._impersonate(request, user)

        async def authorized(send: asgi.Send) -> None:
            self._authorize(user, info, request.scope)
            recorder = _StatusRecorder(send)
            remote = None
            if self.aggregator is not None and request.scope["type"] == "http":
                remote = self.aggregator.match(request.path)
            try:
                if remote is not None:
                    assert self.aggregator is not None
                    await self.aggregator.serve(request, recorder.send, user, remote)
                elif not info.is_resource_request:
                    await self._serve_non_resource(request, recorder.send, query)
                else:
                    await self._serve_resource(request, recorder.send, info, query, user)
            finally:
                # Only answered requests count: a path nobody serves raises before
                # any answer (upstream counts in the route handlers, not before them).
                if recorder.status:
                    content_type = request.header("content-type") if info.verb == "patch" else ""
                    self.request_counter.count(info, recorder.status, query, content_type)

        serve = authorized
        if self.flow_control is not None:
            serve = functools.partial(self.flow_control.serve, info, user, authorized)
        if self.audit is None:
            await serve(send)
        else:
            # Outside authorization, as upstream's WithAudit: denials are audited too.
            await self.audit.serve(request, send, info, user, serve)

    def _count_rejection(self, info: RequestInfo) -> None:
        """APF's 429s count in apiserver_request_total (upstream's RecordDroppedRequest)."""
        self.request_counter.count(info, 429, {}, "")

    def _impersonate(self, request: asgi.Request, user: UserInfo) -> UserInfo:
        """Act as the user named by Impersonate-* headers, if allowed (upstream's WithImpersonation)."""
        raw = request.scope["headers"]
        # Almost no request impersonates: look for the header prefix before decoding
        # anything (a plain loop: this runs on every request).
        for key, _ in raw:
            if key[:12].lower() == b"impersonate-":
                break
        else:
            return user
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]
        if not impersonation.requested(headers):
            return user
        return impersonation.impersonate(user, headers, self.authorizer)

    def _authorize(
        self, user: UserInfo, info: RequestInfo, scope: asgi.Scope | None = None
    ) -> None:
        attrs = authz.Attributes(
            user=user,
            verb=info.verb,
            resource_request=info.is_resource_request,
            path=info.path,
            api_group=info.api_group,
            api_version=info.api_version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=info.name,
            field_selector=info.field_selector,
            label_selector=info.label_selector,
        )
        decision, reason = self.authorizer.authorize(attrs)
        if scope is not None:  # upstream's WithAuthorization records its decision for audit
            annotate_authorization(scope, decision == "Allow", reason)
        if decision == "Allow":
            return
        if not info.is_resource_request:
            text = authorizer.forbidden_message(user, info.verb, path=info.path, reason=reason)
            raise errors.StatusError(403, "Forbidden", f"forbidden: {text}")
        text = authorizer.forbidden_message(
            user,
            info.verb,
            group=info.api_group,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            reason=reason,
        )
        raise errors.forbidden(errors.GroupResource(info.api_group, info.resource), info.name, text)

    async def _serve_non_resource(
        self, request: asgi.Request, send: asgi.Send, query: dict[str, str]
    ) -> None:
        path = request.path.rstrip("/") or "/"
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        if path in _HEALTH or any(path.startswith(p + "/") for p in _HEALTH):
            failed = _unfinished(path, self.unfinished_hooks)
            if failed is not None:
                await asgi.send_response(
                    send, 500, failed, "text/plain; charset=utf-8", headers=[_NOSNIFF]
                )
                return
            await health(request, send, query)
            return
        if path == "/version":
            await asgi.send_json(send, 200, version_info())
            return
        if path == "/metrics":
            body = self.request_counter.render()
            if self.flow_control is not None:
                body += self.flow_control.render_metrics()
            await asgi.send_response(send, 200, body, metrics.CONTENT_TYPE)
            return
        if path.startswith("/debug/api_priority_and_fairness/") and self.flow_control:
            dump = self.flow_control.dump(path, query)
            if dump is not None:
                await asgi.send_response(send, 200, dump, "text/plain; charset=utf-8")
                return
        if await self.discovery.handle(request, send):
            return
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            await self._serve_openapi_v3(path, send)
            return
        if path == "/openapi/v2":
            await self._serve_openapi_v2(request, send)
            return
        raise not_found_path()

    async def _serve_openapi_v2(self, request: asgi.Request, send: asgi.Send) -> None:
        """Upstream's protobuf or JSON, whichever the client names first; else 406."""
        for media in negotiation.parse_media_types(request.header("accept") or "*/*"):
            if media.type in openapi_v2.ACCEPTED:
                document = self.openapi_v2.protobuf()
                await asgi.send_response(send, 200, document, openapi_v2.CONTENT_TYPE)
                return
            if media.type in ("application/json", "application/*", "*/*"):
                await asgi.send_response(send, 200, self.openapi_v2.document(), "application/json")
                return
        raise errors.not_acceptable(
            "only the following media types are accepted: application/json, "
            + openapi_v2.CONTENT_TYPE
        )

    async def _serve_openapi_v3(self, path: str, send: asgi.Send) -> None:
        if path == "/openapi/v3":
            await asgi.send_json(send, 200, self.openapi.index())
            return
        document = self.openapi.document(path[len("/openapi/v3/") :])
        if document is None:
            raise not_found_path()
        await asgi.send_response(
            send,
            200,
            document,
            "application/json",
            headers=[("cache-control", "public, immutable")],
        )

    async def _serve_resource(
        self,
        request: asgi.Request,
        send: asgi.Send,
        info: RequestInfo,
        query: dict[str, str],
        user: UserInfo,
    ) -> None:
        store = self.registry.lookup(info.api_group, info.api_version, info.resource)
        if store is None:
            raise not_found_path()
        if info.subresource:  # streams are all subresources; most requests have none
            if streams.handles(info):
                await self._serve_stream(request, send, info, user)
                return
            if info.subresource not in store.info.subresource_names:
                raise not_found_path()
        elif info.verb not in store.info.verbs:
            raise errors.method_not_supported(store.gr, info.verb)
        media = negotiation.choose_response_type(
            request.header("accept"), allowed_transforms=_TABLE_TRANSFORMS
        )
        scope = RequestScope(
            request=request,
            send=send,
            info=info,
            query=query,
            store=store,
            ctx=new_context(
                query,
                user,
                RequestTarget(info.api_group, info.api_version, info.resource, info.subresource),
            ),
            media=media,
        )
        bind_context(request.scope, scope.ctx)  # admission's audit annotations reach the event
        if store.info.deprecation_warning:
            # Upstream's deprecated-API warning, on every request to the version.
            scope.ctx.warn(store.info.deprecation_warning)
        handler = _HANDLERS.get(info.verb)
        if handler is None:
            raise errors.method_not_allowed()
        try:
            await handler(scope)
        except errors.StatusError as exc:
            await scope.respond_error(exc)

    async def _serve_stream(
        self, request: asgi.Request, send: asgi.Send, info: RequestInfo, user: UserInfo
    ) -> None:
        """pods/log, exec, attach, portforward, proxy and nodes/proxy (handlers/streams.py)."""
        websocket = request.scope.get("type") == "websocket"
        if streams.needs_create(info, websocket):
            self._authorize(user, dataclasses.replace(info, verb="create"))
        query = urllib.parse.parse_qs(
            request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        admitted = await connect_admission.admit(
            request, send, info, query, user, self.registry.lookup
        )
        if admitted is None:
            return  # refused; answered with admission's warnings
        try:
            await streams.serve(
                streams.StreamRequest(
                    request, admitted, info, query, self.registry.lookup, self.kubelet_client
                )
            )
        except errors.StatusError as exc:
            await asgi.send_status_error(admitted, exc)  # with admission's warnings too


def _unfinished(path: str, hooks: set[str]) -> bytes | None:
    """Upstream's failing health body while post-start hooks run, else None.

    The whole endpoint lists every check, the unfinished ones with their
    reason withheld (it is public); one check's own endpoint gives the reason.
    """
    if not hooks:
        return None
    endpoint, _, check = path.strip("/").partition("/")
    if check:
        return b"internal server error: not finished\n" if check in hooks else None
    lines = [f"[+]{name} ok" for name in HEALTH_CHECKS if name not in hooks]
    lines += [f"[-]{name} failed: reason withheld" for name in sorted(hooks)]
    return ("\n".join(lines) + f"\n{endpoint} check failed\n").encode()


class _StatusRecorder:
    """Passes messages on to ``send`` and keeps the response's status code (for metrics)."""

    __slots__ = ("_send", "status")

    def __init__(self, send: asgi.Send) -> None:
        self._send = send
        self.status = 0

    async def send(self, message: asgi.Message) -> None:
        if not self.status:
            kind = message["type"]
            if kind == "http.response.start":
                self.status = message["status"]
            elif kind == "websocket.accept":
                self.status = 101
        await self._send(message)


def _websocket_denial(send: asgi.Send) -> asgi.Send:
    """Plain HTTP messages as the websocket denial response; websocket ones unchanged."""

    async def wrapped(message: asgi.Message) -> None:
        kind = message["type"]
        if kind.startswith("http.response."):
            message = {**message, "type": "websocket." + kind}
        await send(message)

    return wrapped
