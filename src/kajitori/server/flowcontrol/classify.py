"""Which FlowSchema, priority level and flow a request belongs to.

Upstream's apiserver/pkg/util/flowcontrol (rule.go, apf_controller.go's
digest and startRequest): FlowSchemas are tried by ascending
``matchingPrecedence``, ties by name; the first whose rules match the
request wins. A rule matches when one of its subjects matches the user and,
for a resource request, one of its resource rules matches (a non-resource
request only looks at the non-resource rules). A FlowSchema naming a
priority level that does not exist is ignored (it is "dangling"). The
mandatory ``exempt`` and ``catch-all`` objects are imagined, without UIDs,
while the cluster does not hold them yet, as upstream does before its
informers have synced.

``Config`` is one digested configuration: built when FlowSchemas or levels
change, never mutated after; ``classify`` is pure.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from kajitori.api.flowcontrol_v1 import bootstrap
from kajitori.registry.generic.request import UserInfo
from kajitori.server.request_info import RequestInfo

Object = dict[str, Any]

# --max-requests-inflight 400 + --max-mutating-requests-inflight 200, upstream's defaults.
SERVER_CONCURRENCY_LIMIT = 600
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """What the queueing needs of one PriorityLevelConfiguration."""

    name: str
    uid: str
    exempt: bool
    limit: int = 0  # nominal concurrency limit, in seats
    queuing: bool = False  # limitResponse Queue (else Reject)
    queues: int = 0
    hand_size: int = 0
    queue_length_limit: int = 0


@dataclass(frozen=True, slots=True)
class SchemaSpec:
    """One FlowSchema, reduced to what matching needs."""

    name: str
    uid: str
    level: str
    precedence: int
    distinguisher: str  # "", "ByUser" or "ByNamespace"
    rules: tuple[Object, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """FlowSchemas in matching order and the levels they may name."""

    schemas: tuple[SchemaSpec, ...]
    levels: dict[str, LevelSpec] = field(default_factory=dict)


def digest(flow_schemas: list[Object], levels: list[Object]) -> Config:
    """The configuration the filter works with (mandatory objects imagined when missing)."""
    level_objects = {_name(obj): obj for obj in levels}
    for obj in bootstrap.mandatory_priority_levels():
        level_objects.setdefault(_name(obj), obj)
    specs = _level_specs(list(level_objects.values()))
    schema_objects = {_name(obj): obj for obj in flow_schemas}
    for obj in bootstrap.mandatory_flow_schemas():
        schema_objects.setdefault(_name(obj), obj)
    schemas = [_schema_spec(obj) for obj in schema_objects.values()]
    usable = [s for s in schemas if s.level in specs]
    usable.sort(key=lambda s: (s.precedence, s.name))
    return Config(tuple(usable), specs)


def _name(obj: Object) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _uid(obj: Object) -> str:
    return str(obj.get("metadata", {}).get("uid", ""))


def _level_specs(levels: list[Object]) -> dict[str, LevelSpec]:
    """Each level with its nominal limit: ceil(server limit × its shares / all shares)."""
    shares: dict[str, int] = {}
    for obj in levels:
        spec = obj.get("spec") or {}
        section = spec.get("exempt") if spec.get("type") == "Exempt" else spec.get("limited")
        shares[_name(obj)] = int((section or {}).get("nominalConcurrencyShares") or 0)
    total = sum(shares.values()) or 1
    out: dict[str, LevelSpec] = {}
    for obj in levels:
        name, spec = _name(obj), obj.get("spec") or {}
        limit = math.ceil(SERVER_CONCURRENCY_LIMIT * shares[name] / total)
        if spec.get("type") == "Exempt":
            out[name] = LevelSpec(name, _uid(obj), exempt=True, limit=limit)
            continue
        response = (spec.get("limited") or {}).get("limitResponse") or {}
        queuing = response.get("queuing") or {}
        out[name] = LevelSpec(
            name,
            _uid(obj),
            exempt=False,
            limit=limit,
            queuing=response.get("type") == "Queue",
            queues=int(queuing.get("queues") or 64),
            hand_size=int(queuing.get("handSize") or 8),
            queue_length_limit=int(queuing.get("queueLengthLimit") or 50),
        )
    return out


def _schema_spec(obj: Object) -> SchemaSpec:
    spec = obj.get("spec") or {}
    method = (spec.get("distinguisherMethod") or {}).get("type") or ""
    return SchemaSpec(
        name=_name(obj),
        uid=_uid(obj),
        level=str((spec.get("priorityLevelConfiguration") or {}).get("name") or ""),
        precedence=int(spec.get("matchingPrecedence") or 1000),
        distinguisher=str(method),
        rules=tuple(spec.get("rules") or ()),
    )


def classify(config: Config, user: UserInfo, info: RequestInfo) -> SchemaSpec:
    """The first FlowSchema matching; catch-all if none does (upstream's fallback)."""
    for schema in config.schemas:
        if any(_rule_matches(rule, user, info) for rule in schema.rules):
            return schema
    for schema in config.schemas:
        if schema.name == bootstrap.CATCH_ALL:
            return schema
    raise LookupError("no catch-all FlowSchema")  # digest always imagines one


def flow_distinguisher(schema: SchemaSpec, user: UserInfo, info: RequestInfo) -> str:
    if schema.distinguisher == "ByUser":
        return user.name
    if schema.distinguisher == "ByNamespace":
        return info.namespace
    return ""


def flow_hash(schema_name: str, distinguisher: str) -> int:
    """Upstream's hashFlowID: SHA-256 of name, NUL, distinguisher; first 8 bytes, little-endian."""
    digest_ = hashlib.sha256(schema_name.encode() + b"\x00" + distinguisher.encode()).digest()
    return int.from_bytes(digest_[:8], "little")


def deal(hash_value: int, deck_size: int, hand_size: int) -> list[int]:
    """Upstream's shuffle-sharding Dealer: ``hand_size`` distinct queue indexes from the hash."""
    hand_size = min(hand_size, deck_size)
    remainders: list[int] = []
    for i in range(hand_size):
        hash_value, remainder = divmod(hash_value, deck_size - i)
        remainders.append(remainder)
    hand: list[int] = []
    for i, card in enumerate(remainders):
        for j in range(i, 0, -1):
            if card >= remainders[j - 1]:
                card += 1
        hand.append(card)
    return hand


# ----- rule matching (rule.go) --------------------------------------------------


def _rule_matches(rule: Object, user: UserInfo, info: RequestInfo) -> bool:
    if not any(_subject_matches(s, user) for s in rule.get("subjects") or ()):
        return False
    if info.is_resource_request:
        return any(_resource_rule_matches(r, info) for r in rule.get("resourceRules") or ())
    return any(_non_resource_rule_matches(r, info) for r in rule.get("nonResourceRules") or ())


def _subject_matches(subject: Object, user: UserInfo) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        name = (subject.get("user") or {}).get("name")
        return name == "*" or name == user.name
    if kind == "Group":
        name = (subject.get("group") or {}).get("name")
        return name == "*" or name in user.groups
    if kind == "ServiceAccount":
        account = subject.get("serviceAccount") or {}
        prefix = f"{_SA_PREFIX}{account.get('namespace', '')}:"
        if account.get("name") == "*":
            return user.name.startswith(prefix)
        return user.name == prefix + str(account.get("name", ""))
    return False


def _resource_rule_matches(rule: Object, info: RequestInfo) -> bool:
    if not _contains(rule.get("verbs"), info.verb):
        return False
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    if not _contains(rule.get("resources"), resource):
        return False
    if not _contains(rule.get("apiGroups"), info.api_group):
        return False
    if not info.namespace:
        return bool(rule.get("clusterScope"))
    return _contains(rule.get("namespaces"), info.namespace)


def _non_resource_rule_matches(rule: Object, info: RequestInfo) -> bool:
    if not _contains(rule.get("verbs"), info.verb):
        return False
    for url in rule.get("nonResourceURLs") or ():
        if url == "*" or url == info.path:
            return True
        if url.endswith("*") and info.path.startswith(url.rstrip("*")):
            return True
    return False


def _contains(values: Any, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)
