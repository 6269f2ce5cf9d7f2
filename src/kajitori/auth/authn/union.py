"""Composing authenticators, as upstream's union, bearertoken and group adder.

Contracts, shared by every authenticator module here:

* a ``RequestAuthenticator`` returns the user for the credentials it owns,
  ``None`` when the request carries none of its kind, and raises
  ``AuthenticationError`` for credentials of its kind that do not hold;
* a ``TokenAuthenticator`` does the same for one bearer token: ``None`` means
  "not a token of mine" (another authenticator may know it).

``Union`` answers with the first user found; when nobody found one but some
raised, the request is unauthenticated (401), as upstream's union. The bearer
header authenticator owns ``Authorization: Bearer``: a token no token
authenticator accepts is ``invalid bearer token``. ``with_anonymous`` puts
anonymous behind everything else, failing on error (upstream's
``union.NewFailOnError``), so bad credentials are never silently anonymous.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Protocol

from kajitori.registry.generic.request import UserInfo

AUTHENTICATED = "system:authenticated"


class AuthenticationError(Exception):
    """Credentials of an authenticator's kind that it rejects (the request gets 401)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents: the verified TLS peer chain and its headers (lowercase names)."""

    client_cert_chain: tuple[bytes | str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return ""


class RequestAuthenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        """The user, ``None`` without credentials of this kind; raises AuthenticationError."""


class TokenAuthenticator(Protocol):
    async def authenticate_token(
        self, token: str, *, audiences: Sequence[str] = ()
    ) -> UserInfo | None:
        """The token's user, ``None`` if not a token of this kind; raises AuthenticationError.

        ``audiences`` are the ones the caller accepts (empty: the API server's own).
        """


class Union:
    """The first authenticator that finds a user wins; errors count only if nobody does."""

    def __init__(self, authenticators: Sequence[RequestAuthenticator]) -> None:
        self.authenticators = tuple(authenticators)

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        failures: list[str] = []
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(credentials)
            except AuthenticationError as exc:
                failures.append(str(exc))
                continue
            if user is not None:
                return user
        if failures:
            raise AuthenticationError(_aggregate(failures))
        return None


class TokenUnion:
    """Token authenticators in order; the first that knows the token answers."""

    def __init__(self, authenticators: Sequence[TokenAuthenticator]) -> None:
        self.authenticators = tuple(authenticators)

    async def authenticate_token(
        self, token: str, *, audiences: Sequence[str] = ()
    ) -> UserInfo | None:
        failures: list[str] = []
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate_token(token, audiences=audiences)
            except AuthenticationError as exc:
                failures.append(str(exc))
                continue
            if user is not None:
                return user
        if failures:
            raise AuthenticationError(_aggregate(failures))
        return None


class BearerToken:
    """``Authorization: Bearer <token>`` through a token authenticator (upstream's bearertoken)."""

    def __init__(self, tokens: TokenAuthenticator) -> None:
        self.tokens = tokens

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        token = bearer_token(credentials.header("authorization"))
        if not token:
            return None
        user = await self.tokens.authenticate_token(token)
        if user is None:
            raise AuthenticationError("invalid bearer token")
        return user


class WithAuthenticatedGroup:
    """Adds ``system:authenticated`` to every user found (upstream's AuthenticatedGroupAdder)."""

    def __init__(self, inner: RequestAuthenticator) -> None:
        self.inner = inner

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        user = await self.inner.authenticate(credentials)
        if user is None:
            return None
        return add_authenticated(user)


@functools.lru_cache(maxsize=1024)  # the same few users on every request
def add_authenticated(user: UserInfo) -> UserInfo:
    """``user`` in ``system:authenticated`` (unless anonymous or already there)."""
    if AUTHENTICATED in user.groups or user.name == "system:anonymous":
        return user
    return dataclasses.replace(user, groups=(*user.groups, AUTHENTICATED))


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer`` header ("" for any other scheme or none).

    As upstream: the scheme is case-insensitive and the value must be exactly
    two space-separated parts.
    """
    # ASCII whitespace only: header bytes arrive as latin-1, and Go's TrimSpace
    # does not treat a lone 0x85 byte (NEL in latin-1) as space.
    parts = header.strip(" \t\r\n\v\f").split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return ""
    return parts[1]


def _aggregate(failures: Sequence[str]) -> str:
    return failures[0] if len(failures) == 1 else "[" + ", ".join(failures) + "]"
