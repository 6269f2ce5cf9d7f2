"""Impersonation headers, after authentication and before authorization (upstream's WithImpersonation).

``Impersonate-User``, ``Impersonate-Uid``, ``Impersonate-Group`` (repeatable)
and ``Impersonate-Extra-<key>`` replace the authenticated user for the rest
of the request. Each requested attribute is itself authorized, verb
``impersonate``, as upstream:

* user → ``users`` (core group), or ``serviceaccounts`` in the account's
  namespace for ``system:serviceaccount:<ns>:<name>``;
* group → ``groups``; uid → ``uids`` and extra → ``userextras/<key>`` in
  ``authentication.k8s.io``.

A denial is a 403 naming the first attribute refused; groups, uid or extra
without a user is a 400. The impersonated user gets ``system:authenticated``
unless it is anonymous or ``system:unauthenticated`` was asked for; a
service account without asked-for groups gets its service-account groups.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence

from kajitori.auth import authorizer as authorizers
from kajitori.auth.authn import serviceaccount, union
from kajitori.machinery import errors
from kajitori.registry.authorization import authorizer as authz
from kajitori.registry.generic.request import UserInfo

USER = "impersonate-user"
UID = "impersonate-uid"
GROUP = "impersonate-group"
EXTRA_PREFIX = "impersonate-extra-"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
AUTHENTICATION_GROUP = "authentication.k8s.io"


@dataclasses.dataclass(frozen=True, slots=True)
class _Ask:
    """One attribute to impersonate: what RBAC is asked about it."""

    resource: str
    name: str
    group: str = ""
    namespace: str = ""
    subresource: str = ""


def requested(headers: Sequence[tuple[str, str]]) -> bool:
    """Whether the request asks to impersonate anyone."""
    return any(
        k == USER or k == UID or k == GROUP or k.startswith(EXTRA_PREFIX) for k, _ in headers
    )


def impersonate(
    user: UserInfo, headers: Sequence[tuple[str, str]], authorizer: authz.Authorizer
) -> UserInfo:
    """The user to act as; raises 400 for a malformed request and 403 for a refused one."""
    name, uid, groups, extra = _parse(headers)
    if not name:
        raise errors.bad_request(
            "requested impersonation of uid, groups or extra without impersonating a user"
        )
    asks = _asks(name, uid, groups, extra)
    for ask in asks:
        _authorize(user, ask, authorizer)
    return _impersonated(name, uid=uid, groups=groups, extra=extra)


def _parse(
    headers: Sequence[tuple[str, str]],
) -> tuple[str, str, list[str], dict[str, list[str]]]:
    name = uid = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for key, value in headers:
        if key == USER:
            name = value
        elif key == UID:
            uid = value
        elif key == GROUP:
            groups.append(value)
        elif key.startswith(EXTRA_PREFIX):
            # Extra keys are case-insensitive on the wire and may be %-encoded.
            extra_key = urllib.parse.unquote(key[len(EXTRA_PREFIX) :]).lower()
            extra.setdefault(extra_key, []).append(value)
    return name, uid, groups, extra


def _asks(name: str, uid: str, groups: list[str], extra: Mapping[str, list[str]]) -> list[_Ask]:
    account = serviceaccount.split_username(name)
    if account is not None:
        asks = [_Ask("serviceaccounts", account[1], namespace=account[0])]
    else:
        asks = [_Ask("users", name)]
    asks += [_Ask("groups", group) for group in groups]
    if uid:
        asks.append(_Ask("uids", uid, group=AUTHENTICATION_GROUP))
    for key, values in extra.items():
        asks += [
            _Ask("userextras", value, group=AUTHENTICATION_GROUP, subresource=key)
            for value in values
        ]
    return asks


def _authorize(user: UserInfo, ask: _Ask, authorizer: authz.Authorizer) -> None:
    attrs = authz.Attributes(
        user=user,
        verb="impersonate",
        api_group=ask.group,
        resource=ask.resource,
        subresource=ask.subresource,
        namespace=ask.namespace,
        name=ask.name,
    )
    decision, reason = authorizer.authorize(attrs)
    if decision == "Allow":
        return
    text = authorizers.forbidden_message(
        user,
        "impersonate",
        group=ask.group,
        resource=ask.resource,
        subresource=ask.subresource,
        namespace=ask.namespace,
        reason=reason,
    )
    raise errors.forbidden(errors.GroupResource(ask.group, ask.resource), ask.name, text)


def _impersonated(
    name: str, *, uid: str, groups: list[str], extra: Mapping[str, list[str]]
) -> UserInfo:
    all_groups = list(groups)
    account = serviceaccount.split_username(name)
    if account is not None and not groups:
        # A service account's groups are a fixed mapping; asked-for groups replace them.
        all_groups = list(serviceaccount.service_account_user(*account).groups)
    user = UserInfo(
        name,
        tuple(all_groups),
        uid=uid,
        extra=tuple(sorted((k, tuple(v)) for k, v in extra.items())),
    )
    if name == ANONYMOUS or UNAUTHENTICATED in all_groups:
        return user
    return union.add_authenticated(user)
