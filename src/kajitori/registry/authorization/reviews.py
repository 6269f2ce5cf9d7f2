"""Access reviews: ask the authorizer, answer, store nothing (upstream: pkg/registry/authorization).

SubjectAccessReview asks about any user (``kubectl auth can-i --as`` style
delegation, webhooks); LocalSubjectAccessReview the same, limited to the URL's
namespace; SelfSubjectAccessReview about the caller (``kubectl auth can-i``);
SelfSubjectRulesReview lists the caller's rules in a namespace (``kubectl auth
can-i --list``). All four are create-only: ``resources(authorizer)`` builds
their ``ResourceInfo`` entries around the server's authorizer, because the
authorizer lives above the registry (kajitori.auth) and is passed in by the
composition root.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import errors, field
from kajitori.registry import resource
from kajitori.registry.authorization import authorizer as authz
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic.request import RequestContext, UserInfo

Object = dict[str, Any]
GROUP = "authorization.k8s.io"


def resources(authorizer: authz.Authorizer) -> tuple[resource.ResourceInfo, ...]:
    """The four review kinds, answering with ``authorizer``."""

    async def subject(namespace: str, obj: Object, ctx: RequestContext) -> Object:
        return subject_access_review(authorizer, obj, kind="SubjectAccessReview")

    async def local(namespace: str, obj: Object, ctx: RequestContext) -> Object:
        return local_subject_access_review(authorizer, obj, namespace=namespace)

    async def self_review(namespace: str, obj: Object, ctx: RequestContext) -> Object:
        return self_subject_access_review(authorizer, obj, ctx.user)

    async def rules(namespace: str, obj: Object, ctx: RequestContext) -> Object:
        return self_subject_rules_review(authorizer, obj, ctx.user)

    return (
        _info("SubjectAccessReview", subject, namespaced=False),
        _info("SelfSubjectAccessReview", self_review, namespaced=False),
        _info("LocalSubjectAccessReview", local, namespaced=True),
        _info("SelfSubjectRulesReview", rules, namespaced=False),
    )


def _info(kind: str, create: resource.VirtualCreate, *, namespaced: bool) -> resource.ResourceInfo:
    return resource.ResourceInfo(
        group=GROUP,
        version="v1",
        kind=kind,
        plural=kind.lower() + "s",
        namespaced=namespaced,
        strategy=strategies.Strategy(),
        verbs=("create",),
        virtual_create=create,
    )


# ----- the reviews -------------------------------------------------------------


def subject_access_review(authorizer: authz.Authorizer, obj: Object, *, kind: str) -> Object:
    spec = obj.get("spec") or {}
    problems = _validate_spec(spec)
    if not spec.get("user") and not spec.get("groups"):
        problems.append(
            field.invalid(
                "spec.user", spec.get("user", ""), "at least one of user or group must be specified"
            )
        )
    _raise_if_invalid(kind, obj, problems)
    user = UserInfo(
        spec.get("user", ""),
        tuple(spec.get("groups") or ()),
        uid=spec.get("uid", ""),
        extra=_extra(spec.get("extra")),
    )
    return _answer(authorizer, obj, user)


def local_subject_access_review(
    authorizer: authz.Authorizer, obj: Object, *, namespace: str
) -> Object:
    spec = obj.get("spec") or {}
    if spec.get("nonResourceAttributes") is not None:
        _raise_if_invalid(
            "LocalSubjectAccessReview",
            obj,
            [
                field.invalid(
                    "spec.nonResourceAttributes",
                    spec["nonResourceAttributes"],
                    "disallowed on this kind of request",
                )
            ],
        )
    attributes = spec.get("resourceAttributes") or {}
    if attributes.get("namespace", "") != namespace:
        raise errors.bad_request(
            f"spec.resourceAttributes.namespace must match namespace: {namespace}"
        )
    obj.setdefault("metadata", {})["namespace"] = namespace
    return subject_access_review(authorizer, obj, kind="LocalSubjectAccessReview")


def self_subject_access_review(authorizer: authz.Authorizer, obj: Object, user: UserInfo) -> Object:
    spec = obj.get("spec") or {}
    _raise_if_invalid("SelfSubjectAccessReview", obj, _validate_spec(spec))
    return _answer(authorizer, obj, user)


def self_subject_rules_review(authorizer: authz.Authorizer, obj: Object, user: UserInfo) -> Object:
    namespace = (obj.get("spec") or {}).get("namespace", "")
    if not namespace:
        raise errors.bad_request("no namespace on request")
    rules = authorizer.rules_for(user, namespace)
    status: Object = {
        "resourceRules": [_resource_rule(r) for r in rules.resource_rules],
        "nonResourceRules": [_non_resource_rule(r) for r in rules.non_resource_rules],
        "incomplete": rules.incomplete,
    }
    if rules.evaluation_error:
        status["evaluationError"] = rules.evaluation_error
    # Upstream answers with a fresh object: the spec is not echoed.
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": f"{GROUP}/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {},
        "status": status,
    }


# ----- helpers -----------------------------------------------------------------


def _validate_spec(spec: Object) -> field.ErrorList:
    problems = field.ErrorList()
    resource_attrs = spec.get("resourceAttributes")
    non_resource_attrs = spec.get("nonResourceAttributes")
    if resource_attrs is not None and non_resource_attrs is not None:
        problems.append(
            field.invalid(
                "spec.nonResourceAttributes",
                non_resource_attrs,
                "cannot be specified in combination with resourceAttributes",
            )
        )
    if resource_attrs is None and non_resource_attrs is None:
        problems.append(
            field.invalid(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    return problems


def _raise_if_invalid(kind: str, obj: Object, problems: list[field.FieldError]) -> None:
    if problems:
        name = (obj.get("metadata") or {}).get("name", "")
        raise errors.invalid(errors.GroupKind(GROUP, kind), name, problems)


def attributes_from_spec(spec: Object, user: UserInfo) -> authz.Attributes:
    """Upstream's AuthorizationAttributesFrom: what a review spec asks about."""
    resource_attrs = spec.get("resourceAttributes")
    if resource_attrs is not None:
        return authz.Attributes(
            user=user,
            verb=resource_attrs.get("verb", ""),
            api_group=resource_attrs.get("group", ""),
            api_version=resource_attrs.get("version", ""),
            resource=resource_attrs.get("resource", ""),
            subresource=resource_attrs.get("subresource", ""),
            namespace=resource_attrs.get("namespace", ""),
            name=resource_attrs.get("name", ""),
            field_selector=str(
                (resource_attrs.get("fieldSelector") or {}).get("rawSelector") or ""
            ),
            label_selector=str(
                (resource_attrs.get("labelSelector") or {}).get("rawSelector") or ""
            ),
        )
    non_resource = spec.get("nonResourceAttributes") or {}
    return authz.Attributes(
        user=user,
        verb=non_resource.get("verb", ""),
        resource_request=False,
        path=non_resource.get("path", ""),
    )


def _answer(authorizer: authz.Authorizer, obj: Object, user: UserInfo) -> Object:
    decision, reason = authorizer.authorize(attributes_from_spec(obj.get("spec") or {}, user))
    status: Object = {"allowed": decision == "Allow"}
    if decision == "Deny":
        status["denied"] = True
    if reason:
        status["reason"] = reason
    obj.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    obj["status"] = status
    return obj


def _extra(raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, dict):
        return ()
    return tuple((k, tuple(v or ())) for k, v in sorted(raw.items()))


def _resource_rule(rule: authz.Rule) -> Object:
    out: Object = {"verbs": list(rule.get("verbs") or [])}
    for key in ("apiGroups", "resources", "resourceNames"):
        if rule.get(key):
            out[key] = list(rule[key])
    return out


def _non_resource_rule(rule: authz.Rule) -> Object:
    out: Object = {"verbs": list(rule.get("verbs") or [])}
    if rule.get("nonResourceURLs"):
        out["nonResourceURLs"] = list(rule["nonResourceURLs"])
    return out
