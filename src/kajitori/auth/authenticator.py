"""Authentication: who is calling, from the request's credentials.

Today: x509 client certificates verified by the TLS handshake against the
cluster CA (user = CN, groups = O, as upstream) and anonymous requests
(``system:anonymous`` in ``system:unauthenticated``). Every authenticated
user is also in ``system:authenticated``. Bearer tokens arrive with the
identity issue (service accounts, static tokens, bootstrap tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kajitori.auth import pki
from kajitori.registry.generic.request import ANONYMOUS, UserInfo

AUTHENTICATED = "system:authenticated"


def authenticate(scope: Mapping[str, Any]) -> UserInfo | None:
    """The caller's identity, ANONYMOUS without credentials, None for bad credentials."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        user, groups = pki.identity_from_cert(chain[0])
        if not user:
            return None
        all_groups = tuple(groups) + ((AUTHENTICATED,) if AUTHENTICATED not in groups else ())
        return UserInfo(user, all_groups)
    return ANONYMOUS
