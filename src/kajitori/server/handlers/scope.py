"""Everything one resource request carries through its handler.

``RequestScope`` bundles the parsed URL (``RequestInfo``), the query, the
store for the resource, the registry context (user, dryRun, fieldManager,
fieldValidation) and the negotiated response type, and knows how to send
objects and errors back. Handlers take a scope and nothing else.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, RequestTarget
from kajitori.registry.generic.store import Store
from kajitori.server import asgi, negotiation
from kajitori.server.handlers import transform
from kajitori.server.request_info import RequestInfo

Object = dict[str, Any]

_FIELD_VALIDATION = {"Strict", "Warn", "Ignore"}


@dataclass(slots=True)
class RequestScope:
    request: asgi.Request
    send: asgi.Send
    info: RequestInfo
    query: dict[str, str]
    store: Store
    ctx: RequestContext
    media: negotiation.MediaType

    @property
    def namespace(self) -> str:
        return self.info.namespace if self.store.info.namespaced else ""

    def headers(self) -> list[tuple[str, str]]:
        warnings = self.ctx.warnings
        return warning_headers(warnings) if warnings else []  # most answers warn of nothing

    async def respond(self, status: int, body: Any) -> None:
        data, content_type = negotiation.encode(body, self.media)
        await asgi.send_response(self.send, status, data, content_type, headers=self.headers())

    async def respond_object(self, status: int, obj: Object) -> None:
        await self.respond(status, self.transform_object(self.external(obj)))

    def external(self, obj: Object) -> Object:
        """A stored object in the version this request addressed (a copy if converted)."""
        conversion = self.store.info.conversion
        return obj if conversion is None else conversion.from_storage(obj)

    def internal(self, obj: Object) -> Object:
        """A decoded body in the addressed version as the stored version (the old defaults applied)."""
        conversion = self.store.info.conversion
        return obj if conversion is None else conversion.to_storage(obj)

    def transform_object(self, obj: Object) -> Any:
        kind = self.media.transform
        if kind == "Table":
            return transform.table(self.store.info, [obj], self.media, self.query, now=_now())
        if kind == "PartialObjectMetadata":
            return transform.partial_object_metadata(obj, self.media)
        return obj

    async def respond_error(self, exc: errors.StatusError) -> None:
        await asgi.send_status_error(self.send, exc, headers=self.headers())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    """Upstream's ``Warning: 299 - "<text>"`` headers, one per warning, in order."""
    return [("warning", _warning_header(w)) for w in warnings]


def _warning_header(message: str) -> str:
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def new_context(
    query: dict[str, str], user: Any, target: RequestTarget | None = None
) -> RequestContext:
    if not query:  # most requests (every plain get): the defaults, nothing to check
        return RequestContext(user=user, target=target)
    dry_run = query.get("dryRun", "")
    if dry_run and dry_run != "All":
        raise errors.bad_request(f'Invalid dry run value: "{dry_run}"')
    validation = query.get("fieldValidation", "") or "Warn"
    if validation not in _FIELD_VALIDATION:
        raise errors.bad_request(
            f"fieldValidation must be one of Ignore, Warn, Strict, got: {validation}"
        )
    return RequestContext(
        user=user,
        dry_run=dry_run == "All",
        field_manager=query.get("fieldManager", ""),
        field_manager_option=query.get("fieldManager", ""),
        field_validation=validation,  # type: ignore[arg-type]
        target=target,
    )
