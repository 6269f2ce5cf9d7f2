"""Authorization: may this user do this verb on this resource or path?

The server's authorizer is a union, asked in order until one decides (upstream's
union authorizer as kube-apiserver builds it for ``--authorization-mode=RBAC``):

1. ``PrivilegedGroups``: ``system:masters`` may do anything (never reaches RBAC);
2. ``auth.rbac.RBACAuthorizer``: roles and bindings, including the bootstrap
   policy that grants ``system:unauthenticated`` the public-info paths.

No opinion from anyone is a denial: 403 with upstream's message
(``forbidden_message``). docs/decisions/0008-rbac.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from kajitori.registry.authorization.authorizer import Attributes, Authorizer, Decision, RuleSet
from kajitori.registry.generic.request import UserInfo

PRIVILEGED_GROUP = "system:masters"


class PrivilegedGroups:
    """Allow everything to members of the given groups (upstream's privileged group authorizer)."""

    def __init__(self, *groups: str) -> None:
        self.groups = frozenset(groups)

    def _privileged(self, user: UserInfo) -> bool:
        return not self.groups.isdisjoint(user.groups)

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return ("Allow", "") if self._privileged(attrs.user) else ("NoOpinion", "")

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        if not self._privileged(user):
            return RuleSet()
        return RuleSet(
            resource_rules=[{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            non_resource_rules=[{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        )


class Union:
    """Ask each authorizer in turn; the first Allow or Deny wins."""

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = tuple(authorizers)

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        reasons: list[str] = []
        for authorizer in self.authorizers:
            decision, reason = authorizer.authorize(attrs)
            if decision != "NoOpinion":
                return decision, reason
            if reason:
                reasons.append(reason)
        return "NoOpinion", "\n".join(reasons)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        combined = RuleSet()
        errors: list[str] = []
        for authorizer in self.authorizers:
            rules = authorizer.rules_for(user, namespace)
            combined.resource_rules.extend(rules.resource_rules)
            combined.non_resource_rules.extend(rules.non_resource_rules)
            combined.incomplete = combined.incomplete or rules.incomplete
            if rules.evaluation_error:
                errors.append(rules.evaluation_error)
        combined.evaluation_error = ", ".join(errors)
        return combined


def forbidden_message(
    user: UserInfo,
    verb: str,
    *,
    path: str = "",
    group: str = "",
    resource: str = "",
    subresource: str = "",
    namespace: str = "",
    reason: str = "",
) -> str:
    """Upstream's text for a denied request (after "... is forbidden: ").

    ``reason`` is the authorizer's (e.g. a binding to a missing role), appended
    after a colon as upstream's ForbiddenStatusError does.
    """
    who = f'User "{user.name}"'
    suffix = f": {reason}" if reason else ""
    if not resource:
        return f'{who} cannot {verb} path "{path}"{suffix}'
    full = f"{resource}/{subresource}" if subresource else resource
    text = f'{who} cannot {verb} resource "{full}" in API group "{group}"'
    if namespace:
        text += f' in the namespace "{namespace}"'
    else:
        text += " at the cluster scope"
    return text + suffix
