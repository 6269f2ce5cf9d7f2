"""Shaping a MicroTime already in its canonical text skips parsing it (``normalize._shape_time``).

An Event's ``eventTime`` is a new text on every write, so the per-text cache
never hits for it; a text in ``format_micro_time``'s spelling is kept as it is
when its second is a valid, non-zero instant. Every other text takes the full
path and gets the answer it got before: rewritten, null for Go's zero time, or
upstream's decoder error.
"""

from __future__ import annotations

import pytest

from kajitori.api import normalize


def _event(event_time: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": event_time}


def _full_path(value: str) -> str | None:
    """The shaped text with the canonical shortcut out of the way."""
    return normalize._shape_time_text(value, True)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param("2026-11-27T03:49:16.775789Z", "2026-11-27T03:49:16.775789Z", id="canonical"),
        pytest.param("0001-01-01T00:00:00.000001Z", "0001-01-01T00:00:00.000001Z", id="after-zero"),
        pytest.param("0001-01-01T00:00:00.000000Z", None, id="go-zero-time-is-null"),
        pytest.param("2026-11-27T03:49:16.7757Z", "2026-11-27T03:49:16.775700Z", id="four-digits"),
        pytest.param(
            "2026-11-27T05:49:16.775789+02:00", "2026-11-27T03:49:16.775789Z", id="offset"
        ),
        pytest.param(
            "2026-11-27T03:49:16.\u0667\u0667\u0665\u0667\u0668\u0669Z",
            "2026-11-27T03:49:16.775789Z",
            id="non-ascii-digits-rewritten",
        ),
    ],
)
def test_event_times_are_stored_as_before(sent: str, stored: str | None) -> None:
    event = _event(sent)
    normalize.go_shape(event)
    assert event["eventTime"] == stored
    assert _full_path(sent) == stored
    if normalize._is_canonical_micro(sent):  # the shortcut keeps only what the full path keeps
        assert sent == stored


def test_the_shortcut_takes_canonical_texts_but_not_those_of_the_zero_second() -> None:
    assert normalize._is_canonical_micro("2026-11-27T03:49:16.775789Z")
    assert not normalize._is_canonical_micro("0001-01-01T00:00:00.000001Z")  # full path
    assert not normalize._is_canonical_micro("2026-11-27T03:49:16.775789")


@pytest.mark.parametrize(
    "sent",
    ["2026-13-27T03:49:16.775789Z", "2026-11-27T24:00:00.000000Z", "2026-02-30T00:00:00.000001Z"],
)
def test_an_invalid_instant_in_canonical_spelling_still_raises_the_decoders_message(
    sent: str,
) -> None:
    with pytest.raises(ValueError) as caught:
        normalize.go_shape(_event(sent))
    assert str(caught.value).startswith(f'parsing time "{sent}"')
    assert not normalize._is_canonical_micro(sent)


def test_the_shortcut_leaves_the_per_text_cache_alone() -> None:
    """Unique canonical texts do not push the repeated ones out of the cache."""
    normalize._shape_time_text.cache_clear()
    for micros in range(50):
        normalize.go_shape(_event(f"2026-11-27T03:49:16.{micros:06d}Z"))
    # Only the second's own text was parsed (once), not the fifty MicroTimes.
    assert normalize._shape_time_text.cache_info().currsize == 1
