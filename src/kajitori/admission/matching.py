"""Which admission requests a webhook or a policy selects: the one matcher both plugins use.

Upstream: k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/{rules,
namespace,object} and plugin/policy/matching, which reuses them. Webhooks
(``webhooks.dispatch``) and ValidatingAdmissionPolicies (``policy.validating``)
both describe what they select as ``Criteria`` and ask ``Matcher.matches``.

A request is selected when

1. a rule matches it (``rule_matches``: operation, API group, version,
   resource and subresource with ``*``, ``*/*``, ``pods/*``, ``*/status``,
   and scope, a Namespace counting as cluster-scoped although its requests
   carry its own name as namespace; ``resourceNames`` narrow a policy's
   rule), first on the resource as the client addressed it, then, for
   ``matchPolicy: Equivalent``, on each served resource that is the same
   stored resource (``webhooks.attributes.Versions``), earlier rules first;
   MatchResources without ``resourceRules`` selects every resource;
2. no exclusion rule matches it (policies only);
3. the namespace selector selects the request's namespace: cluster-scoped
   requests other than namespaces always pass; a Namespace create or update
   is judged by the labels in the request, anything else by the stored
   namespace's; and
4. the object selector selects the new or the old object's labels (objects
   without metadata, such as CONNECT options, match no selector).

As upstream, a selector that does not parse or a namespace that does not
exist is an error only for a request the rest would select; until then the
request is just not selected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kajitori.machinery import errors, labels

if TYPE_CHECKING:
    from kajitori.admission.webhooks.attributes import GVK, GVR, Attributes, Versions
    from kajitori.registry.resource import ResourceInfo

Object = dict[str, Any]
Rule = dict[str, Any]
# A namespace by name; None when namespaces are not served; raises NotFound when there is none.
GetNamespace = Callable[[str], Awaitable[Object | None]]

EXEMPT_KINDS = frozenset(
    {
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    }
)


# What admission policies never see, by group and resource (any version): their own kinds,
# which a policy could otherwise lock everyone out of fixing, and the reviews that are
# answered, never stored (upstream's exclusion.Excluded()). Webhook configurations are not
# among them: a policy may guard those.
POLICY_EXCLUDED_RESOURCES = frozenset(
    {
        ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"),
        ("authentication.k8s.io", "selfsubjectreviews"),
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
    }
)


def is_exempt(attrs: Attributes) -> bool:
    """Requests on the admission configuration and policy kinds reach no webhook.

    A webhook could otherwise lock everyone out of fixing it (upstream's
    IsExemptAdmissionConfigurationResource, by kind).
    """
    return attrs.kind.group == "admissionregistration.k8s.io" and attrs.kind.kind in EXEMPT_KINDS


def is_policy_excluded(attrs: Attributes) -> bool:
    """Requests admission policies skip (upstream's policy plugin, by group and resource)."""
    return (attrs.resource.group, attrs.resource.resource) in POLICY_EXCLUDED_RESOURCES


# ----- selectors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed label selector, or the reason it does not parse (an error when used)."""

    selector: labels.Selector | None
    problem: str = ""

    @property
    def empty(self) -> bool:
        return self.selector is not None and self.selector.empty


EVERYTHING = Selector(labels.selector_from_label_selector({}))


def parse_selector(raw: Any) -> Selector:
    """A LabelSelector as a ``Selector``; absent (None or not an object) selects everything."""
    if not isinstance(raw, dict):
        return EVERYTHING
    try:
        return Selector(labels.selector_from_label_selector(raw))
    except labels.SelectorError as exc:
        return Selector(None, str(exc))


# ----- criteria ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criteria:
    """What selects requests: a webhook's rules and selectors, or a policy's MatchResources."""

    rules: tuple[Rule, ...]
    match_policy: str
    namespace_selector: Selector
    object_selector: Selector
    exclude_rules: tuple[Rule, ...] = ()
    # MatchResources without resourceRules selects every resource; a webhook without rules none.
    no_rules_select_all: bool = False


def _rules(raw: Any) -> tuple[Rule, ...]:
    return tuple(r for r in raw if isinstance(r, dict)) if isinstance(raw, list) else ()


def match_resources_criteria(match: Object) -> Criteria:
    """A policy's ``matchConstraints`` or a binding's ``matchResources`` as ``Criteria``."""
    return Criteria(
        rules=_rules(match.get("resourceRules")),
        match_policy=match.get("matchPolicy") or "Equivalent",
        namespace_selector=parse_selector(match.get("namespaceSelector")),
        object_selector=parse_selector(match.get("objectSelector")),
        exclude_rules=_rules(match.get("excludeResourceRules")),
        no_rules_select_all=True,
    )


@dataclass(frozen=True, slots=True)
class Match:
    """The resource and kind a request was selected as, and the served resource that is."""

    resource: GVR
    kind: GVK
    info: ResourceInfo


# ----- rules ------------------------------------------------------------------------------------


def rule_matches(rule: Rule, attrs: Attributes, resource: GVR) -> bool:
    """``rule`` matches the request, taking its resource to be ``resource`` (rules.Matcher)."""
    return (
        _scope(rule, attrs, resource)
        and _listed(rule.get("operations"), attrs.operation)
        and _listed(rule.get("apiGroups"), resource.group)
        and _listed(rule.get("apiVersions"), resource.version)
        and _resource_listed(rule.get("resources"), resource.resource, attrs.subresource)
    )


def _is_namespaces(resource: GVR) -> bool:
    return (resource.group, resource.version, resource.resource) == ("", "v1", "namespaces")


def _listed(items: Any, requested: str) -> bool:
    values: Sequence[Any] = items if isinstance(items, list | tuple) else ()
    return any(item in ("*", requested) for item in values)


def _scope(rule: Rule, attrs: Attributes, resource: GVR) -> bool:
    scope = rule.get("scope") or "*"
    if scope == "*":
        return True
    # A Namespace is cluster-scoped although its requests carry its own name as namespace.
    if scope == "Namespaced":
        return not _is_namespaces(resource) and attrs.namespace != ""
    if scope == "Cluster":
        return _is_namespaces(resource) or attrs.namespace == ""
    return False


def _resource_listed(entries: Any, resource: str, subresource: str) -> bool:
    for entry in entries if isinstance(entries, list | tuple) else ():
        name, _, sub = str(entry).partition("/")
        if name in ("*", resource) and sub in ("*", subresource):
            return True
    return False


def _name_listed(rule: Rule, attrs: Attributes) -> bool:
    allowed = rule.get("resourceNames")
    return not allowed or attrs.name in allowed


# ----- the matcher ------------------------------------------------------------------------------


class Matcher:
    """Decides whether ``Criteria`` select a request (upstream's matching.Matcher)."""

    def __init__(self, versions: Versions, get_namespace: GetNamespace) -> None:
        self.versions = versions
        self._get_namespace = get_namespace

    async def matches(self, criteria: Criteria, attrs: Attributes) -> Match | None:
        """The match, or None; raises a selector's or the namespace's error for a selected request.

        Rules come first here because they are cheap and need no namespace read;
        upstream evaluates the selectors first, with the same outcome.
        """
        if criteria.exclude_rules and self.match_rules(
            criteria.exclude_rules, criteria.match_policy, attrs
        ):
            return None
        if criteria.rules or not criteria.no_rules_select_all:
            found = self.match_rules(criteria.rules, criteria.match_policy, attrs)
        else:
            found = Match(attrs.resource, attrs.kind, attrs.info)
        if found is None:
            return None
        namespace_ok, namespace_error = await self._namespace_selects(criteria, attrs)
        if not namespace_ok and namespace_error is None:
            return None
        object_ok, object_error = _object_selects(criteria.object_selector, attrs)
        if not object_ok and object_error is None:
            return None
        if namespace_error is not None:
            raise namespace_error
        if object_error is not None:
            raise object_error
        return found

    def match_rules(self, rules: Sequence[Rule], policy: str, attrs: Attributes) -> Match | None:
        """The first rule's match as requested, else (Equivalent) through an equivalent resource."""
        for rule in rules:
            if rule_matches(rule, attrs, attrs.resource) and _name_listed(rule, attrs):
                return Match(attrs.resource, attrs.kind, attrs.info)
        if policy != "Equivalent":
            return None
        equivalents = [e for e in self.versions.equivalents(attrs) if e.resource != attrs.resource]
        # Earlier rules first, as upstream: a rule is tried against every equivalent resource.
        for rule in rules:
            for equivalent in equivalents:
                if rule_matches(rule, attrs, equivalent.resource) and _name_listed(rule, attrs):
                    return Match(equivalent.resource, equivalent.kind, equivalent.info)
        return None

    async def _namespace_selects(
        self, criteria: Criteria, attrs: Attributes
    ) -> tuple[bool, errors.StatusError | None]:
        if not attrs.namespace and attrs.resource.resource != "namespaces":
            return True, None  # cluster-scoped objects other than namespaces always match
        selector = criteria.namespace_selector
        if selector.selector is None:
            return False, errors.internal_error(selector.problem)
        if selector.empty:
            return True, None
        try:
            found = await self.namespace_labels(attrs)
        except errors.StatusError as exc:
            return False, exc
        return selector.selector.matches(found), None

    async def namespace_labels(self, attrs: Attributes) -> dict[str, str]:
        """The labels of the request's namespace (upstream's GetNamespaceLabels)."""
        # A namespace being created or updated has its labels in the request, not yet stored;
        # a DELETE's object is its options, so the stored namespace counts then.
        if (
            attrs.resource.resource == "namespaces"
            and not attrs.subresource
            and attrs.operation in ("CREATE", "UPDATE")
            and attrs.obj is not None
        ):
            return labels_of(attrs.obj)
        return labels_of(await self._get_namespace(attrs.namespace))


def _object_selects(
    selector: Selector, attrs: Attributes
) -> tuple[bool, errors.StatusError | None]:
    if selector.selector is None:
        return False, errors.internal_error(selector.problem)
    if selector.empty:
        return True, None
    chosen = selector.selector
    # Objects without metadata (CONNECT options) match no selector, as upstream's matcher.
    return any(
        obj is not None and "metadata" in obj and chosen.matches(labels_of(obj))
        for obj in (attrs.obj, attrs.old)
    ), None


def labels_of(obj: Object | None) -> dict[str, str]:
    if not isinstance(obj, dict):
        return {}
    meta = obj.get("metadata")
    found = meta.get("labels") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}
