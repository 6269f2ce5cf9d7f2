"""Bootstrap tokens (upstream: plugin/pkg/auth/authenticator/token/bootstrap).

A token ``<id>.<secret>`` (6 and 16 characters of ``[a-z0-9]``) names the
Secret ``kube-system/bootstrap-token-<id>`` of type
``bootstrap.kubernetes.io/token``. It authenticates when that Secret holds the
same ``token-secret``, allows ``usage-bootstrap-authentication``, is not being
deleted and has not passed its ``expiration``. The user is
``system:bootstrap:<id>`` in ``system:bootstrappers`` plus the Secret's
``auth-extra-groups``. A token of the right shape whose Secret does not fit is
rejected without saying why (upstream logs the reason and answers 401).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import re
from collections.abc import Sequence

from kajitori.auth.authn import serviceaccount, union
from kajitori.machinery import times
from kajitori.registry.generic.request import UserInfo

NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
USER_PREFIX = "system:bootstrap:"
DEFAULT_GROUP = "system:bootstrappers"
_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_EXTRA_GROUP = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")


class BootstrapTokens:
    """Authenticates bootstrap tokens against their kube-system Secrets."""

    def __init__(self, get_object: serviceaccount.ObjectGetter) -> None:
        self.get_object = get_object

    async def authenticate_token(
        self, token: str, *, audiences: Sequence[str] = ()
    ) -> UserInfo | None:
        match = _TOKEN.match(token)
        if match is None:
            return None
        token_id, token_secret = match.groups()
        secret = await self.get_object("secrets", NAMESPACE, SECRET_PREFIX + token_id)
        if secret is None:
            return None
        data = _decoded(secret)
        if (
            secret.get("type") != SECRET_TYPE
            or (secret.get("metadata") or {}).get("deletionTimestamp")
            or data.get("token-id", token_id) != token_id
            or not hmac.compare_digest(data.get("token-secret", ""), token_secret)
            or data.get("usage-bootstrap-authentication") != "true"
            or _expired(data.get("expiration", ""))
        ):
            raise union.AuthenticationError("invalid bootstrap token")
        groups = [DEFAULT_GROUP]
        for group in data.get("auth-extra-groups", "").split(","):
            group = group.strip()
            if group and _EXTRA_GROUP.match(group) and group not in groups:
                groups.append(group)
        return UserInfo(USER_PREFIX + token_id, tuple(groups))


def _decoded(secret: dict[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    data = secret.get("data") or {}
    assert isinstance(data, dict)
    for key, value in data.items():
        try:
            out[key] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
            continue
    return out


def _expired(expiration: str) -> bool:
    if not expiration:
        return False
    when = times.parse_time(expiration)
    if when is None:
        return True  # upstream treats an unparsable expiration as expired
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when <= datetime.datetime.now(datetime.UTC)
