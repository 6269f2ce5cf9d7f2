"""SelfSubjectReview: who the server thinks you are (``kubectl auth whoami``).

Upstream: pkg/registry/authentication/selfsubjectreview. Create-only and never
stored; the answer is the authenticated user (name, uid, groups, extra) with
a creation timestamp of now.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import times
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic.request import RequestContext

Object = dict[str, Any]


async def create(namespace: str, obj: Object, ctx: RequestContext) -> Object:
    user = ctx.user
    user_info: Object = {"username": user.name}
    if user.uid:
        user_info["uid"] = user.uid
    if user.groups:
        user_info["groups"] = list(user.groups)
    if user.extra:
        user_info["extra"] = {k: list(v) for k, v in user.extra}
    now = times.now_rfc3339()
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": now},
        "status": {"userInfo": user_info},
    }


RESOURCE = resource.ResourceInfo(
    group="authentication.k8s.io",
    version="v1",
    kind="SelfSubjectReview",
    plural="selfsubjectreviews",
    namespaced=False,
    strategy=strategies.Strategy(),
    verbs=("create",),
    virtual_create=create,
)
