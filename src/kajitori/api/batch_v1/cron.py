"""Cron schedule syntax as the CronJob API accepts it (robfig/cron v3 ``ParseStandard``).

Accepts five fields (minute hour day-of-month month day-of-week), each a
comma list of ``*``/``?``, ``N``, ``N-M``, with an optional ``/step``; month
and weekday names (``jan``, ``mon``); descriptors ``@yearly``/``@annually``,
``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly`` and
``@every <Go duration>``; an optional ``TZ=``/``CRON_TZ=`` prefix.

``schedule_error`` returns upstream's error text (the validation message for
``spec.schedule``) or None. The parsed schedule itself is the controller's
business; this module only decides validity.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

_DESCRIPTORS = frozenset(
    ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
)
_MONTHS = {
    m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}


@dataclass(frozen=True, slots=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


FIELD_BOUNDS = (
    _Bounds(0, 59),
    _Bounds(0, 23),
    _Bounds(1, 31),
    _Bounds(1, 12, _MONTHS),
    _Bounds(0, 6, _DAYS),
)


class CronError(ValueError):
    """A schedule robfig/cron would refuse; ``str()`` is its message."""


def schedule_error(schedule: str) -> str | None:
    """Upstream's parse error for ``schedule``, or None when it parses."""
    try:
        parse_standard(schedule)
    except CronError as exc:
        return str(exc)
    return None


def parse_standard(spec: str) -> list[set[int]] | None:
    """The five fields' value sets (None for ``@every``/descriptors); raises CronError."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        spec = _strip_time_zone(spec)
    if spec.startswith("@"):
        _check_descriptor(spec)
        return None
    fields = spec.split()
    if len(fields) != 5:
        shown = "[" + " ".join(fields) + "]"
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {shown}")
    return [_parse_field(text, bounds) for text, bounds in zip(fields, FIELD_BOUNDS, strict=True)]


def _strip_time_zone(spec: str) -> str:
    space = spec.find(" ")
    eq = spec.find("=")
    zone = spec[eq + 1 : space] if space >= 0 else spec[eq + 1 :]
    if zone != "UTC" and not _zone_exists(zone):
        raise CronError(f"provided bad location {zone}: unknown time zone {zone}")
    return spec[space:].strip() if space >= 0 else ""


def _zone_exists(zone: str) -> bool:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_descriptor(spec: str) -> None:
    if spec in _DESCRIPTORS:
        return
    every = "@every "
    if spec.startswith(every):
        problem = go_duration_error(spec[len(every) :])
        if problem:
            raise CronError(f"failed to parse duration {spec}: {problem}")
        return
    raise CronError(f"unrecognized descriptor: {spec}")


def _parse_field(text: str, bounds: _Bounds) -> set[int]:
    values: set[int] = set()
    for expr in (part for part in text.split(",") if part):
        values |= _parse_range(expr, bounds)
    return values


def _parse_range(expr: str, bounds: _Bounds) -> set[int]:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = bounds.low, bounds.high
    else:
        start = _int_or_name(low_high[0], bounds.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], bounds.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_int(range_and_step[1])
        if len(low_high) == 1:
            end = bounds.high  # "N/step" means "N-max/step"
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise CronError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise CronError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step))


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _parse_int(expr)


_GO_INT = re.compile(r"^[+-]?[0-9]+$")


def _parse_int(expr: str) -> int:
    if not _GO_INT.match(expr):
        raise CronError(
            f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax'
        )
    num = int(expr)
    if not -(2**63) <= num < 2**63:
        raise CronError(
            f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": value out of range'
        )
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


_DURATION_UNITS = ("ns", "us", "µs", "μs", "ms", "s", "m", "h")
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def go_duration_error(text: str) -> str | None:
    """Go's ``time.ParseDuration`` error text for ``text``, or None if it parses."""
    quoted = '"' + text + '"'
    rest = text[1:] if text[:1] in ("+", "-") else text
    if rest == "0":
        return None
    if not rest:
        return f"time: invalid duration {quoted}"
    while rest:
        match = _DURATION_PART.match(rest)
        number, unit = (match.group(1), match.group(2)) if match else ("", "")
        if number in ("", "."):
            return f"time: invalid duration {quoted}"
        if not unit:
            return f"time: missing unit in duration {quoted}"
        if unit not in _DURATION_UNITS:
            return f'time: unknown unit "{unit}" in duration {quoted}'
        rest = rest[len(number) + len(unit) :]
    return None
