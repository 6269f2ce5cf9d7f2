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
_REMEMBERED_CERTIFICATES = 1024


class Authenticator:
    """Request credentials → user; ``tokens`` also answers TokenReview.

    ``certificates``, when given, must be the authenticator ``request`` asks
    first (as ``new_authenticator`` composes them): then a client certificate
    that named a user once names the same user on every later request, so the
    answer is remembered per certificate and the headers are not even read.
    A connection presents one certificate for its life, so this is in effect
    a per-connection user.
    """

    def __init__(
        self,
        request: union.RequestAuthenticator,
        *,
        tokens: union.TokenAuthenticator,
        certificates: x509.X509 | None = None,
    ) -> None:
        self.request = request
        self.tokens = tokens
        self.certificates = certificates
        self._by_certificate: dict[bytes | str, UserInfo] = {}

    async def authenticate(self, scope: Mapping[str, Any]) -> UserInfo | None:
        """The caller's identity, ANONYMOUS without credentials, None for bad credentials."""
        cert = _client_certificate(scope)
        if cert is not None:
            known = self._by_certificate.get(cert)
            if known is not None:
                return known
        try:
            user = await self.request.authenticate(credentials_from_scope(scope))
        except union.AuthenticationError:
            return None
        if cert is not None and user is not None and self._names_user(cert):
            if len(self._by_certificate) >= _REMEMBERED_CERTIFICATES:
                self._by_certificate.clear()
            self._by_certificate[cert] = user
        return user

    def _names_user(self, cert: bytes | str) -> bool:
        # Asked first, the certificate authenticator answered this request's user.
        return self.certificates is not None and self.certificates.knows(cert)


def new_authenticator(
    token_authenticators: Sequence[union.TokenAuthenticator] = (), *, allow_anonymous: bool = True
) -> Authenticator:
    """x509, then bearer tokens through ``token_authenticators`` in order, then anonymous."""
    tokens = union.TokenUnion(token_authenticators)
    certificates = x509.X509()
    request: union.RequestAuthenticator = union.WithAuthenticatedGroup(
        union.Union([certificates, union.BearerToken(tokens)])
    )
    if allow_anonymous:
        request = anonymous.FailOnError(request, anonymous.Anonymous())
    return Authenticator(request, tokens=tokens, certificates=certificates)


def _client_certificate(scope: Mapping[str, Any]) -> bytes | str | None:
    """The client's own certificate from the scope's TLS extension, if it presented one."""
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if extensions else None
    chain = tls.get("client_cert_chain") if tls else None
    return chain[0] if chain else None


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
