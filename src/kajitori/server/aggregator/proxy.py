"""Requests for a remote APIService's group version, passed to its Service (upstream: proxyHandler).

Owns the forwarding of ``/apis/<group>/<version>[/...]`` once authentication
and authorization have run: an APIService that is not Available, or whose
Service has no ready endpoint, is answered ``503 service unavailable`` as plain
text; otherwise the request goes to one endpoint over TLS (``transport.py``)
with the caller's identity as upstream's front proxy sends it:

- ``X-Remote-User``, ``X-Remote-Uid`` (when there is one), one ``X-Remote-Group``
  per group and ``X-Remote-Extra-<key>`` per extra value, the key
  percent-escaped where it is no header token (upstream's headerKeyEscape);
- whatever the client sent under those names is dropped first, and so are its
  credentials (``Authorization``, ``Impersonate-*``: upstream's authentication
  and impersonation filters remove them once used) and hop-by-hop headers.

The answer streams back as it comes (a watch stays open until either side
ends it). Upgrades (exec, port-forward to an aggregated server) are not proxied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kajitori.registry.apiregistration import apiservices
from kajitori.registry.generic.request import UserInfo
from kajitori.server import asgi
from kajitori.server.aggregator.index import APIServiceIndex
from kajitori.server.aggregator.transport import Transport, request_extensions

if TYPE_CHECKING:
    import httpx

Object = dict[str, Any]

_HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
# Our HTTP server writes its own Date and chooses the framing.
_RESPONSE_DROPPED = _HOP_BY_HOP | {"date"}
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "authorization", "content-length"}
_TOKEN_BYTES = frozenset(
    b"!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def header_key_escape(key: str) -> str:
    """Percent-encode what may not appear in a header name (and '%' itself)."""
    return "".join(chr(b) if b in _TOKEN_BYTES else f"%{b:02X}" for b in key.encode("utf-8"))


def identity_headers(user: UserInfo) -> list[tuple[str, str]]:
    """The front proxy's headers naming ``user`` (upstream's SetAuthProxyHeaders)."""
    headers = [("X-Remote-User", user.name)]
    if user.uid:
        headers.append(("X-Remote-Uid", user.uid))
    headers.extend(("X-Remote-Group", group) for group in user.groups)
    for key, values in user.extra:
        headers.extend((f"X-Remote-Extra-{header_key_escape(key)}", value) for value in values)
    return headers


def forwarded_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The client's headers that go on: no credentials, no identity claims, no hop-by-hop."""
    kept = []
    for key, value in raw:
        name = key.decode("latin-1").lower()
        if name in _NOT_FORWARDED or name.startswith(("impersonate-", "x-remote-")):
            continue
        kept.append((name, value.decode("latin-1")))
    return kept


async def _plain_error(send: asgi.Send, status: int, text: str) -> None:
    """What Go's http.Error writes."""
    await asgi.send_response(
        send,
        status,
        (text + "\n").encode(),
        "text/plain; charset=utf-8",
        headers=[("x-content-type-options", "nosniff")],
    )


class Proxy:
    """Forwards one request to the Service of a remote APIService."""

    def __init__(self, index: APIServiceIndex, transport: Transport) -> None:
        self.index = index
        self.transport = transport

    def match(self, path: str) -> Object | None:
        """The remote APIService serving ``path``, or None (kajitori serves it)."""
        if not self.index.objects or not path.startswith("/apis/"):
            return None
        parts = path.split("/", 4)
        if len(parts) < 4 or not parts[2] or not parts[3]:
            return None
        return self.index.remote(parts[2], parts[3])

    async def serve(
        self, request: asgi.Request, send: asgi.Send, user: UserInfo, api_service: Object
    ) -> None:
        import httpx  # on first use: importing it costs ~0.1 s of every start

        if not apiservices.is_available(api_service):
            await _plain_error(send, 503, "service unavailable")
            return
        try:
            target = await self.transport.target(api_service)
        except LookupError:
            await _plain_error(send, 503, "service unavailable")
            return
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = target.base_url + request.path + (f"?{query}" if query else "")
        headers = forwarded_headers(request.scope["headers"])
        headers.append(("host", target.host_header))
        client_address = (request.scope.get("client") or ("", 0))[0]
        if client_address:
            headers.append(("x-forwarded-for", client_address))
        headers.extend(identity_headers(user))
        body = await request.body()
        client = self.transport.client(target.ca_bundle, target.verify)
        outgoing = client.build_request(
            request.method,
            url,
            headers=headers,
            content=body or None,
            extensions=request_extensions(target),
        )
        try:
            response = await client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            # Upstream's responder answers a failed round trip with its error.
            await _plain_error(send, 503, str(exc) or type(exc).__name__)
            return
        try:
            await self._relay(response, send)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, send: asgi.Send) -> None:
        headers = [
            (key.lower(), value)
            for key, value in response.headers.raw
            if key.decode("latin-1").lower() not in _RESPONSE_DROPPED
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        async for chunk in response.aiter_raw():
            if chunk:
                await asgi.send_chunk(send, chunk)
        await asgi.send_chunk(send, b"", more=False)
