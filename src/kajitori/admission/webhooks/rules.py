"""Whether a webhook's rules match a request (upstream: predicates/rules).

Owns the match of one ``RuleWithOperations`` against a request's operation,
resource (as requested or an equivalent one), subresource and scope, and
the exemption of the admission configuration resources themselves (a
webhook could otherwise lock everyone out of fixing it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kajitori.admission.webhooks.attributes import GVR, NAMESPACES, Attributes

Rule = dict[str, Any]

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


def is_exempt(attrs: Attributes) -> bool:
    """Requests on the admission configuration and policy resources never reach webhooks."""
    return attrs.kind.group == "admissionregistration.k8s.io" and attrs.kind.kind in EXEMPT_KINDS


def matches(rule: Rule, attrs: Attributes, resource: GVR) -> bool:
    """``rule`` matches the request, taking its resource to be ``resource``."""
    return (
        _scope(rule, attrs, resource)
        and _operation(rule, attrs)
        and _exact_or_wildcard(rule.get("apiGroups") or (), resource.group)
        and _exact_or_wildcard(rule.get("apiVersions") or (), resource.version)
        and _resource(rule, resource.resource, attrs.subresource)
    )


def _exact_or_wildcard(items: Iterable[str], requested: str) -> bool:
    return any(item in ("*", requested) for item in items)


def _scope(rule: Rule, attrs: Attributes, resource: GVR) -> bool:
    scope = rule.get("scope") or "*"
    if scope == "*":
        return True
    # A Namespace is cluster-scoped although its requests carry its own name as namespace.
    if scope == "Namespaced":
        return resource != NAMESPACES and attrs.namespace != ""
    if scope == "Cluster":
        return resource == NAMESPACES or attrs.namespace == ""
    return False


def _operation(rule: Rule, attrs: Attributes) -> bool:
    return any(op in ("*", attrs.operation) for op in rule.get("operations") or ())


def _resource(rule: Rule, resource: str, subresource: str) -> bool:
    for entry in rule.get("resources") or ():
        name, _, sub = entry.partition("/")
        if name in ("*", resource) and sub in ("*", subresource):
            return True
    return False
