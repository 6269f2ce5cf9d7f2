"""Admission's audit annotations in the audit filter's events (upstream's audit context).

What a request's ``RequestContext`` records reaches its ``ResponseComplete``
event's ``annotations`` once the handler binds the context to the audited
request; an annotation meant for a higher level than the event's is not kept;
admission's annotation keys must be qualified names with one ``/``.
"""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.admission import audit_annotations
from kajitori.registry.generic.request import RequestContext
from kajitori.server import asgi
from kajitori.server.filters import audit
from kajitori.server.request_info import new_request_info

Object = dict[str, Any]


async def serve(level: str, record: Any) -> tuple[list[Object], RequestContext]:
    """One audited POST whose handler binds a context and lets ``record`` annotate it."""
    policy = audit.Policy((audit.PolicyRule(level),))
    events: list[Object] = []
    path = "/api/v1/namespaces/a/configmaps"
    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}

    async def receive() -> asgi.Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: asgi.Message) -> None:
        pass

    request = asgi.Request(scope, receive)
    ctx = RequestContext()

    async def handler(send: asgi.Send) -> None:
        audit.bind_context(request.scope, ctx)
        record(ctx)
        await asgi.send_json(send, 201, {"kind": "ConfigMap"})

    info = new_request_info("POST", path, {})
    await audit.AuditFilter(policy, events.append).serve(request, send, info, ctx.user, handler)
    return events, ctx


def _both(ctx: RequestContext) -> None:
    ctx.add_audit_annotation("example.com/seen", "yes")
    ctx.add_audit_annotation("example.com/seen", "again")  # the first value stays
    ctx.add_audit_annotation("example.com/patch", "[...]", level="Request")


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param("Metadata", {"example.com/seen": "yes"}, id="metadata"),
        pytest.param(
            "Request", {"example.com/seen": "yes", "example.com/patch": "[...]"}, id="request"
        ),
        pytest.param(
            "RequestResponse",
            {"example.com/seen": "yes", "example.com/patch": "[...]"},
            id="request-response",
        ),
    ],
)
async def test_annotations_reach_the_event_at_their_levels(level: str, expected: Object) -> None:
    events, _ = await serve(level, _both)
    received, complete = events
    assert "annotations" not in received  # admission had not run yet
    assert complete["annotations"] == expected


async def test_no_annotations_no_field_and_unaudited_requests_keep_their_own() -> None:
    events, _ = await serve("Metadata", lambda ctx: None)
    assert all("annotations" not in e for e in events)
    events, ctx = await serve("None", _both)
    assert events == []
    assert ctx.audit_annotations["example.com/seen"] == "yes"  # never bound: nothing shared


@pytest.mark.parametrize(
    "key",
    ["no-slash", "a/b/c", "example.com/", "example.com/bad key", "-bad.example.com/x"],
)
def test_admission_refuses_keys_that_are_not_qualified_names(key: str) -> None:
    ctx = RequestContext()
    assert audit_annotations.add(ctx, key, "v") is False
    assert ctx.audit_annotations == {}
    assert audit_annotations.add(ctx, "webhook.example.com/decision", "v") is True
    assert ctx.audit_annotations == {"webhook.example.com/decision": "v"}


def test_json_values_are_written_as_go_writes_them() -> None:
    value = {"webhook": "w", "patch": [{"op": "add", "value": "<a>&\u2028"}]}
    assert audit_annotations.go_json(value) == (
        '{"webhook":"w","patch":[{"op":"add","value":"\\u003ca\\u003e\\u0026\\u2028"}]}'
    )
