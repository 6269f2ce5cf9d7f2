"""When a cron schedule fires next, with robfig/cron v3's semantics (as the CronJob controller).

Parsing (what is valid, and the error texts) is ``kajitori.api.batch_v1.cron``,
shared with validation; this module adds what the controller needs:
``Schedule.next(after)``, the first firing strictly after a time, like
robfig's ``SpecSchedule.Next`` and ``ConstantDelaySchedule.Next``.

Semantics kept from robfig rather than Vixie cron (why no cron library):

* day of month and day of week are ORed only when neither field is
  unrestricted; a field counts as unrestricted when a part is ``*``/``?``
  without a step above 1 (so ``*/2`` restricts, unlike Vixie cron);
* descriptors: ``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
  ``@daily``/``@midnight``, ``@hourly``, and ``@every <duration>`` (a
  constant delay, at least one second, whole seconds);
* a ``TZ=``/``CRON_TZ=`` prefix (only legacy objects can still have it)
  picks the zone, as does the ``zone`` argument (``spec.timeZone``); the
  default is UTC;
* the search gives up five years ahead (``None``), as robfig returns zero.

Wall-clock arithmetic happens in the zone (zoneinfo); a wall time skipped by
a DST change maps forward, a repeated one to its first occurrence.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import zoneinfo

from kajitori.api.batch_v1 import cron

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """The schedule does not parse; ``str()`` is robfig's message."""


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: field sets (or a constant delay) and the zone it runs in."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()  # 0 = Sunday
    days_star: bool = False
    weekdays_star: bool = False
    every: float = 0.0  # seconds, for "@every"
    zone: datetime.tzinfo = datetime.UTC

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first firing strictly after ``after`` (aware), in UTC; None if none in 5 years."""
        if self.every:
            return after.replace(microsecond=0) + datetime.timedelta(seconds=self.every)
        wall = after.astimezone(self.zone).replace(tzinfo=None, microsecond=0)
        wall = wall.replace(second=0) + datetime.timedelta(minutes=1)
        limit = wall.year + _SEARCH_YEARS
        while wall.year <= limit:
            if wall.month not in self.months:
                wall = _first_of_next_month(wall)
            elif not self._day_matches(wall):
                wall = wall.replace(hour=0, minute=0) + datetime.timedelta(days=1)
            elif wall.hour not in self.hours:
                wall = wall.replace(minute=0) + datetime.timedelta(hours=1)
            elif wall.minute not in self.minutes:
                wall += datetime.timedelta(minutes=1)
            else:
                return wall.replace(tzinfo=self.zone).astimezone(datetime.UTC)
        return None

    def _day_matches(self, wall: datetime.datetime) -> bool:
        dom = wall.day in self.days
        dow = (wall.weekday() + 1) % 7 in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow


def _first_of_next_month(wall: datetime.datetime) -> datetime.datetime:
    year, month = (wall.year + 1, 1) if wall.month == 12 else (wall.year, wall.month + 1)
    return datetime.datetime(year, month, 1)


def _is_star(text: str) -> bool:
    """robfig's star bit: some part is ``*``/``?`` with no step above 1."""
    for part in text.split(","):
        head, _, step = part.partition("/")
        if head in ("*", "?") and (not step or (step.isdigit() and int(step) <= 1)):
            return True
    return False


def load_zone(name: str) -> datetime.tzinfo:
    """The named IANA zone; raises ScheduleError with Go's wording when unknown."""
    if name in ("", "UTC"):
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name}") from exc


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("1h30m", "90s"); the caller has validated it."""
    total = sum(
        float(number or 0) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
    )
    return -total if text.startswith("-") else total


def parse(spec: str, *, zone: str | None = None) -> Schedule:
    """``spec`` as a Schedule running in ``zone`` (a ``TZ=`` prefix wins, as robfig)."""
    problem = cron.schedule_error(spec)
    if problem is not None:
        raise ScheduleError(problem)
    tz = load_zone(zone or "")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, spec = spec.partition(" ")
        tz = load_zone(prefix.partition("=")[2])
        spec = spec.strip()
    if spec.startswith("@every "):
        seconds = int(parse_duration(spec[len("@every ") :]))
        return Schedule(every=float(max(1, seconds)), zone=tz)
    spec = _DESCRIPTORS.get(spec, spec)
    fields = cron.parse_standard(spec)
    assert fields is not None
    texts = spec.split()
    return Schedule(
        minutes=frozenset(fields[0]),
        hours=frozenset(fields[1]),
        days=frozenset(fields[2]),
        months=frozenset(fields[3]),
        weekdays=frozenset(fields[4]),
        days_star=_is_star(texts[2]),
        weekdays_star=_is_star(texts[4]),
        zone=tz,
    )
