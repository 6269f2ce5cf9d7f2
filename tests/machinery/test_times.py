"""metav1.Time, metav1.MicroTime and CRI log times: their spelling, as Go's encoders write it."""

from __future__ import annotations

import datetime
import re
import time
import zoneinfo

import pytest

from kajitori.machinery import times

UTC = datetime.UTC
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "1970-01-01T00:00:00Z", id="epoch"),
        pytest.param(T0, "2023-11-14T22:13:20Z", id="recent"),
        pytest.param(-1, "1969-12-31T23:59:59Z", id="before-epoch"),
        pytest.param(-62135596800, "0001-01-01T00:00:00Z", id="go-zero-time-year-padded"),
    ],
)
def test_rfc3339_spells_seconds_since_the_epoch_in_utc(seconds: int, text: str) -> None:
    """rfc3339 writes whole seconds, UTC, a four-digit year and a Z."""
    assert times.rfc3339(seconds) == text


def test_now_rfc3339_is_the_current_utc_second() -> None:
    """now_rfc3339 stamps the second it is called in."""
    before = int(time.time())
    text = times.now_rfc3339()
    after = int(time.time())
    assert text in {times.rfc3339(s) for s in range(before, after + 1)}


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(
            datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            "2023-11-14T22:13:20Z",
            id="utc",
        ),
        pytest.param(
            datetime.datetime(2023, 11, 14, 22, 13, 20, 999999, tzinfo=UTC),
            "2023-11-14T22:13:20Z",
            id="fraction-dropped-not-rounded",
        ),
        pytest.param(
            datetime.datetime(2023, 11, 15, 7, 13, 20, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo")),
            "2023-11-14T22:13:20Z",
            id="other-zone-converted",
        ),
        pytest.param(
            datetime.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
            "1969-12-31T23:59:59Z",
            id="before-epoch-fraction-dropped",
        ),
    ],
)
def test_format_time_writes_the_utc_second_of_a_datetime(
    moment: datetime.datetime, text: str
) -> None:
    """format_time converts to UTC and drops the fraction, as metav1.Time's MarshalJSON."""
    assert times.format_time(moment) == text


def test_format_time_reads_a_naive_datetime_as_local_time() -> None:
    """A naive datetime is local time, as datetime.astimezone reads it."""
    naive = datetime.datetime(2023, 11, 14, 22, 13, 20)
    expected = naive.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert times.format_time(naive) == expected


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(
            datetime.datetime(2023, 11, 14, 22, 13, 20, 123, tzinfo=UTC),
            "2023-11-14T22:13:20.000123Z",
            id="six-digits-zero-padded",
        ),
        pytest.param(
            datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            "2023-11-14T22:13:20.000000Z",
            id="whole-second-keeps-digits",
        ),
        pytest.param(
            datetime.datetime(2023, 11, 15, 7, 13, 20, 5, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo")),
            "2023-11-14T22:13:20.000005Z",
            id="other-zone-converted",
        ),
        pytest.param(
            datetime.datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z", id="year-padded"
        ),
    ],
)
def test_format_micro_time_keeps_six_fractional_digits(
    moment: datetime.datetime, text: str
) -> None:
    """format_micro_time writes metav1.MicroTime: always six digits, UTC."""
    assert times.format_micro_time(moment) == text


def test_now_micro_time_is_now_with_microseconds() -> None:
    """now_micro_time is a MicroTime between the instants around the call."""
    before = datetime.datetime.now(UTC)
    text = times.now_micro_time()
    after = datetime.datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert before <= datetime.datetime.fromisoformat(text) <= after


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        pytest.param(T0 * 10**9 + 123_456_789, "2023-11-14T22:13:20.123456789Z", id="nanos"),
        pytest.param(T0 * 10**9 + 5, "2023-11-14T22:13:20.000000005Z", id="zero-padded"),
        pytest.param(T0 * 10**9, "2023-11-14T22:13:20.000000000Z", id="whole-second"),
    ],
)
def test_format_nano_time_keeps_nine_fractional_digits(nanoseconds: int, text: str) -> None:
    """format_nano_time writes CRI log times: fixed nine digits, UTC."""
    assert times.format_nano_time(nanoseconds) == text


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        pytest.param(
            "2023-11-14T22:13:20Z",
            datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            id="time",
        ),
        pytest.param(
            "2023-11-14T22:13:20.000123Z",
            datetime.datetime(2023, 11, 14, 22, 13, 20, 123, tzinfo=UTC),
            id="micro-time",
        ),
        pytest.param(
            "2023-11-14T22:13:20.123456789Z",
            datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC),
            id="nanos-truncated",
        ),
        pytest.param(
            "2023-11-15T07:13:20+09:00",
            datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            id="offset",
        ),
        pytest.param(
            "2023-11-14T22:13:20", datetime.datetime(2023, 11, 14, 22, 13, 20), id="no-zone-naive"
        ),
    ],
)
def test_parse_time_reads_rfc3339_with_any_offset(value: str, moment: datetime.datetime) -> None:
    """parse_time gives the instant named, keeping what the text says of its zone."""
    parsed = times.parse_time(value)
    assert parsed == moment
    assert (parsed is not None and parsed.tzinfo is None) == (moment.tzinfo is None)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param(1700000000, id="number"),
        pytest.param("yesterday", id="not-a-time"),
        pytest.param("2023-13-01T00:00:00Z", id="month-13"),
    ],
)
def test_parse_time_is_none_for_anything_but_a_time_string(value: object) -> None:
    """parse_time never raises: callers treat None as "no usable time"."""
    assert times.parse_time(value) is None


def test_format_time_reads_back_as_the_same_second() -> None:
    """What format_time writes, parse_time reads as that second."""
    moment = datetime.datetime(2023, 11, 14, 22, 13, 20, 987654, tzinfo=UTC)
    assert times.parse_time(times.format_time(moment)) == moment.replace(microsecond=0)
    assert times.parse_time(times.format_micro_time(moment)) == moment


def test_format_micro_time_before_the_epoch_keeps_its_second_and_digits() -> None:
    """A moment before 1970 (a negative offset from the epoch) is written as the same instant."""
    moment = datetime.datetime(1969, 12, 31, 23, 59, 59, 250000, tzinfo=UTC)
    assert times.format_micro_time(moment) == "1969-12-31T23:59:59.250000Z"
    assert times.parse_time(times.format_micro_time(moment)) == moment
