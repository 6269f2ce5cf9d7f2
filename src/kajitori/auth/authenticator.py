"""Authentication: who is calling, from the request's credentials.

The one entry point the server uses (``Authenticator.authenticate``), built by
``new_authenticator`` as kube-apiserver composes its authenticators
(``kajitori.auth.authn``): x509 client certificates, then bearer tokens —
the static token file (``--token-auth-file``), service-account JWTs and
bootstrap tokens — with ``system:authenticated`` added to every user found,
and anonymous last for requests that present no credentials at all. Rejected
credentials are never anonymous: ``authenticate`` answers None and the
server replies 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kajitori.auth.authn import anonymous, union, x509
from kajitori.registry.generic.request import UserInfo

AUTHENTICATED = union.AUTHENTICATED


class Authenticator:
    """Request credentials → user; ``tokens`` also answers TokenReview."""

    def __init__(
        self, request: union.RequestAuthenticator, *, tokens: union.TokenAuthenticator
    ) -> None:
        self.request = request
        self.tokens = tokens

    async def authenticate(self, scope: Mapping[str, Any]) -> UserInfo | None:
        """The caller's identity, ANONYMOUS without credentials, None for bad credentials."""
        try:
            return await self.request.authenticate(credentials_from_scope(scope))
        except union.AuthenticationError:
            return None


def new_authenticator(
    token_authenticators: Sequence[union.TokenAuthenticator] = (), *, allow_anonymous: bool = True
) -> Authenticator:
    """x509, then bearer tokens through ``token_authenticators`` in order, then anonymous."""
    tokens = union.TokenUnion(token_authenticators)
    request: union.RequestAuthenticator = union.WithAuthenticatedGroup(
        union.Union([x509.X509(), union.BearerToken(tokens)])
    )
    if allow_anonymous:
        request = anonymous.FailOnError(request, anonymous.Anonymous())
    return Authenticator(request, tokens=tokens)


def credentials_from_scope(scope: Mapping[str, Any]) -> union.Credentials:
    """The TLS peer chain (put in the scope by server/http.py) and the headers, names lowercased."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tuple(tls.get("client_cert_chain") or ())
    headers = tuple(
        (key.decode("latin-1").lower(), value.decode("latin-1"))
        for key, value in scope.get("headers") or ()
    )
    return union.Credentials(client_cert_chain=chain, headers=headers)


DEFAULT = new_authenticator()
