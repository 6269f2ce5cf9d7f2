"""The anonymous authenticator: a request with no credentials is ``system:anonymous``.

Upstream's anonymous authenticator, placed last and reached only when no other
authenticator found credentials (``union.with_anonymous`` fails on error).
"""

from __future__ import annotations

from kajitori.auth.authn import union
from kajitori.registry.generic.request import ANONYMOUS, UserInfo


class Anonymous:
    """Always ``system:anonymous`` in ``system:unauthenticated``."""

    async def authenticate(self, credentials: union.Credentials) -> UserInfo | None:
        return ANONYMOUS


class FailOnError:
    """``first``, else ``fallback`` only when ``first`` found no credentials at all.

    Upstream's ``union.NewFailOnError(authenticator, anonymous)``: credentials
    that were rejected stay rejected instead of becoming anonymous.
    """

    def __init__(self, first: union.RequestAuthenticator, fallback: Anonymous) -> None:
        self.first = first
        self.fallback = fallback

    async def authenticate(self, credentials: union.Credentials) -> UserInfo | None:
        user = await self.first.authenticate(credentials)
        if user is not None:
            return user
        return await self.fallback.authenticate(credentials)
