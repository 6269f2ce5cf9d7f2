"""A TLS client context that resumes its last session with each server.

Every exec, attach and port-forward opens a new connection from the API
server to the kubelet (a WebSocket cannot share one), and a full TLS
handshake with client certificates is the largest cost of that hop: both
ends run in one process here, so it pays the key exchange, the signatures
and the certificate checks of both sides, about as much CPU as the rest of
the relay. A resumed handshake (a TLS 1.3 ticket from the previous
connection) skips the certificates and signatures; the server still knows
the client's certificate from the session, so authentication is unchanged.

asyncio creates its ``SSLObject``s through ``SSLContext.wrap_bio`` with no
way to pass a session, so the context itself offers the session of the last
connection it made to the same server name.
"""

from __future__ import annotations

import ssl
from typing import Any


class ResumingContext(ssl.SSLContext):
    """A client context (``PROTOCOL_TLS_CLIENT``) that offers each server its last session."""

    # ssl.SSLContext is built with __new__(protocol); state lives in the instance dict.
    _last: dict[str | None, ssl.SSLObject]

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        last = self.__dict__.setdefault("_last", {})
        key = server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname
        if session is None and not server_side:
            previous = last.get(key)
            found = previous.session if previous is not None else None
            # A session without a ticket (none received yet) cannot be resumed.
            if found is not None and found.has_ticket:
                session = found
        made = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if not server_side:
            last[key] = made  # its session (and ticket) is read at the next connection
        return made


def client_context(**verify: Any) -> ResumingContext:
    """``ssl.create_default_context(cafile=..., cadata=...)``'s settings, resuming sessions."""
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and hostname
    context.load_verify_locations(**verify)
    return context
