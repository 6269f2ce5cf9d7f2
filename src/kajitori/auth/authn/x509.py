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

_REMEMBERED_CERTIFICATES = 1024


class X509:
    """The peer certificate's subject as the user."""

    def __init__(self) -> None:
        # A connection presents the same certificate on every request: one
        # UserInfo per certificate, so later steps see the same object.
        self._users: dict[bytes | str, UserInfo] = {}

    async def authenticate(self, credentials: union.Credentials) -> UserInfo | None:
        if not credentials.client_cert_chain:
            return None
        cert = credentials.client_cert_chain[0]
        found = self._users.get(cert)
        if found is not None:
            return found
        user, groups = pki.identity_from_cert(cert)
        if not user:
            raise union.AuthenticationError("common name of client certificate was empty")
        if len(self._users) >= _REMEMBERED_CERTIFICATES:
            self._users.clear()
        found = self._users[cert] = UserInfo(user, tuple(groups))
        return found

    def knows(self, cert: bytes | str) -> bool:
        """Whether ``cert`` was read before and named a user (so it names the same one again)."""
        return cert in self._users
