"""Auditing: upstream's audit.k8s.io/v1 Policy and Event log, as a filter of the handler chain.

Owns: parsing and checking a ``Policy`` file; deciding per request the
level (None, Metadata, Request, RequestResponse) by the first matching rule
(upstream: k8s.io/apiserver/pkg/audit/policy/checker.go); recording the
request and response as it passes (``AuditFilter.serve`` wraps everything
after authentication, so denied requests are audited as upstream's
WithAudit, which sits outside WithAuthorization); and writing
``audit.k8s.io/v1`` ``Event`` objects as JSON lines to a file rotated by
size (upstream's log backend over lumberjack).

Stages: RequestReceived when the request arrives, ResponseStarted when a
watch's headers are sent, ResponseComplete at the end, Panic if the chain
failed. Each stage is one line.

Audit annotations: what admission records for the request
(``RequestContext.add_audit_annotation``: webhooks' ``auditAnnotations``,
their mutation and patch records, ValidatingAdmissionPolicy's failures) goes
into the event's ``annotations``, as upstream's audit context does. The
handler that builds a request's context calls ``bind_context``, which shares
the audited request's annotations and level with it; an unaudited request
(level None) keeps none. Authorization's decision is recorded too
(``authorization.k8s.io/decision``: allow or forbid, and ``/reason``), as
upstream's WithAuthorization does.

Unlike upstream, secret material never reaches the log, whatever the
policy says: Secret ``data``/``stringData`` (and a kubectl last-applied
copy of them) and the tokens of TokenRequest and TokenReview are replaced
by ``<redacted>`` in request and response objects, including JSON patches
sent to Secrets.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

from kajitori.api import protobuf
from kajitori.machinery import errors, field, times
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.server import asgi
from kajitori.server.request_info import RequestInfo

API_VERSION = "audit.k8s.io/v1"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Where an audited request's record waits in its ASGI scope for ``bind_context``.
SCOPE_KEY = "kajitori.audit"
DECISION_KEY = "authorization.k8s.io/decision"
REASON_KEY = "authorization.k8s.io/reason"

# Response bodies larger than this are logged without their object.
_MAX_CAPTURED_BODY = 10 << 20
_DEFAULT_MAX_MB = 100  # lumberjack's size when none is given, as upstream


class AuditPolicyError(ValueError):
    """The audit policy file is unreadable or invalid."""


# ----- policy -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What to record for one request."""

    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


def load_policy(path: Path) -> Policy:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AuditPolicyError(f"failed to read audit policy file {path}: {exc}") from exc
    policy = parse_policy(doc)
    if not policy.rules:
        raise AuditPolicyError(f"loaded illegal policy with 0 rules from file {path}")
    return policy


def parse_policy(doc: Any) -> Policy:
    """A ``Policy`` from its decoded YAML/JSON; raises AuditPolicyError with field errors."""
    if not isinstance(doc, dict) or (doc.get("apiVersion"), doc.get("kind")) != (
        API_VERSION,
        "Policy",
    ):
        raise AuditPolicyError(f"the audit policy must be an {API_VERSION} Policy")
    problems = _validate_policy(doc)
    if problems:
        raise AuditPolicyError("invalid audit policy: " + ", ".join(str(p) for p in problems))
    return Policy(
        rules=tuple(_rule(r) for r in doc.get("rules") or ()),
        omit_stages=tuple(doc.get("omitStages") or ()),
        omit_managed_fields=bool(doc.get("omitManagedFields", False)),
    )


def _rule(raw: dict[str, Any]) -> PolicyRule:
    return PolicyRule(
        level=raw["level"],
        users=tuple(raw.get("users") or ()),
        user_groups=tuple(raw.get("userGroups") or ()),
        verbs=tuple(raw.get("verbs") or ()),
        resources=tuple(
            GroupResources(
                group=gr.get("group", "") or "",
                resources=tuple(gr.get("resources") or ()),
                resource_names=tuple(gr.get("resourceNames") or ()),
            )
            for gr in raw.get("resources") or ()
        ),
        namespaces=tuple(raw.get("namespaces") or ()),
        non_resource_urls=tuple(raw.get("nonResourceURLs") or ()),
        omit_stages=tuple(raw.get("omitStages") or ()),
        omit_managed_fields=raw.get("omitManagedFields"),
    )


def _validate_policy(doc: dict[str, Any]) -> field.ErrorList:
    problems = _validate_stages(doc.get("omitStages") or [], field.Path("omitStages"))
    for i, rule in enumerate(doc.get("rules") or []):
        path = field.Path("rules").index(i)
        if not isinstance(rule, dict):
            problems.append(field.invalid(path, rule, "must be an object"))
            continue
        level = rule.get("level")
        if not level:
            problems.append(field.required(path.child("level"), ""))
        elif level not in LEVELS:
            problems.append(field.not_supported(path.child("level"), level, LEVELS))
        problems.extend(_validate_stages(rule.get("omitStages") or [], path.child("omitStages")))
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("namespaces")):
            problems.append(
                field.invalid(
                    path.child("nonResourceURLs"),
                    rule["nonResourceURLs"],
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
    return problems


def _validate_stages(stages: Iterable[Any], path: field.Path) -> field.ErrorList:
    return field.ErrorList(
        field.not_supported(path.index(i), stage, STAGES)
        for i, stage in enumerate(stages)
        if stage not in STAGES
    )


def evaluate(policy: Policy, info: RequestInfo, user: UserInfo) -> Decision:
    """The first matching rule's level; no match is level None."""
    for rule in policy.rules:
        if rule_matches(rule, info, user):
            omit_managed = policy.omit_managed_fields
            if rule.omit_managed_fields is not None:
                omit_managed = rule.omit_managed_fields
            stages = frozenset(policy.omit_stages) | frozenset(rule.omit_stages)
            return Decision(rule.level, stages, omit_managed)
    return Decision("None")


def rule_matches(rule: PolicyRule, info: RequestInfo, user: UserInfo) -> bool:
    if rule.users and user.name not in rule.users:
        return False
    if rule.user_groups and not any(g in rule.user_groups for g in user.groups):
        return False
    if rule.verbs and info.verb not in rule.verbs:
        return False
    if rule.namespaces or rule.resources:
        return _matches_resource(rule, info)
    if rule.non_resource_urls:
        return not info.is_resource_request and any(
            _path_matches(info.path, spec) for spec in rule.non_resource_urls
        )
    return True


def _path_matches(path: str, spec: str) -> bool:
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def _matches_resource(rule: PolicyRule, info: RequestInfo) -> bool:
    if not info.is_resource_request:
        return False
    # Cluster-scoped resources have the namespace "".
    if rule.namespaces and info.namespace not in rule.namespaces:
        return False
    if not rule.resources:
        return True
    return any(
        gr.group == info.api_group and _group_resources_match(gr, info) for gr in rule.resources
    )


def _group_resources_match(gr: GroupResources, info: RequestInfo) -> bool:
    if not gr.resources:
        return True
    if gr.resource_names and info.name not in gr.resource_names:
        return False
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    for res in gr.resources:
        if res in (combined, "*"):
            return True
        if info.subresource and res.startswith("*/") and res[2:] == info.subresource:
            return True
        if res.endswith("/*") and res[:-2] == info.resource:
            return True
    return False


# ----- redaction --------------------------------------------------------------


def redact(obj: Any, info: RequestInfo | None = None) -> Any:
    """``obj`` with secret material replaced; never mutates ``obj``."""
    core = info is not None and info.api_group == ""
    if core and info is not None and info.resource == "secrets":
        return _redact_secret_request(obj)
    if info is not None and info.resource == "tokenreviews":
        obj = _redact_path(obj, ("spec", "token"))
    if core and info is not None and info.subresource == "token":
        obj = _redact_path(obj, ("status", "token"))
    return _walk(obj)


def _redact_secret_request(obj: Any) -> Any:
    """Anything sent to or read from ``secrets``: objects, lists, patches, tables."""
    if isinstance(obj, list):  # a JSON patch: every value may be secret data
        return [
            {k: (REDACTED if k == "value" else v) for k, v in op.items()}
            if isinstance(op, dict)
            else REDACTED
            for op in obj
        ]
    if not isinstance(obj, dict):
        return REDACTED
    if obj.get("kind") == "Status":
        return obj
    if isinstance(obj.get("items"), list):
        return {**obj, "items": [_redact_secret(item) for item in obj["items"]]}
    return _walk(_redact_secret(obj)) if obj.get("kind") == "Table" else _redact_secret(obj)


def _redact_secret(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for name in ("data", "stringData"):
        if isinstance(out.get(name), dict):
            out[name] = dict.fromkeys(out[name], REDACTED)
        elif name in out and out[name] is not None:
            out[name] = REDACTED
    meta = out.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        if LAST_APPLIED in meta["annotations"]:
            annotations = {**meta["annotations"], LAST_APPLIED: REDACTED}
            out["metadata"] = {**meta, "annotations": annotations}
    return out


_TOKEN_PATHS = {"TokenRequest": ("status", "token"), "TokenReview": ("spec", "token")}


def _walk(obj: Any) -> Any:
    """Redact by kind anywhere inside (lists, tables, embedded objects)."""
    if isinstance(obj, list):
        return [_walk(item) for item in obj]
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("kind")
    if kind == "Secret":
        obj = _redact_secret(obj)
    elif kind == "SecretList" and isinstance(obj.get("items"), list):
        obj = {**obj, "items": [_redact_secret(i) for i in obj["items"]]}
    elif kind in _TOKEN_PATHS:
        obj = _redact_path(obj, _TOKEN_PATHS[kind])
    return {k: _walk(v) if isinstance(v, dict | list) else v for k, v in obj.items()}


def _redact_path(obj: Any, path: tuple[str, str]) -> Any:
    outer, inner = path
    if isinstance(obj, dict) and isinstance(obj.get(outer), dict) and inner in obj[outer]:
        return {**obj, outer: {**obj[outer], inner: REDACTED}}
    return obj


def _without_managed_fields(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    if isinstance(out.get("items"), list):
        out["items"] = [_without_managed_fields(i) for i in out["items"]]
    return out


# ----- log backend ------------------------------------------------------------


class LogBackend:
    """JSON lines to a file (or ``-`` for stdout), rotated by size as lumberjack.

    When a line would take the file past ``max_bytes`` the file is renamed
    to ``<name>-<UTC time>.<ext>`` and a new one started; only the newest
    ``max_backups`` of those are kept (0 keeps all).
    """

    def __init__(self, path: str | Path, *, max_mb: int = 0, max_backups: int = 0) -> None:
        self.path = None if str(path) == "-" else Path(path)
        self.max_bytes = (max_mb or _DEFAULT_MAX_MB) << 20
        self.max_backups = max_backups
        self._out: IO[bytes] | None = None
        self._size = 0

    def write(self, event: dict[str, Any]) -> None:
        line = orjson.dumps(event) + b"\n"
        if self.path is None:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            return
        if self._out is None:
            self._open()
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        assert self._out is not None
        self._out.write(line)
        self._out.flush()
        self._size += len(line)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def backups(self) -> list[Path]:
        """Rotated files, oldest first."""
        assert self.path is not None
        stem, ext = self.path.stem, self.path.suffix
        return sorted(self.path.parent.glob(f"{stem}-*{ext}"))

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._out = os.fdopen(fd, "ab")
        self._size = os.fstat(fd).st_size

    def _rotate(self) -> None:
        assert self.path is not None
        self.close()
        os.replace(self.path, self._backup_name())
        self._open()
        if self.max_backups:
            for old in self.backups()[: -self.max_backups]:
                old.unlink(missing_ok=True)

    def _backup_name(self) -> Path:
        assert self.path is not None
        now = datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y-%m-%dT%H-%M-%S.") + f"{now.microsecond // 1000:03d}"
        candidate = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        n = 1
        while candidate.exists():  # several rotations within one millisecond
            candidate = self.path.with_name(f"{self.path.stem}-{stamp}{n:03d}{self.path.suffix}")
            n += 1
        return candidate


# ----- the filter -------------------------------------------------------------

Handler = Callable[[asgi.Send], Awaitable[None]]


class AuditFilter:
    """Audits the requests that pass through ``serve``; ``sink`` receives each Event."""

    def __init__(self, policy: Policy, sink: Callable[[dict[str, Any]], None]) -> None:
        self.policy = policy
        self.sink = sink

    async def serve(
        self,
        request: asgi.Request,
        send: asgi.Send,
        info: RequestInfo,
        user: UserInfo,
        handler: Handler,
    ) -> None:
        """Run ``handler`` (authorization and routing), recording it as the policy says."""
        decision = evaluate(self.policy, info, user)
        if decision.level == "None":
            await handler(send)
            return
        record = _Record(request, info, user, decision, self.sink)
        request.scope[SCOPE_KEY] = record
        record.emit("RequestReceived")
        try:
            await handler(record.wrap_send(send))
        except errors.StatusError as exc:
            await asgi.send_status_error(record.wrap_send(send), exc)
        except Exception:
            record.status = 500
            record.emit("Panic")
            raise
        record.emit("ResponseComplete")


def annotate_authorization(scope: asgi.Scope, allowed: bool, reason: str) -> None:
    """Upstream's ``authorization.k8s.io/decision`` and ``/reason`` annotations (if audited)."""
    record = scope.get(SCOPE_KEY)
    if isinstance(record, _Record):
        record.annotations.setdefault(DECISION_KEY, "allow" if allowed else "forbid")
        record.annotations.setdefault(REASON_KEY, reason)


def bind_context(scope: asgi.Scope, ctx: RequestContext) -> None:
    """Make what admission records in ``ctx`` land in the audit event of the request (if audited)."""
    record = scope.get(SCOPE_KEY)
    if isinstance(record, _Record):
        ctx.audit_annotations = record.annotations
        ctx.audit_level = record.decision.level


class _Record:
    """One audited request: its event skeleton and what was seen of the exchange."""

    def __init__(
        self,
        request: asgi.Request,
        info: RequestInfo,
        user: UserInfo,
        decision: Decision,
        sink: Callable[[dict[str, Any]], None],
    ) -> None:
        self.request = request
        self.info = info
        self.decision = decision
        self.sink = sink
        self.audit_id = request.header("audit-id") or str(uuid.uuid4())
        self.received = times.now_micro_time()
        self.user = _user(user)
        self.status = 0
        self.content_type = ""
        # Shared with the request's RequestContext (bind_context): admission writes here.
        self.annotations: dict[str, str] = {}
        self._request_chunks: list[bytes] = []
        self._response_chunks: list[bytes] | None = [] if self._wants_response() else None
        self._record_request_body()

    def _wants_response(self) -> bool:
        return self.decision.level == "RequestResponse" and self.info.verb != "watch"

    def _record_request_body(self) -> None:
        receive = self.request.receive

        async def recording() -> asgi.Message:
            message = await receive()
            if message["type"] == "http.request":
                self._request_chunks.append(message.get("body", b""))
            return message

        self.request.receive = recording

    def wrap_send(self, send: asgi.Send) -> asgi.Send:
        async def recording(message: asgi.Message) -> None:
            if message["type"] == "http.response.start":
                self._on_start(message)
            elif message["type"] == "http.response.body" and self._response_chunks is not None:
                self._response_chunks.append(message.get("body", b""))
                if sum(len(c) for c in self._response_chunks) > _MAX_CAPTURED_BODY:
                    self._response_chunks = None
            await send(message)

        return recording

    def _on_start(self, message: asgi.Message) -> None:
        self.status = int(message["status"])
        if self.status >= 400 and self._response_chunks is None and self.info.verb != "watch":
            # Failures are small and their Status is logged at every level.
            self._response_chunks = []
        headers = list(message.get("headers", []))
        for name, value in headers:
            if name == b"content-type":
                self.content_type = value.decode("latin-1")
        headers.append((b"audit-id", self.audit_id.encode("latin-1")))
        message["headers"] = headers
        if self.info.verb == "watch":
            self.emit("ResponseStarted")

    def emit(self, stage: str) -> None:
        if stage in self.decision.omit_stages:
            return
        self.sink(self._event(stage))

    def _event(self, stage: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": API_VERSION,
            "level": self.decision.level,
            "auditID": self.audit_id,
            "stage": stage,
            "requestURI": _request_uri(self.request.scope),
            "verb": self.info.verb,
            "user": self.user,
            "sourceIPs": _source_ips(self.request),
        }
        if agent := self.request.header("user-agent"):
            event["userAgent"] = agent
        request_obj = self._request_object() if stage != "RequestReceived" else None
        if self.info.is_resource_request:
            event["objectRef"] = _object_ref(self.info, request_obj)
        if stage != "RequestReceived":
            event["responseStatus"] = self._response_status()
        if request_obj is not None and self.decision.level in ("Request", "RequestResponse"):
            event["requestObject"] = self._loggable(request_obj)
        if self._wants_response() and stage == "ResponseComplete" and self._response_chunks:
            response_obj = _decode(b"".join(self._response_chunks), self.content_type)
            if response_obj is not None:
                event["responseObject"] = self._loggable(response_obj)
        event["requestReceivedTimestamp"] = self.received
        event["stageTimestamp"] = times.now_micro_time()
        if self.annotations:
            event["annotations"] = dict(self.annotations)
        return event

    def _request_object(self) -> Any:
        if not self._request_chunks:
            return None
        return _decode(b"".join(self._request_chunks), self.request.header("content-type"))

    def _loggable(self, obj: Any) -> Any:
        obj = redact(obj, self.info)
        return _without_managed_fields(obj) if self.decision.omit_managed_fields else obj

    def _response_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"metadata": {}, "code": self.status}
        if self.status >= 400 and self._response_chunks:
            body = _decode(b"".join(self._response_chunks), self.content_type)
            if isinstance(body, dict) and body.get("kind") == "Status":
                status = {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
        return status


def _decode(body: bytes, content_type: str) -> Any:
    """A body as JSON-shaped data (JSON, YAML, protobuf), or None if it is none of these."""
    if not body:
        return None
    try:
        if protobuf.is_protobuf(content_type):
            return protobuf.decode(body)
        if "yaml" in content_type:
            return yaml.safe_load(body)
        return orjson.loads(body)
    except (ValueError, yaml.YAMLError):
        return None


def _user(user: UserInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra}
    return out


def _object_ref(info: RequestInfo, request_obj: Any) -> dict[str, Any]:
    meta = request_obj.get("metadata") if isinstance(request_obj, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    ref = {
        "resource": info.resource,
        "namespace": info.namespace or meta.get("namespace", ""),
        "name": info.name or meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiGroup": info.api_group,
        "apiVersion": info.api_version,
        "resourceVersion": meta.get("resourceVersion", ""),
        "subresource": info.subresource,
    }
    return {k: v for k, v in ref.items() if v}


def _request_uri(scope: asgi.Scope) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    uri = raw + (b"?" + query if query else b"")
    return str(uri.decode("latin-1"))


def _source_ips(request: asgi.Request) -> list[str]:
    """X-Forwarded-For, then X-Real-Ip, then the peer, without repeats (upstream's SourceIPs)."""
    ips: list[str] = []
    forwarded = request.header("x-forwarded-for")
    candidates = [ip.strip() for ip in forwarded.split(",")] if forwarded else []
    candidates.append(request.header("x-real-ip").strip())
    client = request.scope.get("client")
    if client:
        candidates.append(str(client[0]))
    for ip in candidates:
        if ip and ip not in ips:
            ips.append(ip)
    return ips
