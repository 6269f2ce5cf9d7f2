"""What an authorizer is asked and answers (upstream: apiserver/pkg/authorization/authorizer).

Lives in the registry layer because the access review kinds call an
authorizer from their create handler, and the authorizers themselves
(``kajitori.auth``) sit above the registry. ``Attributes`` is one request
as authorization sees it: a resource request (verb, API group, resource,
subresource, namespace, name) or a non-resource one (verb, path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from kajitori.registry.generic.request import UserInfo

Decision = Literal["Allow", "Deny", "NoOpinion"]
Rule = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Attributes:
    """One request as the authorizer sees it (upstream's AttributesRecord)."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    # Raw selectors of a list, watch or deletecollection (KEP-4601); "" when none.
    field_selector: str = ""
    label_selector: str = ""


@dataclass(slots=True)
class RuleSet:
    """What a user may do in a namespace, as SelfSubjectRulesReview reports it."""

    resource_rules: list[Rule] = field(default_factory=list)
    non_resource_rules: list[Rule] = field(default_factory=list)
    incomplete: bool = False
    evaluation_error: str = ""


class Authorizer(Protocol):
    """Decides requests; answers from memory, so both calls are synchronous."""

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        """The decision and a reason (shown in SubjectAccessReview status)."""
        ...

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        """Every rule that applies to ``user`` in ``namespace`` ("" for cluster-wide only)."""
        ...
