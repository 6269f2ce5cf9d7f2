"""Which requests a policy's ``matchConstraints`` and a binding's ``matchResources`` select.

Upstream: k8s.io/apiserver/pkg/admission/plugin/policy/matching and
webhook/predicates/{rules,namespace,object}. A request matches when

1. the namespace selector selects the request's namespace (cluster-scoped
   requests other than namespaces always pass; a Namespace create or
   update is judged by its own labels);
2. the object selector selects the new or the old object's labels;
3. no ``excludeResourceRules`` rule matches; and
4. some ``resourceRules`` rule matches (none listed: everything), on the
   resource as the client addressed it or, with ``matchPolicy:
   Equivalent``, on the resource the store keeps it as (a request through
   ``extensions/v1beta1`` deployments matches a rule for ``apps/v1``).

A rule matches on operation, API group, version, resource and subresource
(``*``, ``*/*``, ``pods/*``, ``*/status``) and scope; ``resourceNames``
narrow it to named objects. ``Request`` is this module's view of one
admission request; the plugin builds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kajitori.machinery import errors, labels

Object = dict[str, Any]
# The labels of a namespace by name; raises NotFound when there is none.
NamespaceLabels = Callable[[str], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Resource:
    """A group/version/resource and subresource."""

    group: str
    version: str
    resource: str
    subresource: str = ""


@dataclass
class Request:
    """One admission request as matching and the CEL ``request`` variable see it."""

    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    target: Resource  # as the client addressed it
    stored: Resource  # as the store keeps it (the equivalent resource)
    kind: tuple[str, str, str]  # group, version, kind of the stored form
    namespace: str
    name: str
    obj: Object | None
    old: Object | None
    # The CEL ``request`` variable (upstream's AdmissionRequest without its objects).
    extra: dict[str, Any] = field(default_factory=dict)


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _labels_of(obj: Object | None) -> dict[str, str]:
    if obj is None:
        return {}
    found = _dict(obj.get("metadata")).get("labels")
    return found if isinstance(found, dict) else {}


def _selector(selector: Any) -> labels.Selector:
    return labels.selector_from_label_selector(_dict(selector))


async def matches(
    match: Object, request: Request, namespace_labels: NamespaceLabels
) -> tuple[bool, Resource | None]:
    """Whether ``match`` (MatchResources) selects ``request``, and the resource it matched as.

    A namespace that does not exist raises upstream's 404, but only once the
    rules say the request would otherwise be matched.
    """
    namespace_ok, namespace_error = await _namespace_matches(match, request, namespace_labels)
    if not namespace_ok and namespace_error is None:
        return False, None
    if not _object_matches(match, request):
        return False, None
    policy = match.get("matchPolicy") or "Equivalent"
    if _rules_match(match.get("excludeResourceRules"), policy, request) is not None:
        return False, None
    rules = match.get("resourceRules")
    matched = request.target if not rules else _rules_match(rules, policy, request)
    if matched is None:
        return False, None
    if namespace_error is not None:
        raise namespace_error
    return True, matched


async def _namespace_matches(
    match: Object, request: Request, namespace_labels: NamespaceLabels
) -> tuple[bool, errors.StatusError | None]:
    is_namespace = request.target.group == "" and request.target.resource == "namespaces"
    if not request.namespace and not is_namespace:
        return True, None
    selector = _selector(match.get("namespaceSelector"))
    if selector.empty:
        return True, None
    if (
        is_namespace
        and not request.target.subresource
        and request.operation in ("CREATE", "UPDATE")
    ):
        return selector.matches(_labels_of(request.obj)), None
    try:
        found = await namespace_labels(request.namespace)
    except errors.StatusError as exc:
        return False, exc
    return selector.matches(found), None


def _object_matches(match: Object, request: Request) -> bool:
    selector = _selector(match.get("objectSelector"))
    if selector.empty:
        return True
    # Objects without metadata (CONNECT options) match no selector, as upstream's matcher.
    return any(
        obj is not None and "metadata" in obj and selector.matches(_labels_of(obj))
        for obj in (request.obj, request.old)
    )


def _rules_match(rules: Any, policy: str, request: Request) -> Resource | None:
    """The resource a rule in ``rules`` matched the request as, or None."""
    named = [_dict(rule) for rule in rules] if isinstance(rules, list) else []
    for rule in named:
        if rule_matches(rule, request, request.target) and _name_matches(rule, request):
            return request.target
    if policy != "Equivalent" or request.stored == request.target:
        return None
    for rule in named:
        if rule_matches(rule, request, request.stored) and _name_matches(rule, request):
            return request.stored
    return None


def _name_matches(rule: Object, request: Request) -> bool:
    allowed = rule.get("resourceNames")
    return not allowed or request.name in allowed


def _listed(values: Any, value: str) -> bool:
    items: Sequence[Any] = values if isinstance(values, list) else ()
    return "*" in items or value in items


def rule_matches(rule: Object, request: Request, resource: Resource) -> bool:
    """upstream's rules.Matcher: operation, group, version, resource/subresource, scope."""
    return (
        _listed(rule.get("operations"), request.operation)
        and _listed(rule.get("apiGroups"), resource.group)
        and _listed(rule.get("apiVersions"), resource.version)
        and _resource_listed(rule.get("resources"), resource)
        and _scope_matches(rule.get("scope"), request)
    )


def _resource_listed(resources: Any, resource: Resource) -> bool:
    for entry in resources if isinstance(resources, list) else ():
        name, _, sub = str(entry).partition("/")
        if name in ("*", resource.resource) and sub in ("*", resource.subresource):
            return True
    return False


def _scope_matches(scope: Any, request: Request) -> bool:
    is_namespace = request.target.group == "" and request.target.resource == "namespaces"
    if scope == "Cluster":
        return is_namespace or not request.namespace
    if scope == "Namespaced":
        if is_namespace and not request.target.subresource:
            return False
        return bool(request.namespace)
    return True
