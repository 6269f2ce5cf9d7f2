"""Authorization: may this user do this verb on this resource or path?

Until RBAC arrives (the identity issue), the mode is upstream's
``AlwaysAllow`` for authenticated users, and for anonymous requests only
what upstream's bootstrap RBAC grants ``system:unauthenticated``: the
``system:public-info-viewer`` paths (health checks and /version); everything
else is 403 with upstream's message. See docs/decisions/0006.
"""

from __future__ import annotations

from kajitori.registry.generic.request import UserInfo

PUBLIC_INFO_PATHS = ("/healthz", "/livez", "/readyz", "/version")


def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_INFO_PATHS)


def authorize_path(user: UserInfo, verb: str, path: str) -> bool:
    if "system:unauthenticated" not in user.groups:
        return True
    return verb == "get" and _is_public(path)


def authorize_resource(
    user: UserInfo,
    verb: str,
    group: str,
    resource: str,
    subresource: str,
    namespace: str,
    name: str,
) -> bool:
    return "system:unauthenticated" not in user.groups


def forbidden_message(
    user: UserInfo,
    verb: str,
    *,
    path: str = "",
    group: str = "",
    resource: str = "",
    subresource: str = "",
    namespace: str = "",
) -> str:
    """Upstream's reason text for a denied request (after "... is forbidden: ")."""
    who = f'User "{user.name}"'
    if not resource:
        return f'{who} cannot {verb} path "{path}"'
    full = f"{resource}/{subresource}" if subresource else resource
    text = f'{who} cannot {verb} resource "{full}" in API group "{group}"'
    if namespace:
        text += f' in the namespace "{namespace}"'
    else:
        text += " at the cluster scope"
    return text
