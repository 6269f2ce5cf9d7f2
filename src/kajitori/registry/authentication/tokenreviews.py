"""TokenReview: is this token valid, and whose is it? (upstream: pkg/registry/authentication/tokenreview).

Create-only and never stored. The token goes through the server's token
authenticators (static file, service accounts, bootstrap) for the requested
audiences (default: the API server's own); the answer says whether it
authenticated, as whom, and for which audiences, or why not. The
authenticator lives above this layer and is passed in by the composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kajitori.machinery import errors
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic.request import RequestContext, UserInfo

Object = dict[str, Any]
# (token, audiences) -> (user or None, error text)
TokenCheck = Callable[[str, Sequence[str]], Awaitable[tuple[UserInfo | None, str]]]


def resource_for(check: TokenCheck, *, api_audiences: Sequence[str]) -> resource.ResourceInfo:
    """The TokenReview resource, answering with ``check``."""

    async def create(namespace: str, obj: Object, ctx: RequestContext) -> Object:
        return await review(check, obj, api_audiences=api_audiences)

    return resource.ResourceInfo(
        group="authentication.k8s.io",
        version="v1",
        kind="TokenReview",
        plural="tokenreviews",
        namespaced=False,
        strategy=strategies.Strategy(),
        verbs=("create",),
        virtual_create=create,
    )


async def review(check: TokenCheck, obj: Object, *, api_audiences: Sequence[str]) -> Object:
    spec = obj.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise errors.bad_request("token is required for TokenReview in authentication")
    audiences = list(spec.get("audiences") or api_audiences)
    user, problem = await check(token, audiences)
    status: Object = {"user": {}}
    if user is None:
        status["authenticated"] = False
        status["error"] = problem or "invalid bearer token"
    else:
        status["authenticated"] = True
        status["user"] = _user_info(user)
        status["audiences"] = audiences
    answer = dict(obj)
    answer.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    answer["spec"] = spec
    answer["status"] = status
    return answer


def _user_info(user: UserInfo) -> Object:
    info: Object = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra}
    return info
