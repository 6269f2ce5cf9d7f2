"""Validation of FlowSchemas and PriorityLevelConfigurations (upstream: pkg/apis/flowcontrol/validation).

Owns what the two kinds must satisfy, with upstream's messages and field
paths:

* FlowSchema: DNS-subdomain names; ``matchingPrecedence`` in 1..10000, with 1
  reserved to the schema named ``exempt``; a supported distinguisher
  method; a valid priority level name; per rule at least one subject
  (kinds ServiceAccount, Group, User, each with only its own member) and
  at least one resource or non-resource rule, whose verbs, API groups,
  resources, namespaces and non-resource URLs follow the wildcard rules;
* PriorityLevelConfiguration: type ``Exempt`` exactly for the name
  ``exempt``; a Limited level's shares, lendable and borrowing percentages,
  limit response and queuing parameters (positive, at most 10^7 queues, a
  hand no larger than the deck, and at most 60 bits of shuffle-sharding
  entropy);
* the mandatory objects (``api.flowcontrol_v1.bootstrap``) keep their fixed
  spec, except the ``exempt`` level's ``spec.exempt`` section;
* status conditions: a type each, no type twice.

An update is validated as a create (upstream's ValidateFlowSchemaUpdate),
after the metadata update rules every kind shares.
"""

from __future__ import annotations

import math
from typing import Any

from kajitori.api.flowcontrol_v1 import bootstrap
from kajitori.api.flowcontrol_v1.gojson import go_json
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

MAX_MATCHING_PRECEDENCE = 10000
MAX_QUEUES = 10 * 1000 * 1000
MAX_HASH_BITS = 60
# Upstream's v1beta3 round-trip marker; no v1 object may carry it.
PRESERVE_ZERO_SHARES_ANNOTATION = "flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares"

SUPPORTED_VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "proxy",
    "update",
    "watch",
)
SUBJECT_KINDS = ("Group", "ServiceAccount", "User")
DISTINGUISHER_METHODS = ("ByNamespace", "ByUser")
PRIORITY_LEVEL_TYPES = ("Exempt", "Limited")
LIMIT_RESPONSE_TYPES = ("Queue", "Reject")
_NS_INTRO = "each member of this list must be '*' or a DNS-1123 label; "


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ----- FlowSchema -----------------------------------------------------------------


def validate_flow_schema(obj: Object) -> field.ErrorList:
    """ValidateFlowSchema."""
    meta = _dict(obj.get("metadata"))
    errs = objectmeta.validate_object_meta(
        meta,
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    name = _str(meta.get("name"))
    spec = _dict(obj.get("spec"))
    spec_path = field.Path("spec")
    errs.extend(validate_flow_schema_spec(name, spec, spec_path))
    fixed = bootstrap.mandatory_flow_schema_specs().get(name)
    if fixed is not None and not semantically_equal(spec, fixed):
        message = f"spec of '{name}' must equal the fixed value"
        errs.append(field.invalid(spec_path, go_json(spec, "FlowSchemaSpec"), message))
    errs.extend(_validate_conditions(_dict(obj.get("status")), field.Path("status")))
    return errs


def validate_flow_schema_update(obj: Object, old: Object) -> field.ErrorList:
    """The metadata rules of every update, then the object as if created."""
    errs = objectmeta.validate_object_meta_update(
        _dict(obj.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(validate_flow_schema(obj))
    return errs


def validate_flow_schema_spec(name: str, spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    precedence = _int(spec.get("matchingPrecedence"))
    precedence_path = path.child("matchingPrecedence")
    if precedence <= 0:
        errs.append(field.invalid(precedence_path, precedence, "must be a positive value"))
    if precedence > MAX_MATCHING_PRECEDENCE:
        errs.append(
            field.invalid(
                precedence_path, precedence, f"must not be greater than {MAX_MATCHING_PRECEDENCE}"
            )
        )
    if precedence == 1 and name != bootstrap.EXEMPT:
        errs.append(
            field.invalid(
                precedence_path,
                precedence,
                "only the schema named 'exempt' may have matchingPrecedence 1",
            )
        )
    method = spec.get("distinguisherMethod")
    if method is not None and _dict(method).get("type") not in DISTINGUISHER_METHODS:
        errs.append(
            field.not_supported(
                path.child("distinguisherMethod", "type"),
                go_json(method, "FlowDistinguisherMethod"),
                DISTINGUISHER_METHODS,
            )
        )
    level = _str(_dict(spec.get("priorityLevelConfiguration")).get("name"))
    level_path = path.child("priorityLevelConfiguration", "name")
    if level:
        for message in names.name_is_dns_subdomain(level, False):
            errs.append(field.invalid(level_path, level, message))
    else:
        errs.append(field.required(level_path, "must reference a priority level"))
    for i, rule in enumerate(_list(spec.get("rules"))):
        errs.extend(_validate_policy_rules(_dict(rule), path.child("rules").index(i)))
    return errs


def _validate_policy_rules(rule: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    subjects = _list(rule.get("subjects"))
    if not subjects:
        errs.append(
            field.required(path.child("subjects"), "subjects must contain at least one value")
        )
    for i, subject in enumerate(subjects):
        errs.extend(_validate_subject(_dict(subject), path.child("subjects").index(i)))
    resource_rules = _list(rule.get("resourceRules"))
    non_resource_rules = _list(rule.get("nonResourceRules"))
    if not resource_rules and not non_resource_rules:
        errs.append(
            field.required(
                path, "at least one of resourceRules and nonResourceRules has to be non-empty"
            )
        )
    for i, item in enumerate(resource_rules):
        errs.extend(_validate_resource_rule(_dict(item), path.child("resourceRules").index(i)))
    for i, item in enumerate(non_resource_rules):
        errs.extend(
            _validate_non_resource_rule(_dict(item), path.child("nonResourceRules").index(i))
        )
    return errs


# Each subject kind's member field and the message when another kind carries it.
_MEMBERS = {
    "ServiceAccount": (
        "serviceAccount",
        "serviceAccount is forbidden when subject kind is not 'ServiceAccount'",
    ),
    "User": ("user", "user is forbidden when subject kind is not 'User'"),
    "Group": ("group", "group is forbidden when subject kind is not 'Group'"),
}
# The order upstream checks the other kinds' members in, per kind.
_OTHERS = {
    "ServiceAccount": ("User", "Group"),
    "User": ("ServiceAccount", "Group"),
    "Group": ("ServiceAccount", "User"),
}


def _validate_subject(subject: Object, path: field.Path) -> field.ErrorList:
    kind = subject.get("kind")
    if kind not in _MEMBERS:
        return field.ErrorList([field.not_supported(path.child("kind"), _str(kind), SUBJECT_KINDS)])
    member_key = _MEMBERS[kind][0]
    member = subject.get(member_key)
    member_path = path.child(member_key)
    if kind == "ServiceAccount":
        errs = _validate_service_account_subject(member, member_path)
    else:
        errs = _validate_named_subject(member, member_path, kind)
    for other in _OTHERS[kind]:
        other_key, message = _MEMBERS[other]
        if subject.get(other_key) is not None:
            errs.append(field.forbidden(path.child(other_key), message))
    return errs


def _validate_service_account_subject(member: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if member is None:
        errs.append(
            field.required(path, "serviceAccount is required when subject kind is 'ServiceAccount'")
        )
        return errs
    account = _dict(member)
    name = _str(account.get("name"))
    if not name:
        errs.append(field.required(path.child("name"), ""))
    elif name != "*":
        for message in names.name_is_dns_subdomain(name, False):
            errs.append(field.invalid(path.child("name"), name, message))
    namespace = _str(account.get("namespace"))
    if namespace:
        for message in names.name_is_dns_label(namespace, False):
            errs.append(field.invalid(path.child("namespace"), namespace, message))
    else:
        errs.append(
            field.required(path.child("namespace"), "must specify namespace for service account")
        )
    return errs


def _validate_named_subject(member: Any, path: field.Path, kind: str) -> field.ErrorList:
    errs = field.ErrorList()
    if member is None:
        key = _MEMBERS[kind][0]
        errs.append(field.required(path, f"{key} is required when subject kind is '{kind}'"))
    elif not _str(_dict(member).get("name")):
        errs.append(field.required(path.child("name"), ""))
    return errs


def _validate_verbs(verbs: list[Any], path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not verbs:
        errs.append(field.required(path, "verbs must contain at least one value"))
    elif "*" in verbs:
        if len(verbs) > 1:
            errs.append(
                field.invalid(path, verbs, "if '*' is present, must not specify other verbs")
            )
    elif not all(verb in SUPPORTED_VERBS for verb in verbs):
        errs.append(field.not_supported(path, verbs, SUPPORTED_VERBS))
    return errs


def _validate_resource_rule(rule: Object, path: field.Path) -> field.ErrorList:
    errs = _validate_verbs(_list(rule.get("verbs")), path.child("verbs"))
    errs.extend(_some_or_wildcard(rule, "apiGroups", path, "api group", "api groups"))
    errs.extend(_some_or_wildcard(rule, "resources", path, "resource", "resources"))
    errs.extend(_validate_namespaces(rule, path.child("namespaces")))
    return errs


def _some_or_wildcard(
    rule: Object, key: str, path: field.Path, one: str, many: str
) -> field.ErrorList:
    """A resource rule's list: at least one value, and ``*`` only alone."""
    values, child = _list(rule.get(key)), path.child(key)
    if not values:
        return field.ErrorList(
            [field.required(child, f"resource rules must supply at least one {one}")]
        )
    if len(values) > 1 and "*" in values:
        return field.ErrorList(
            [field.invalid(child, values, f"if '*' is present, must not specify other {many}")]
        )
    return field.ErrorList()


def _validate_namespaces(rule: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    namespaces = _list(rule.get("namespaces"))
    if not namespaces and rule.get("clusterScope") is not True:
        errs.append(
            field.required(
                path,
                "resource rules that are not cluster scoped must supply at least one namespace",
            )
        )
    elif "*" in namespaces:
        if len(namespaces) > 1:
            errs.append(
                field.invalid(
                    path, namespaces, "if '*' is present, must not specify other namespaces"
                )
            )
    else:
        for i, namespace in enumerate(namespaces):
            namespace = _str(namespace)
            for message in names.name_is_dns_label(namespace, False):
                errs.append(field.invalid(path.index(i), namespace, _NS_INTRO + message))
    return errs


def _validate_non_resource_rule(rule: Object, path: field.Path) -> field.ErrorList:
    errs = _validate_verbs(_list(rule.get("verbs")), path.child("verbs"))
    urls = _list(rule.get("nonResourceURLs"))
    urls_path = path.child("nonResourceURLs")
    if not urls:
        errs.append(field.required(urls_path, "nonResourceURLs must contain at least one value"))
    elif "*" in urls:
        if len(urls) > 1:
            errs.append(
                field.invalid(
                    urls_path, urls, "if '*' is present, must not specify other non-resource URLs"
                )
            )
    else:
        for i, url in enumerate(urls):
            problem = non_resource_url_problem(_str(url))
            if problem:
                errs.append(field.invalid(urls_path.index(i), _str(url), problem))
    return errs


def non_resource_url_problem(path: str) -> str:
    """ValidateNonResourceURLPath: what is wrong with ``path`` ("" if nothing)."""
    if not path:
        return "must not be empty"
    if path == "/":
        return ""
    if not path.startswith("/"):
        return "must start with slash"
    if " " in path:
        return "must not contain white-space"
    if "//" in path:
        return "must not contain double slash"
    wildcards = path.count("*")
    if wildcards > 1 or (wildcards == 1 and not path.endswith("/*")):
        return "wildcard can only do suffix matching"
    return ""


def _validate_conditions(status: Object, path: field.Path) -> field.ErrorList:
    """Upstream's ValidateFlowSchemaStatus (and the priority level's, the same rules)."""
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, condition in enumerate(_list(status.get("conditions"))):
        condition_type = _str(_dict(condition).get("type"))
        type_path = path.child("conditions").index(i).child("type")
        if condition_type in seen:
            errs.append(field.duplicate(type_path, condition_type))
        seen.add(condition_type)
        if not condition_type:
            errs.append(field.required(type_path, "must not be empty"))
    return errs


def validate_status_update(obj: Object, old: Object) -> field.ErrorList:
    """``/status`` of either kind: only the conditions are checked."""
    return _validate_conditions(_dict(obj.get("status")), field.Path("status"))


def validate_status_metadata_update(obj: Object, old: Object) -> field.ErrorList:
    """The metadata rules every update passes (upstream's BeforeUpdate checks them for all)."""
    return objectmeta.validate_object_meta_update(
        _dict(obj.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )


# ----- PriorityLevelConfiguration -------------------------------------------------


def validate_priority_level_configuration(obj: Object) -> field.ErrorList:
    """ValidatePriorityLevelConfiguration, as for a v1 request."""
    meta = _dict(obj.get("metadata"))
    errs = objectmeta.validate_object_meta(
        meta,
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    if PRESERVE_ZERO_SHARES_ANNOTATION in _dict(meta.get("annotations")):
        errs.append(
            field.forbidden(
                field.Path("metadata", "annotations"),
                f"annotation '{PRESERVE_ZERO_SHARES_ANNOTATION}' is forbidden",
            )
        )
    name = _str(meta.get("name"))
    spec = _dict(obj.get("spec"))
    spec_path = field.Path("spec")
    errs.extend(validate_priority_level_spec(name, spec, spec_path))
    errs.extend(_validate_mandatory_priority_level(name, spec, spec_path))
    errs.extend(_validate_conditions(_dict(obj.get("status")), field.Path("status")))
    return errs


def validate_priority_level_configuration_update(obj: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        _dict(obj.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    errs.extend(validate_priority_level_configuration(obj))
    return errs


def _validate_mandatory_priority_level(
    name: str, spec: Object, path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    fixed = bootstrap.mandatory_priority_level_specs().get(name)
    if fixed is None:
        return errs
    if name == bootstrap.EXEMPT:
        # An administrator may tune the exempt level's own section, nothing else.
        compared = {**spec, "exempt": fixed.get("exempt")}
        if not semantically_equal(compared, fixed):
            errs.append(
                field.invalid(
                    path,
                    go_json(spec, "PriorityLevelConfigurationSpec"),
                    f"spec of '{name}' except the 'spec.exempt' field must equal the fixed value",
                )
            )
        return errs
    if not semantically_equal(spec, fixed):
        message = f"spec of '{name}' must equal the fixed value"
        errs.append(field.invalid(path, go_json(spec, "PriorityLevelConfigurationSpec"), message))
    return errs


def validate_priority_level_spec(name: str, spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    level_type = spec.get("type")
    if (name == bootstrap.EXEMPT) != (level_type == "Exempt"):
        errs.append(
            field.invalid(
                path.child("type"),
                _str(level_type),
                "type must be 'Exempt' if and only if name is 'exempt'",
            )
        )
    if level_type == "Exempt":
        if spec.get("limited") is not None:
            errs.append(
                field.forbidden(path.child("limited"), "must be nil if the type is not Limited")
            )
        exempt = spec.get("exempt")
        if exempt is not None:
            errs.extend(_validate_exempt(_dict(exempt), path.child("exempt")))
    elif level_type == "Limited":
        if spec.get("exempt") is not None:
            errs.append(field.forbidden(path.child("exempt"), "must be nil if the type is Limited"))
        limited = spec.get("limited")
        if limited is None:
            errs.append(
                field.required(path.child("limited"), "must not be empty when type is Limited")
            )
        else:
            errs.extend(_validate_limited(_dict(limited), path.child("limited")))
    else:
        errs.append(field.not_supported(path.child("type"), _str(level_type), PRIORITY_LEVEL_TYPES))
    return errs


def _validate_limited(limited: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    # Upstream still refuses 0 shares (its strategies pass no AllowZero option),
    # so that servers older than 1.29 never read a 0 back as the default 30.
    shares = _int(limited.get("nominalConcurrencyShares"))
    if shares <= 0:
        errs.append(
            field.invalid(path.child("nominalConcurrencyShares"), shares, "must be positive")
        )
    errs.extend(
        _validate_limit_response(_dict(limited.get("limitResponse")), path.child("limitResponse"))
    )
    lendable = limited.get("lendablePercent")
    if lendable is not None and not 0 <= _int(lendable) <= 100:
        errs.append(
            field.invalid(
                path.child("lendablePercent"),
                _int(lendable),
                "must be between 0 and 100, inclusive",
            )
        )
    borrowing = limited.get("borrowingLimitPercent")
    if borrowing is not None and _int(borrowing) < 0:
        errs.append(
            field.invalid(
                path.child("borrowingLimitPercent"),
                _int(borrowing),
                "if specified, must be a non-negative integer",
            )
        )
    return errs


def _validate_exempt(exempt: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    shares = exempt.get("nominalConcurrencyShares")
    if shares is not None and _int(shares) < 0:
        errs.append(
            field.invalid(
                path.child("nominalConcurrencyShares"),
                _int(shares),
                "must be a non-negative integer",
            )
        )
    lendable = exempt.get("lendablePercent")
    if lendable is not None and not 0 <= _int(lendable) <= 100:
        errs.append(
            field.invalid(
                path.child("lendablePercent"),
                _int(lendable),
                "must be between 0 and 100, inclusive",
            )
        )
    return errs


def _validate_limit_response(response: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    response_type = response.get("type")
    queuing = response.get("queuing")
    if response_type == "Reject":
        if queuing is not None:
            errs.append(
                field.forbidden(
                    path.child("queuing"),
                    "must be nil if limited.limitResponse.type is not Limited",
                )
            )
    elif response_type == "Queue":
        if queuing is None:
            errs.append(
                field.required(
                    path.child("queuing"),
                    "must not be empty if limited.limitResponse.type is Limited",
                )
            )
        else:
            errs.extend(_validate_queuing(_dict(queuing), path.child("queuing")))
    else:
        errs.append(
            field.not_supported(path.child("type"), _str(response_type), LIMIT_RESPONSE_TYPES)
        )
    return errs


def required_entropy_bits(deck_size: int, hand_size: int) -> int:
    """Upstream's shufflesharding.RequiredEntropyBits: ceil(log2(deck) * hand)."""
    return math.ceil(math.log2(deck_size) * hand_size)


def _validate_queuing(queuing: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    length = _int(queuing.get("queueLengthLimit"))
    if length <= 0:
        errs.append(field.invalid(path.child("queueLengthLimit"), length, "must be positive"))
    queues = _int(queuing.get("queues"))
    if queues <= 0:
        errs.append(field.invalid(path.child("queues"), queues, "must be positive"))
    elif queues > MAX_QUEUES:
        errs.append(
            field.invalid(path.child("queues"), queues, f"must not be greater than {MAX_QUEUES}")
        )
    hand = _int(queuing.get("handSize"))
    hand_path = path.child("handSize")
    if hand <= 0:
        errs.append(field.invalid(hand_path, hand, "must be positive"))
    elif hand > queues:
        errs.append(field.invalid(hand_path, hand, f"should not be greater than queues ({queues})"))
    elif required_entropy_bits(queues, hand) > MAX_HASH_BITS:
        errs.append(
            field.invalid(
                hand_path,
                hand,
                f"required entropy bits of deckSize {queues} and handSize {hand} "
                f"should not be greater than {MAX_HASH_BITS}",
            )
        )
    return errs


# ----- comparison -------------------------------------------------------------------


def semantically_equal(a: Any, b: Any) -> bool:
    """Upstream's apiequality.Semantic.DeepEqual on a spec, over wire-form JSON.

    Absent, null, false, "" and [] all decode to Go's zero value there, so
    they compare equal here; numbers are kept as they are (the pointer
    fields, where 0 and unset differ, are defaulted before validation).
    """
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _canonical(v)
            for k, v in value.items()
            if not (v is None or v is False or v == "" or v == [])
        }
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value
