"""metav1.Time and metav1.MicroTime as upstream serializes them, in one place.

metav1.Time is RFC 3339 in UTC with whole seconds (``2006-01-02T15:04:05Z``);
metav1.MicroTime keeps six fractional digits (``…05.000000Z``); CRI log lines
carry nine (``…05.000000000Z``). Every module that writes a time onto the wire
formats it here, so all of them spell an instant the same way, and reads one
with ``parse_time``. (The OCI shim keeps its own: it runs on the standard
library alone.)

Writes, pod statuses and events stamp the same few seconds over and over, so
each second's text is formatted once and remembered.
"""

from __future__ import annotations

import datetime
import functools
import time

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@functools.lru_cache(maxsize=1024)
def rfc3339(seconds: int) -> str:
    """The metav1.Time of ``seconds`` since the epoch."""
    return _seconds_text(_EPOCH + datetime.timedelta(seconds=seconds)) + "Z"


def now_rfc3339() -> str:
    """The metav1.Time of the current second."""
    return rfc3339(int(time.time()))


def format_time(moment: datetime.datetime) -> str:
    """The metav1.Time of ``moment``: its second, in UTC (a naive ``moment`` is local time)."""
    return rfc3339(_whole_seconds(moment.astimezone(datetime.UTC)))


def format_micro_time(moment: datetime.datetime) -> str:
    """The metav1.MicroTime of ``moment``, in UTC (a naive ``moment`` is local time)."""
    moment = moment.astimezone(datetime.UTC)
    # Its second's text from ``rfc3339``'s cache: strftime cost three times the rest.
    return f"{rfc3339(_whole_seconds(moment))[:-1]}.{moment.microsecond:06d}Z"


def now_micro_time() -> str:
    """The metav1.MicroTime of now."""
    return format_micro_time(datetime.datetime.now(datetime.UTC))


def format_nano_time(nanoseconds: int) -> str:
    """RFC 3339 with nine fractional digits, UTC, as CRI log lines carry it."""
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    return f"{rfc3339(seconds)[:-1]}.{nanos:09d}Z"


def parse_time(value: object) -> datetime.datetime | None:
    """The instant a metav1.Time or MicroTime string names; None if ``value`` is not one.

    Accepts what ``datetime.fromisoformat`` reads once a ``Z`` is spelled
    ``+00:00`` (so any offset, and fractions up to nine digits); a string
    without an offset gives a naive datetime, which callers may refuse.
    """
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _whole_seconds(moment: datetime.datetime) -> int:
    """Whole seconds from the epoch to ``moment`` (aware, in UTC), rounded down."""
    delta = moment - _EPOCH
    return delta.days * 86400 + delta.seconds


def _seconds_text(moment: datetime.datetime) -> str:
    # The year is padded by hand: glibc's %Y writes year 1 as "1", Go writes "0001".
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
