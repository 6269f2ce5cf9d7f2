"""Audit: policy rule matching, redaction, the filter's events and the rotating log backend."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from kajitori.machinery import errors
from kajitori.registry.generic.request import UserInfo
from kajitori.server import asgi
from kajitori.server.filters import audit
from kajitori.server.request_info import RequestInfo, new_request_info

ALICE = UserInfo("alice", ("dev", "system:authenticated"))
PLAIN = "hunter2-plain"
B64 = "aHVudGVyMi1wbGFpbg=="


def info(method: str, path: str, query: str = "") -> RequestInfo:
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return new_request_info(method, path, params)


def rule(**fields: Any) -> audit.PolicyRule:
    return audit.parse_policy(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "rules": [{"level": "Metadata", **fields}],
        }
    ).rules[0]


@pytest.mark.parametrize(
    ("fields", "method", "path", "matches"),
    [
        pytest.param({}, "GET", "/api/v1/pods", True, id="empty-rule-matches-all"),
        pytest.param({"users": ["alice"]}, "GET", "/api/v1/pods", True, id="user"),
        pytest.param({"users": ["bob"]}, "GET", "/api/v1/pods", False, id="other-user"),
        pytest.param({"userGroups": ["dev"]}, "GET", "/version", True, id="group"),
        pytest.param({"userGroups": ["ops"]}, "GET", "/version", False, id="other-group"),
        pytest.param({"verbs": ["list"]}, "GET", "/api/v1/pods", True, id="verb-list"),
        pytest.param({"verbs": ["get"]}, "GET", "/api/v1/pods", False, id="list-is-not-get"),
        pytest.param(
            {"resources": [{"group": "", "resources": ["pods"]}]},
            "GET",
            "/api/v1/namespaces/a/pods/p",
            True,
            id="core-resource",
        ),
        pytest.param(
            {"resources": [{"group": "", "resources": ["pods"]}]},
            "GET",
            "/api/v1/namespaces/a/pods/p/log",
            False,
            id="resource-excludes-subresource",
        ),
        pytest.param(
            {"resources": [{"group": "", "resources": ["pods/*"]}]},
            "GET",
            "/api/v1/namespaces/a/pods/p/log",
            True,
            id="resource-star-subresource",
        ),
        pytest.param(
            {"resources": [{"group": "", "resources": ["pods/*"]}]},
            "GET",
            "/api/v1/namespaces/a/pods/p",
            True,
            id="resource-star-includes-resource",
        ),
        pytest.param(
            {"resources": [{"group": "", "resources": ["*/status"]}]},
            "PUT",
            "/apis/apps/v1/namespaces/a/deployments/d/status",
            False,
            id="group-must-match",
        ),
        pytest.param(
            {"resources": [{"group": "apps", "resources": ["*/status"]}]},
            "PUT",
            "/apis/apps/v1/namespaces/a/deployments/d/status",
            True,
            id="star-slash-subresource",
        ),
        pytest.param(
            {"resources": [{"group": "apps"}]},
            "DELETE",
            "/apis/apps/v1/namespaces/a/replicasets/r",
            True,
            id="whole-group",
        ),
        pytest.param(
            {"resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["x"]}]},
            "GET",
            "/api/v1/namespaces/a/configmaps/y",
            False,
            id="resource-name",
        ),
        pytest.param(
            {"namespaces": ["kube-system"]},
            "GET",
            "/api/v1/namespaces/kube-system/secrets",
            True,
            id="namespace",
        ),
        pytest.param(
            {"namespaces": [""]}, "GET", "/api/v1/nodes", True, id="cluster-scope-is-empty-ns"
        ),
        pytest.param(
            {"namespaces": ["kube-system"]}, "GET", "/healthz", False, id="ns-rule-not-non-resource"
        ),
        pytest.param(
            {"nonResourceURLs": ["/healthz*"]}, "GET", "/healthz/etcd", True, id="url-glob"
        ),
        pytest.param({"nonResourceURLs": ["/version"]}, "GET", "/versions", False, id="url-exact"),
        pytest.param(
            {"nonResourceURLs": ["*"]}, "GET", "/api/v1/pods", False, id="url-rule-not-resource"
        ),
    ],
)
def test_rules_match_as_upstreams_policy_checker(
    fields: dict[str, Any], method: str, path: str, matches: bool
) -> None:
    """Each rule field narrows the match exactly as upstream's ruleMatches."""
    assert audit.rule_matches(rule(**fields), info(method, path), ALICE) is matches


def test_the_first_matching_rule_decides_level_and_stages() -> None:
    """Rules are tried in order; policy and rule omitStages add up; no match is None."""
    policy = audit.parse_policy(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {"level": "None", "users": ["system:kube-proxy"]},
                {"level": "Request", "verbs": ["create"], "omitStages": ["ResponseStarted"]},
                {"level": "Metadata", "resources": [{"group": ""}]},
            ],
        }
    )
    create = audit.evaluate(policy, info("POST", "/api/v1/namespaces/a/pods"), ALICE)
    assert create == audit.Decision(
        "Request", frozenset({"RequestReceived", "ResponseStarted"}), False
    )
    assert audit.evaluate(policy, info("GET", "/api/v1/pods"), ALICE).level == "Metadata"
    assert audit.evaluate(policy, info("GET", "/apis/apps/v1/deployments"), ALICE).level == "None"
    proxy = UserInfo("system:kube-proxy")
    assert audit.evaluate(policy, info("POST", "/api/v1/namespaces/a/pods"), proxy).level == "None"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"kind": "Policy"}, "must be an audit.k8s.io/v1 Policy", id="no-version"),
        pytest.param(
            {"rules": [{"level": "Everything"}]},
            'rules[0].level: Unsupported value: "Everything"',
            id="bad-level",
        ),
        pytest.param(
            {"rules": [{"level": "None", "omitStages": ["Done"]}]},
            'rules[0].omitStages[0]: Unsupported value: "Done"',
            id="bad-stage",
        ),
        pytest.param(
            {"rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]},
            "rules cannot apply to both regular resources and non-resource URLs",
            id="mixed",
        ),
    ],
)
def test_invalid_policies_are_refused(doc: dict[str, Any], message: str) -> None:
    """A bad policy stops the server with the field at fault."""
    full = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **doc}
    if doc.get("kind") == "Policy" and "rules" not in doc:
        full = doc
    with pytest.raises(audit.AuditPolicyError, match=re.escape(message)):
        audit.parse_policy(full)


def test_a_policy_file_without_rules_is_illegal(tmp_path: Path) -> None:
    """Upstream refuses a policy with 0 rules."""
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\n")
    with pytest.raises(audit.AuditPolicyError, match="0 rules"):
        audit.load_policy(path)


SECRET = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {
        "name": "s",
        "annotations": {audit.LAST_APPLIED: f'{{"data":{{"pw":"{B64}"}}}}', "keep": "me"},
    },
    "data": {"pw": B64},
    "stringData": {"pw2": PLAIN},
    "type": "Opaque",
}


@pytest.mark.parametrize(
    ("method", "path", "obj"),
    [
        pytest.param("POST", "/api/v1/namespaces/a/secrets", SECRET, id="secret"),
        pytest.param(
            "GET",
            "/api/v1/secrets",
            {"kind": "SecretList", "items": [{k: v for k, v in SECRET.items() if k != "kind"}]},
            id="secret-list-items-without-kind",
        ),
        pytest.param(
            "PATCH",
            "/api/v1/namespaces/a/secrets/s",
            [{"op": "add", "path": "/data/pw", "value": B64}],
            id="json-patch",
        ),
        pytest.param(
            "PATCH",
            "/api/v1/namespaces/a/secrets/s",
            {"stringData": {"x": PLAIN}},
            id="merge-patch",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/secrets",
            {"kind": "Table", "rows": [{"cells": ["s"], "object": SECRET}]},
            id="table",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            {"kind": "List", "items": [SECRET]},
            id="nested",
        ),
        pytest.param(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {"spec": {"token": PLAIN}},
            id="tokenreview-without-kind",
        ),
        pytest.param(
            "POST",
            "/api/v1/namespaces/a/serviceaccounts/default/token",
            {"kind": "TokenRequest", "status": {"token": PLAIN, "expirationTimestamp": "x"}},
            id="tokenrequest",
        ),
    ],
)
def test_secret_values_and_tokens_are_redacted_everywhere(method: str, path: str, obj: Any) -> None:
    """No secret value or token survives redaction, whatever shape carries it."""
    before = orjson.dumps(obj)
    out = orjson.dumps(audit.redact(obj, info(method, path)))
    assert PLAIN.encode() not in out and B64.encode() not in out
    assert orjson.dumps(obj) == before, "the original must not be mutated"
    if b'"keep"' in before:
        assert b'"keep":"me"' in out


async def run_filter(
    level: str,
    request_info: RequestInfo,
    *,
    body: bytes = b"",
    respond: Any = None,
    status: int = 200,
    omit: tuple[str, ...] = (),
) -> tuple[list[dict[str, Any]], list[asgi.Message]]:
    """Drive AuditFilter.serve with a handler that reads the body and answers ``respond``."""
    policy = audit.parse_policy(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": list(omit),
            "rules": [{"level": level}],
        }
    )
    events: list[dict[str, Any]] = []
    sent: list[asgi.Message] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": request_info.path,
        "raw_path": request_info.path.encode(),
        "query_string": b"fieldManager=x",
        "headers": [(b"user-agent", b"tests/1.0"), (b"content-type", b"application/json")],
        "client": ("127.0.0.9", 5555),
    }

    async def receive() -> asgi.Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: asgi.Message) -> None:
        sent.append(message)

    request = asgi.Request(scope, receive)

    async def handler(send: asgi.Send) -> None:
        await request.body()
        if isinstance(respond, BaseException):
            raise respond
        await asgi.send_json(send, status, respond)

    await audit.AuditFilter(policy, events.append).serve(
        request, send, request_info, ALICE, handler
    )
    return events, sent


async def test_request_response_events_carry_upstreams_fields() -> None:
    """RequestReceived then ResponseComplete, sharing auditID, with both objects redacted."""
    created = {**SECRET, "metadata": {"name": "s", "namespace": "a", "uid": "u1"}}
    events, sent = await run_filter(
        "RequestResponse",
        info("POST", "/api/v1/namespaces/a/secrets"),
        body=orjson.dumps(SECRET),
        respond=created,
        status=201,
    )
    received, complete = events
    assert [received["stage"], complete["stage"]] == ["RequestReceived", "ResponseComplete"]
    assert received["auditID"] == complete["auditID"]
    assert (b"audit-id", complete["auditID"].encode()) in sent[0]["headers"]
    assert "responseStatus" not in received and "requestObject" not in received
    assert complete["kind"] == "Event" and complete["apiVersion"] == "audit.k8s.io/v1"
    assert complete["level"] == "RequestResponse"
    assert complete["verb"] == "create"
    assert complete["requestURI"] == "/api/v1/namespaces/a/secrets?fieldManager=x"
    assert complete["user"] == {"username": "alice", "groups": ["dev", "system:authenticated"]}
    assert complete["sourceIPs"] == ["127.0.0.9"]
    assert complete["userAgent"] == "tests/1.0"
    assert complete["objectRef"] == {
        "resource": "secrets",
        "namespace": "a",
        "name": "s",
        "apiVersion": "v1",
    }
    assert complete["responseStatus"] == {"metadata": {}, "code": 201}
    assert complete["requestObject"]["data"] == {"pw": audit.REDACTED}
    assert complete["responseObject"]["metadata"]["uid"] == "u1"
    assert complete["responseObject"]["data"] == {"pw": audit.REDACTED}
    assert complete["stageTimestamp"] >= complete["requestReceivedTimestamp"]
    line = orjson.dumps(events)
    assert PLAIN.encode() not in line and B64.encode() not in line


@pytest.mark.parametrize(
    ("level", "has_request", "has_response"),
    [
        pytest.param("Metadata", False, False, id="metadata"),
        pytest.param("Request", True, False, id="request"),
        pytest.param("RequestResponse", True, True, id="request-response"),
    ],
)
async def test_objects_are_logged_by_level(
    level: str, has_request: bool, has_response: bool
) -> None:
    """Metadata logs no objects, Request the request's, RequestResponse both."""
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    events, _ = await run_filter(
        level, info("POST", "/api/v1/namespaces/a/configmaps"), body=orjson.dumps(cm), respond=cm
    )
    complete = events[-1]
    assert ("requestObject" in complete) is has_request
    assert ("responseObject" in complete) is has_response
    assert complete["objectRef"]["name"] == "c"


async def test_level_none_and_omitted_stages_write_nothing() -> None:
    """Level None logs no event; omitted stages are skipped."""
    none, _ = await run_filter("None", info("GET", "/api/v1/pods"), respond={})
    assert none == []
    events, _ = await run_filter(
        "Metadata", info("GET", "/api/v1/pods"), respond={}, omit=("RequestReceived",)
    )
    assert [e["stage"] for e in events] == ["ResponseComplete"]


async def test_denied_requests_are_audited_with_their_status() -> None:
    """A StatusError (e.g. 403 from authorization) is answered and logged with its Status."""
    denied = errors.StatusError(403, "Forbidden", 'secrets is forbidden: User "alice" cannot')
    events, sent = await run_filter("Metadata", info("GET", "/api/v1/secrets"), respond=denied)
    assert sent[0]["status"] == 403
    status = events[-1]["responseStatus"]
    assert (status["code"], status["reason"], status["status"]) == (403, "Forbidden", "Failure")
    assert status["message"].startswith("secrets is forbidden")


async def test_a_crash_is_logged_at_the_panic_stage() -> None:
    """An unexpected exception emits a Panic event with code 500 and propagates."""
    sink: list[dict[str, Any]] = []
    filt = audit.AuditFilter(audit.Policy((audit.PolicyRule("Metadata"),)), sink.append)
    scope = {"type": "http", "method": "GET", "path": "/api/v1/pods", "headers": []}

    async def boom(send: asgi.Send) -> None:
        raise RuntimeError("boom")

    async def receive() -> asgi.Message:
        return {"type": "http.disconnect"}

    async def send(message: asgi.Message) -> None:
        pass

    with pytest.raises(RuntimeError):
        await filt.serve(
            asgi.Request(scope, receive), send, info("GET", "/api/v1/pods"), ALICE, boom
        )
    assert [e["stage"] for e in sink] == ["RequestReceived", "Panic"]
    assert sink[-1]["responseStatus"]["code"] == 500


def test_the_log_rotates_at_the_size_limit_and_keeps_max_backups(tmp_path: Path) -> None:
    """A write that would pass max size starts a new file; only max_backups old files stay."""
    path = tmp_path / "audit.log"
    backend = audit.LogBackend(path, max_mb=1, max_backups=2)
    assert backend.max_bytes == 1 << 20
    backend.max_bytes = 1000
    event = {"kind": "Event", "pad": "x" * 280}
    line = len(orjson.dumps(event)) + 1
    for _ in range(3):
        backend.write(event)
    assert path.stat().st_size == 3 * line and backend.backups() == []
    backend.write(event)
    assert path.stat().st_size == line
    assert [p.stat().st_size for p in backend.backups()] == [3 * line]
    for _ in range(12):
        backend.write(event)
    backend.close()
    assert len(backend.backups()) == 2
    assert all(p.stat().st_size <= 1000 for p in [path, *backend.backups()])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    for p in [path, *backend.backups()]:
        for text in p.read_bytes().splitlines():
            assert orjson.loads(text)["kind"] == "Event"
