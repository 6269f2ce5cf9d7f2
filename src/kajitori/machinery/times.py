"""metav1.Time as upstream serializes it: RFC 3339, whole seconds, UTC.

Writes, pod statuses and events stamp the same few seconds over and over, so
each second's text is formatted once and remembered.
"""

from __future__ import annotations

import datetime
import functools
import time


@functools.lru_cache(maxsize=1024)
def rfc3339(seconds: int) -> str:
    """The metav1.Time of ``seconds`` since the epoch."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    """The metav1.Time of the current second."""
    return rfc3339(int(time.time()))
