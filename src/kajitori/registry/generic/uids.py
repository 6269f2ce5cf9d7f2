"""Object uids: random (version 4) UUIDs in canonical text form, cheaply.

Every create stamps one (``hooks._fill_system_metadata``); ``Store`` re-exports
``new_uid`` for its older callers.
"""

from __future__ import annotations

import os

# Random bytes for uids, read from the OS a batch at a time: one urandom call
# per create was a measurable part of its cost. Cleared in a forked child so
# that two processes never hand out the same uid.
_UID_BATCH = 256
_uid_bytes: list[bytes] = []
os.register_at_fork(after_in_child=_uid_bytes.clear)


def new_uid() -> str:
    """A random (version 4) UUID in its canonical text form, as ``uuid.uuid4``."""
    if not _uid_bytes:
        raw = os.urandom(16 * _UID_BATCH)
        _uid_bytes.extend(raw[i : i + 16] for i in range(0, len(raw), 16))
    b = bytearray(_uid_bytes.pop())
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
