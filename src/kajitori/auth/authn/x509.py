"""x509 client certificates: user = CN, groups = O (upstream's x509 CommonNameUserConversion).

The TLS handshake has already verified the chain against the cluster CA
(``server/http.py`` asks for client certificates signed by it), so this only
reads the identity from the leaf. A verified certificate without a CN is
rejected, as upstream's "common name of client certificate was empty".
"""

from __future__ import annotations

from kajitori.auth import pki
from kajitori.auth.authn import union
from kajitori.registry.generic.request import UserInfo


class X509:
    """The peer certificate's subject as the user."""

    async def authenticate(self, credentials: union.Credentials) -> UserInfo | None:
        if not credentials.client_cert_chain:
            return None
        user, groups = pki.identity_from_cert(credentials.client_cert_chain[0])
        if not user:
            raise union.AuthenticationError("common name of client certificate was empty")
        return UserInfo(user, tuple(groups))
