"""Webhook configurations: defaults and validation (upstream: pkg/apis/admissionregistration).

Owns what ``ValidatingWebhookConfiguration`` and ``MutatingWebhookConfiguration``
(admissionregistration.k8s.io/v1) get by default and must satisfy, in
upstream's words and order:

- defaults (``SetDefaults_*`` of the v1 package): ``failurePolicy: Fail``,
  ``matchPolicy: Equivalent``, empty namespace and object selectors,
  ``timeoutSeconds: 10``, a rule's ``scope: "*"``, a service's ``port: 443``,
  and for mutating webhooks ``reinvocationPolicy: Never``;
- validation: each webhook's name is fully qualified (three segments) and
  unique, its rules, enums, selectors, ``sideEffects`` (required, ``None`` or
  ``NoneOnDryRun``), timeout, client config (exactly one of a https URL or a
  service reference), ``admissionReviewVersions`` and ``matchConditions``
  (CEL that must compile with the variables admission offers);
- update ratcheting: rules that older servers did not enforce are relaxed
  when the stored object already broke them (side effects, review
  versions, unique names, label values in selectors), and match conditions
  are not recompiled when they did not change.

A list in a message is JSON (``["*","a"]``), as upstream's field errors
render values that are not scalars. The registry (``registry.admissionregistration``)
calls these; the dispatcher that calls the webhooks is another module's.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kajitori.api.apiextensions_v1 import cel, cel_cost
from kajitori.machinery import field, labels, names, objectmeta

Object = dict[str, Any]

VALIDATING = "ValidatingWebhookConfiguration"
MUTATING = "MutatingWebhookConfiguration"

ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
_FAILURE_POLICIES = ("Fail", "Ignore")
_MATCH_POLICIES = ("Equivalent", "Exact")
_ALL_SIDE_EFFECTS = ("None", "NoneOnDryRun", "Some", "Unknown")
_NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")
_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_REINVOCATION_POLICIES = ("IfNeeded", "Never")
_SCOPES = ("*", "Cluster", "Namespaced")
MAX_MATCH_CONDITIONS = 64
_URL_FORM = "; desired format: https://host[/path]"
# Names reserved for configurations loaded from manifests at start-up; with the
# ManifestBasedAdmissionControlConfig gate on (beta, default on in 1.37) the API
# refuses to create them and warns when an older one is updated.
STATIC_CONFIG_SUFFIX = ".static.k8s.io"
_STATIC_SUFFIX_DETAIL = (
    f'names ending with "{STATIC_CONFIG_SUFFIX}" are reserved for static manifest-based '
    "configurations and cannot be managed via the API"
)


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ----- defaults --------------------------------------------------------------------------


def set_defaults_validating_webhook_configuration(obj: Object) -> None:
    """SetDefaults_ValidatingWebhook (and its rules and service) for every webhook, in place."""
    for hook in _list(obj.get("webhooks")):
        if isinstance(hook, dict):
            _set_webhook_defaults(hook)


def set_defaults_mutating_webhook_configuration(obj: Object) -> None:
    """SetDefaults_MutatingWebhook: the validating defaults plus ``reinvocationPolicy: Never``."""
    for hook in _list(obj.get("webhooks")):
        if isinstance(hook, dict):
            _set_webhook_defaults(hook)
            if hook.get("reinvocationPolicy") is None:
                hook["reinvocationPolicy"] = "Never"


def _set_webhook_defaults(hook: Object) -> None:
    for key, value in (("failurePolicy", "Fail"), ("matchPolicy", "Equivalent")):
        if hook.get(key) is None:
            hook[key] = value
    for key in ("namespaceSelector", "objectSelector"):
        if hook.get(key) is None:
            hook[key] = {}
    if hook.get("timeoutSeconds") is None:
        hook["timeoutSeconds"] = 10
    for rule in _list(hook.get("rules")):
        if isinstance(rule, dict) and rule.get("scope") is None:
            rule["scope"] = "*"
    service = _dict(hook.get("clientConfig")).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443


# ----- validation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What this write must satisfy; an update relaxes what the stored object already broke."""

    require_no_side_effects: bool = True
    require_recognized_review_version: bool = True
    require_unique_names: bool = True
    allow_invalid_label_value: bool = False
    check_match_conditions: bool = True


def validate_webhook_configuration(obj: Object, *, mutating: bool) -> field.ErrorList:
    """ValidateValidatingWebhookConfiguration / ValidateMutatingWebhookConfiguration,
    then the reserved-name rule the registry adds on create."""
    errs = _validate_configuration(obj, mutating=mutating, opts=Options())
    errs.extend(validate_static_suffix(obj))
    return errs


def validate_webhook_configuration_update(
    new: Object, old: Object, *, mutating: bool
) -> field.ErrorList:
    """The common metadata rules, then validation with the stored object's ratchets."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    old_hooks = [_dict(h) for h in _list(old.get("webhooks"))]
    new_hooks = [_dict(h) for h in _list(new.get("webhooks"))]
    opts = Options(
        require_no_side_effects=all(h.get("sideEffects") in _NO_SIDE_EFFECTS for h in old_hooks),
        require_recognized_review_version=_all_have_accepted_version(old_hooks),
        require_unique_names=_names_unique(old_hooks),
        allow_invalid_label_value=_any_invalid_label_value(old_hooks),
        check_match_conditions=not _match_conditions_unchanged(new_hooks, old_hooks),
    )
    errs.extend(_validate_configuration(new, mutating=mutating, opts=opts))
    return errs


def validate_static_suffix(obj: Object) -> field.ErrorList:
    """ValidateStaticSuffix: a new configuration may not take a reserved name."""
    name = _str(_dict(obj.get("metadata")).get("name"))
    if name.endswith(STATIC_CONFIG_SUFFIX):
        return field.ErrorList(
            [field.invalid(field.Path("metadata", "name"), name, _STATIC_SUFFIX_DETAIL)]
        )
    return field.ErrorList()


def warnings_for_name(obj: Object) -> list[str]:
    """WarningsForStaticSuffix: an update of a configuration with a reserved name."""
    name = _str(_dict(obj.get("metadata")).get("name"))
    if name.endswith(STATIC_CONFIG_SUFFIX):
        return [f"metadata.name: {_STATIC_SUFFIX_DETAIL}"]
    return []


def _all_have_accepted_version(hooks: Sequence[Object]) -> bool:
    for hook in hooks:
        versions = _list(hook.get("admissionReviewVersions"))
        if versions and not any(v in ACCEPTED_REVIEW_VERSIONS for v in versions):
            return False
    return True


def _names_unique(hooks: Sequence[Object]) -> bool:
    seen = [_str(h.get("name")) for h in hooks]
    return len(seen) == len(set(seen))


def _any_invalid_label_value(hooks: Sequence[Object]) -> bool:
    for hook in hooks:
        for key in ("namespaceSelector", "objectSelector"):
            selector = hook.get(key)
            if isinstance(selector, dict) and labels.validate_label_selector(
                selector, field.Path(key)
            ):
                return True
    return False


def _match_conditions_unchanged(new: Sequence[Object], old: Sequence[Object]) -> bool:
    if len(new) != len(old):
        return False
    return all(
        _list(n.get("matchConditions")) == _list(o.get("matchConditions"))
        for n, o in zip(new, old, strict=True)
    )


def _validate_configuration(obj: Object, *, mutating: bool, opts: Options) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    seen: set[str] = set()
    for i, raw in enumerate(_list(obj.get("webhooks"))):
        hook = _dict(raw)
        path = field.Path("webhooks").index(i)
        errs.extend(_validate_webhook(hook, path, mutating=mutating, opts=opts))
        errs.extend(
            _validate_review_versions(
                hook.get("admissionReviewVersions"),
                path.child("admissionReviewVersions"),
                require_recognized=opts.require_recognized_review_version,
            )
        )
        name = _str(hook.get("name"))
        if opts.require_unique_names and name:
            if name in seen:
                errs.append(field.duplicate(path.child("name"), name))
            seen.add(name)
    return errs


def _validate_webhook(
    hook: Object, path: field.Path, *, mutating: bool, opts: Options
) -> field.ErrorList:
    """validateValidatingWebhook / validateMutatingWebhook: one entry of ``webhooks``."""
    errs = validate_fully_qualified_name(_str(hook.get("name")), path.child("name"))
    for j, rule in enumerate(_list(hook.get("rules"))):
        errs.extend(validate_rule_with_operations(_dict(rule), path.child("rules").index(j)))
    errs.extend(_enum(hook, "failurePolicy", _FAILURE_POLICIES, path))
    errs.extend(_enum(hook, "matchPolicy", _MATCH_POLICIES, path))
    errs.extend(_validate_side_effects(hook.get("sideEffects"), path.child("sideEffects"), opts))
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        errs.append(
            field.invalid(
                path.child("timeoutSeconds"),
                timeout,
                "the timeout value must be between 1 and 30 seconds",
            )
        )
    for key in ("namespaceSelector", "objectSelector"):
        selector = hook.get(key)
        if isinstance(selector, dict):
            errs.extend(
                labels.validate_label_selector(
                    selector,
                    path.child(key),
                    allow_invalid_label_value=opts.allow_invalid_label_value,
                )
            )
    if mutating:
        errs.extend(_enum(hook, "reinvocationPolicy", _REINVOCATION_POLICIES, path))
    errs.extend(
        _validate_client_config(_dict(hook.get("clientConfig")), path.child("clientConfig"))
    )
    if opts.check_match_conditions:
        errs.extend(
            validate_match_conditions(hook.get("matchConditions"), path.child("matchConditions"))
        )
    return errs


def _enum(hook: Object, key: str, allowed: Sequence[str], path: field.Path) -> field.ErrorList:
    value = hook.get(key)
    if value is not None and value not in allowed:
        return field.ErrorList([field.not_supported(path.child(key), value, allowed)])
    return field.ErrorList()


def _validate_side_effects(value: Any, path: field.Path, opts: Options) -> field.ErrorList:
    allowed = _NO_SIDE_EFFECTS if opts.require_no_side_effects else _ALL_SIDE_EFFECTS
    if value is None:
        return field.ErrorList([field.required(path, f"must specify one of {', '.join(allowed)}")])
    if value not in allowed:
        return field.ErrorList([field.not_supported(path, value, allowed)])
    return field.ErrorList()


def validate_fully_qualified_name(name: str, path: field.Path) -> field.ErrorList:
    """IsFullyQualifiedName: a DNS subdomain of at least three segments."""
    if not name:
        return field.ErrorList([field.required(path)])
    problems = names.is_dns1123_subdomain(name)
    if problems:
        return field.ErrorList([field.invalid(path, name, ",".join(problems))])
    if len(name.split(".")) < 3:
        detail = "should be a domain with at least three segments separated by dots"
        return field.ErrorList([field.invalid(path, name, detail)])
    return field.ErrorList()


# ----- rules -----------------------------------------------------------------------------


def validate_rule_with_operations(rule: Object, path: field.Path) -> field.ErrorList:
    """validateRuleWithOperations: operations, then the rule (subresources allowed)."""
    errs = field.ErrorList()
    operations = rule.get("operations")
    ops = _list(operations)
    if not ops:
        errs.append(field.required(path.child("operations")))
    if len(ops) > 1 and "*" in ops:
        errs.append(
            field.invalid(
                path.child("operations"),
                operations,
                "if '*' is present, must not specify other operations",
            )
        )
    for k, op in enumerate(ops):
        if op not in _OPERATIONS:
            errs.append(field.not_supported(path.child("operations").index(k), op, _OPERATIONS))
    errs.extend(validate_rule(rule, path, allow_subresources=True))
    return errs


def validate_rule(rule: Object, path: field.Path, *, allow_subresources: bool) -> field.ErrorList:
    """validateRule: groups, versions, resources and scope."""
    errs = field.ErrorList()
    groups = _list(rule.get("apiGroups"))
    if not groups:
        errs.append(field.required(path.child("apiGroups")))
    if len(groups) > 1 and "*" in groups:
        errs.append(
            field.invalid(
                path.child("apiGroups"),
                groups,
                "if '*' is present, must not specify other API groups",
            )
        )
    versions = _list(rule.get("apiVersions"))
    if not versions:
        errs.append(field.required(path.child("apiVersions")))
    if len(versions) > 1 and "*" in versions:
        errs.append(
            field.invalid(
                path.child("apiVersions"),
                versions,
                "if '*' is present, must not specify other API versions",
            )
        )
    for k, version in enumerate(versions):
        if version == "":
            errs.append(field.required(path.child("apiVersions").index(k)))
    resources = _list(rule.get("resources"))
    if allow_subresources:
        errs.extend(validate_resources(resources, path.child("resources")))
    else:
        errs.extend(validate_resources_without_subresources(resources, path.child("resources")))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        errs.append(field.not_supported(path.child("scope"), scope, _SCOPES))
    return errs


def validate_resources(resources: list[Any], path: field.Path) -> field.ErrorList:
    """validateResources: ``*``, ``*/*``, ``x/*`` and ``*/x`` may not overlap other entries."""
    errs = field.ErrorList()
    if not resources:
        errs.append(field.required(path))
    wildcard_sub_of: set[str] = set()  # x/*
    wildcard_res_for: set[str] = set()  # */x
    double_wildcard = single_wildcard = plain_resource = False
    for i, entry in enumerate(resources):
        text = _str(entry)
        if text == "":
            errs.append(field.required(path.index(i)))
            continue
        double_wildcard = double_wildcard or text == "*/*"
        single_wildcard = single_wildcard or text == "*"
        if "/" not in text:
            # Upstream keeps only the last plain entry's verdict here.
            plain_resource = text != "*"
            continue
        res, sub = text.split("/", 1)
        if res in wildcard_sub_of:
            errs.append(
                field.invalid(
                    path.index(i), text, f"if '{res}/*' is present, must not specify {text}"
                )
            )
        if sub in wildcard_res_for:
            errs.append(
                field.invalid(
                    path.index(i), text, f"if '*/{sub}' is present, must not specify {text}"
                )
            )
        if sub == "*":
            wildcard_sub_of.add(res)
        if res == "*":
            wildcard_res_for.add(sub)
    if len(resources) > 1 and double_wildcard:
        errs.append(
            field.invalid(
                path,
                resources,
                "if '*/*' is present, must not specify other resources",
            )
        )
    if single_wildcard and plain_resource:
        errs.append(
            field.invalid(
                path,
                resources,
                "if '*' is present, must not specify other resources without subresources",
            )
        )
    return errs


def validate_resources_without_subresources(
    resources: list[Any], path: field.Path
) -> field.ErrorList:
    """validateResourcesNoSubResources (policies' rules use it)."""
    errs = field.ErrorList()
    if not resources:
        errs.append(field.required(path))
    for i, entry in enumerate(resources):
        text = _str(entry)
        if text == "":
            errs.append(field.required(path.index(i)))
        if "/" in text:
            errs.append(field.invalid(path.index(i), text, "must not specify subresources"))
    if len(resources) > 1 and "*" in resources:
        errs.append(
            field.invalid(
                path,
                resources,
                "if '*' is present, must not specify other resources",
            )
        )
    return errs


# ----- client config ---------------------------------------------------------------------


def _validate_client_config(config: Object, path: field.Path) -> field.ErrorList:
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        return field.ErrorList([field.required(path, "exactly one of url or service is required")])
    if url is not None:
        return validate_webhook_url(path.child("url"), _str(url))
    service = _dict(service)
    port = service.get("port")
    return validate_webhook_service(
        path.child("service"),
        _str(service.get("namespace")),
        _str(service.get("name")),
        service.get("path"),
        port if isinstance(port, int) else 0,
    )


def validate_webhook_url(path: field.Path, url: str) -> field.ErrorList:
    """ValidateWebhookURL with https forced, over Go's url.Parse view of ``url``."""
    errs = field.ErrorList()
    try:
        parsed = _go_parse_url(url)
    except ValueError as exc:
        errs.append(field.required(path, f"url must be a valid URL: {exc}{_URL_FORM}"))
        return errs
    if parsed.scheme != "https":
        errs.append(
            field.invalid(path, parsed.scheme, "'https' is the only allowed URL scheme" + _URL_FORM)
        )
    if not parsed.host:
        errs.append(field.invalid(path, parsed.host, "host must be specified" + _URL_FORM))
    if parsed.user is not None:
        errs.append(
            field.invalid(path, parsed.user, "user information is not permitted in the URL")
        )
    if parsed.fragment:
        errs.append(field.invalid(path, parsed.fragment, "fragments are not permitted in the URL"))
    if parsed.raw_query:
        errs.append(
            field.invalid(path, parsed.raw_query, "query parameters are not permitted in the URL")
        )
    return errs


@dataclass(frozen=True)
class _GoURL:
    scheme: str
    host: str
    user: str | None
    fragment: str
    raw_query: str


_SCHEME_CHARS = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def _go_parse_url(raw: str) -> _GoURL:
    """The parts of Go's ``url.Parse`` result the validation reads; ValueError as Go fails."""
    quoted = orjson.dumps(raw).decode()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError(f"parse {quoted}: net/url: invalid control character in URL")
    rest, _, fragment = raw.partition("#")
    scheme = ""
    colon = rest.find(":")
    if colon == 0:
        raise ValueError(f"parse {quoted}: missing protocol scheme")
    if colon > 0 and _SCHEME_CHARS.fullmatch(rest[:colon]):
        scheme, rest = rest[:colon].lower(), rest[colon + 1 :]
    rest, has_query, raw_query = rest.partition("?")
    host, user = "", None
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority = rest[2:].split("/", 1)[0]
        if "@" in authority:
            userinfo, _, authority = authority.rpartition("@")
            user = urllib.parse.unquote(userinfo)
        host = _go_parse_host(authority, quoted)
    elif not scheme and ":" in rest.split("/", 1)[0]:
        # A relative reference whose first segment has a colon reads as a bad scheme.
        raise ValueError(f"parse {quoted}: first path segment in URL cannot contain colon")
    return _GoURL(
        scheme, host, user, urllib.parse.unquote(fragment), raw_query if has_query else ""
    )


def _go_parse_host(authority: str, quoted: str) -> str:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError(f"parse {quoted}: missing ']' in host")
        port = authority[end + 1 :]
    else:
        colon = authority.rfind(":")
        port = authority[colon:] if colon >= 0 else ""
    if port and (not port.startswith(":") or not port[1:].isdigit()) and port != ":":
        raise ValueError(f'parse {quoted}: invalid port "{port}" after host')
    for ch in authority:
        if ch in ' "<>\\^`{|}':
            raise ValueError(f'parse {quoted}: invalid character "{ch}" in host name')
    return authority


def validate_webhook_service(
    path: field.Path, namespace: str, name: str, url_path: Any, port: int
) -> field.ErrorList:
    """ValidateWebhookService: name, namespace, port and a path of DNS-subdomain segments."""
    errs = field.ErrorList()
    if not name:
        errs.append(field.required(path.child("name")))
    if not namespace:
        errs.append(field.required(path.child("namespace")))
    problems = names.is_valid_port_num(port)
    if problems:
        errs.append(
            field.invalid(path.child("port"), port, "port is not valid: " + ", ".join(problems))
        )
    if url_path is None:
        return errs
    text = _str(url_path)
    if text in ("", "/"):
        return errs
    if text == "//":
        errs.append(field.invalid(path.child("path"), text, "segment[0] may not be empty"))
        return errs
    if not text.startswith("/"):
        errs.append(field.invalid(path.child("path"), text, "must start with a '/'"))
    # Upstream drops the first character whatever it is, and one trailing slash.
    steps = text[1:].removesuffix("/").split("/")
    for i, step in enumerate(steps):
        if not step:
            errs.append(field.invalid(path.child("path"), text, f"segment[{i}] may not be empty"))
            continue
        for failure in names.is_dns1123_subdomain(step):
            errs.append(field.invalid(path.child("path"), text, f"segment[{i}]: {failure}"))
    return errs


# ----- admission review versions ---------------------------------------------------------


def _validate_review_versions(
    versions: Any, path: field.Path, *, require_recognized: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    items = _list(versions)
    accepted = ", ".join(ACCEPTED_REVIEW_VERSIONS)
    if not items:
        errs.append(field.required(path, f"must specify one of {accepted}"))
        return errs
    seen: set[str] = set()
    has_accepted = False
    for i, raw in enumerate(items):
        version = _str(raw)
        if version in seen:
            errs.append(field.invalid(path.index(i), version, "duplicate version"))
            continue
        seen.add(version)
        for problem in names.is_dns1035_label(version):
            errs.append(field.invalid(path.index(i), version, problem))
        has_accepted = has_accepted or version in ACCEPTED_REVIEW_VERSIONS
    if require_recognized and not has_accepted:
        errs.append(field.invalid(path, items, f"must include at least one of {accepted}"))
    return errs


# ----- match conditions ------------------------------------------------------------------

# What a webhook's match condition sees (upstream's plugin/cel environment with an
# authorizer and without params).
MATCH_CONDITION_VARIABLES = frozenset(
    {"object", "oldObject", "namespaceObject", "request", "authorizer"}
)
# Identifiers the CEL checker resolves as type names.
_TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "type", "uint"}
)


def validate_match_conditions(
    conditions: Any,
    path: field.Path,
    *,
    variables: frozenset[str] = MATCH_CONDITION_VARIABLES,
) -> field.ErrorList:
    """validateMatchConditions: at most 64, names qualified and unique, expressions compile."""
    errs = field.ErrorList()
    items = _list(conditions)
    if len(items) > MAX_MATCH_CONDITIONS:
        errs.append(field.too_many(path, len(items), MAX_MATCH_CONDITIONS))
    seen: set[str] = set()
    for i, raw in enumerate(items):
        condition = _dict(raw)
        item_path = path.index(i)
        errs.extend(_validate_match_condition(condition, item_path, variables))
        name = _str(condition.get("name"))
        if name:
            if name in seen:
                errs.append(field.duplicate(item_path.child("name"), name))
            seen.add(name)
    return errs


def _validate_match_condition(
    condition: Object, path: field.Path, variables: frozenset[str]
) -> field.ErrorList:
    errs = field.ErrorList()
    expression = _str(condition.get("expression")).strip()
    if not expression:
        errs.append(field.required(path.child("expression")))
    else:
        problem = expression_problem(expression, variables, returns="bool")
        if problem is not None:
            errs.append(field.invalid(path.child("expression"), expression, problem))
    name = _str(condition.get("name"))
    if not name:
        errs.append(field.required(path.child("name")))
    else:
        errs.extend(
            field.invalid(path.child("name"), name, msg) for msg in names.is_qualified_name(name)
        )
    return errs


def expression_problem(
    expression: str, variables: frozenset[str], *, returns: str | None = None
) -> str | None:
    """Why an admission CEL expression is refused (upstream's compile result text), or None.

    Syntax errors and references to undeclared variables read as cel-go
    reports them (``compilation failed: ERROR: <input>:1:1: ...``). There is
    no type checker here: ``returns`` is enforced where the output type is
    plain (literals, comparisons, fields of the untyped ``object``).
    """
    try:
        compiled = cel.compile_rule(expression)
    except (ValueError, RuntimeError) as exc:
        return "compilation failed: " + _cel_go_issues(str(exc))
    undeclared = _undeclared(expression, compiled, variables)
    if undeclared:
        return "compilation failed: " + "\n".join(undeclared)
    if returns is not None:
        output = _output_type(cel_cost.parse(expression))
        if output is not None and output != returns:
            return f"must evaluate to {returns} but got {output}"
    return None


_PARSE_PREFIX = re.compile(r"^Failed to parse expression '.*?': (?=ERROR:)", re.S)


def _cel_go_issues(message: str) -> str:
    """The Rust parser's message in cel-go's layout (its snippet lines start with " | ")."""
    text = _PARSE_PREFIX.sub("", message)
    return re.sub(r"(?m)^\| ", " | ", text)


def _undeclared(expression: str, compiled: cel.Compiled, variables: frozenset[str]) -> list[str]:
    referenced = compiled.program.references().get("variables", [])
    tree = cel_cost.parse(expression)
    bound = _macro_variables(tree) if tree is not None else set()
    unknown = [
        name
        for name in referenced
        if name not in variables and name not in bound and name not in _TYPE_NAMES
    ]
    issues: list[tuple[int, str]] = []
    for name in unknown:
        offset = _first_reference(expression, name)
        line_start = expression.rfind("\n", 0, offset) + 1
        line_no = expression.count("\n", 0, offset) + 1
        column = offset - line_start
        line = expression[line_start:].split("\n", 1)[0]
        issues.append(
            (
                offset,
                f"ERROR: <input>:{line_no}:{column + 1}: undeclared reference to '{name}' "
                f"(in container '')\n | {line}\n | {'.' * column}^",
            )
        )
    return [text for _, text in sorted(issues)]


def _macro_variables(node: cel_cost.Node) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.kind == "macro" and current.args and current.args[0].kind == "id":
            found.add(current.args[0].name)
        stack.extend(current.args)
        if current.target is not None:
            stack.append(current.target)
    return found


def _first_reference(expression: str, name: str) -> int:
    """The offset of ``name`` used as a variable (not a field or a function), else 0."""
    previous = ""
    for match in cel_cost.TOKEN.finditer(expression):
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "id" and text == name and previous not in (".", ".?"):
            return match.start(kind)
        previous = text
    return 0


_BOOL_CALLS = frozenset(
    {"_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_in_", "_&&_", "_||_", "!_", "has",
     "startsWith", "endsWith", "contains", "matches", "exists", "all", "exists_one"}
)  # fmt: skip
_CONVERSIONS = frozenset({"int", "uint", "double", "string", "bytes", "bool", "dyn"})
# Variables whose fields are untyped to the checker (``dyn``), and typed fields of ``request``.
_DYN_VARIABLES = frozenset({"object", "oldObject", "params"})
_REQUEST_FIELDS = {
    "name": "string",
    "namespace": "string",
    "operation": "string",
    "subResource": "string",
    "requestSubResource": "string",
    "dryRun": "bool",
    "options": "dyn",
}


def _output_type(node: cel_cost.Node | None) -> str | None:
    """The checker's output type of an expression where it is plain to see, else None."""
    if node is None:
        return None
    if node.kind == "lit":
        return _literal_type(node.text)
    if node.kind == "id":
        if node.name in ("true", "false"):
            return "bool"
        if node.name == "null":
            return "null_type"
        return "dyn" if node.name in _DYN_VARIABLES else None
    if node.kind in ("call", "macro"):
        if node.name in _BOOL_CALLS:
            return "bool"
        if node.name in _CONVERSIONS and node.target is None and len(node.args) == 1:
            return node.name
        if node.name == "size":
            return "int"
        if node.name == "_[_]" and node.args:
            return "dyn" if _rooted_in_dyn(node.args[0]) else None
        return None
    if node.kind == "select":
        if _rooted_in_dyn(node):
            return "dyn"
        target = node.target
        if target is not None and target.kind == "id" and target.name == "request":
            return _REQUEST_FIELDS.get(node.name)
    return None


def _rooted_in_dyn(node: cel_cost.Node) -> bool:
    while node.kind == "select" or (node.kind == "call" and node.name == "_[_]"):
        inner = node.target if node.kind == "select" else (node.args[0] if node.args else None)
        if inner is None:
            return False
        node = inner
    return node.kind == "id" and node.name in _DYN_VARIABLES


def _literal_type(text: str) -> str | None:
    if text[:1] in "'\"" or text[:2].lower() in ("r'", 'r"'):
        return "string"
    if text[:2].lower() in ("b'", 'b"'):
        return "bytes"
    if text[-1:] in "uU":
        return "uint"
    if "." in text or ("e" in text.lower() and not text.lower().startswith("0x")):
        return "double"
    return "int" if text else None
