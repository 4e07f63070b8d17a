"""Durations: the config syntax (SPEC §3) and the hours a requester types (SPEC §5)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.durations import MAX_DURATION, format_duration, parse_duration, parse_requested_hours
from policy.errors import InvalidDuration

PARSE_CASES: list[Any] = [
    # (description, value, expected)
    ("seconds", "90s", timedelta(seconds=90)),
    ("minutes", "30m", timedelta(minutes=30)),
    ("fractional hours", "1.5h", timedelta(hours=1, minutes=30)),
    ("days", "2d", timedelta(days=2)),
    ("weeks", "1w", timedelta(days=7)),
    ("bare number text is hours", "4", timedelta(hours=4)),
    ("bare integer is hours", 4, timedelta(hours=4)),
    ("bare float is hours", 0.25, timedelta(minutes=15)),
    ("leading dot", ".5h", timedelta(minutes=30)),
    ("spaces around and between", "  30 m ", timedelta(minutes=30)),
    ("explicit plus sign", "+2h", timedelta(hours=2)),
    ("a timedelta passes through", timedelta(minutes=5), timedelta(minutes=5)),
    ("exactly the longest duration", "3650d", MAX_DURATION),
]


@pytest.mark.parametrize(("value", "expected"), [pytest.param(*c[1:], id=c[0]) for c in PARSE_CASES])
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


BAD_DURATIONS: list[Any] = [
    # (description, value, words in the message)
    ("negative", "-1h", "positive"),
    ("negative number", -1, "positive"),
    ("zero", "0", "positive"),
    ("zero seconds", "0s", "positive"),
    ("zero timedelta", timedelta(0), "positive"),
    ("words", "abc", "not a duration"),
    ("unknown unit", "3y", "not a duration"),
    ("two units", "1h30m", "not a duration"),
    ("empty", "", "not a duration"),
    ("nan text", "nan", "not a duration"),
    ("NaN number", float("nan"), "finite"),
    ("infinite number", float("inf"), "finite"),
    ("boolean", True, "number of hours"),
    ("None", None, "number of hours"),
    ("a list", [1], "number of hours"),
    ("longer than 10 years", "3651d", "10 years"),
    ("indefinite is only for grant_for", "indefinite", "not a duration"),
]


@pytest.mark.parametrize(("value", "words"), [pytest.param(*c[1:], id=c[0]) for c in BAD_DURATIONS])
def test_parse_duration_refuses(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_duration(value)


FORMAT_CASES: list[Any] = [
    ("indefinite", None, "indefinite"),
    ("whole days", timedelta(days=2), "2d"),
    ("hours", timedelta(hours=4), "4h"),
    ("fractional hours", timedelta(hours=1.5), "1.5h"),
    ("a day and a half is hours", timedelta(hours=36), "36h"),
    ("minutes", timedelta(minutes=30), "30m"),
    ("fractional minutes", timedelta(seconds=90), "1.5m"),
    ("seconds", timedelta(seconds=45), "45s"),
]


@pytest.mark.parametrize(("delta", "expected"), [pytest.param(*c[1:], id=c[0]) for c in FORMAT_CASES])
def test_format_duration(delta: timedelta | None, expected: str) -> None:
    assert format_duration(delta) == expected


@given(st.integers(min_value=1, max_value=int(MAX_DURATION.total_seconds())))
def test_format_then_parse_is_the_same_duration(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert abs(parse_duration(format_duration(delta)) - delta) <= delta * 1e-5


FOUR_HOURS = timedelta(hours=4)

REQUESTED_CASES: list[Any] = [
    # (description, raw, maximum, expected)
    ("0.25 hours is 15 minutes", "0.25", FOUR_HOURS, timedelta(minutes=15)),
    ("0.25 as a number", 0.25, FOUR_HOURS, timedelta(minutes=15)),
    ("a decimal comma", "1,5", FOUR_HOURS, timedelta(minutes=90)),
    ("whole hours", "2", FOUR_HOURS, timedelta(hours=2)),
    ("spaces around", " 2 ", FOUR_HOURS, timedelta(hours=2)),
    ("exactly the maximum", "4", FOUR_HOURS, FOUR_HOURS),
    ("an integer", 3, FOUR_HOURS, timedelta(hours=3)),
    ("one minute is the least", "0.0167", FOUR_HOURS, timedelta(seconds=60)),
    ("indefinite maximum takes a long duration", "1000", None, timedelta(hours=1000)),
    ("indefinite maximum takes exactly the longest duration", str(3650 * 24), None, MAX_DURATION),
    ("indefinite maximum takes just under the longest duration", str(3650 * 24 - 1), None,
     MAX_DURATION - timedelta(hours=1)),
]


@pytest.mark.parametrize(
    ("raw", "maximum", "expected"), [pytest.param(*c[1:], id=c[0]) for c in REQUESTED_CASES]
)
def test_parse_requested_hours(raw: str | float, maximum: timedelta | None, expected: timedelta) -> None:
    assert parse_requested_hours(raw, maximum) == expected


BAD_REQUESTS: list[Any] = [
    # (description, raw, maximum, words the message must contain)
    ("zero", "0", FOUR_HOURS, ["more than 0 hours", "at most 4h"]),
    ("zero as a number", 0, FOUR_HOURS, ["more than 0 hours", "at most 4h"]),
    ("negative", "-1", FOUR_HOURS, ["more than 0 hours", "at most 4h"]),
    ("negative number", -1.0, FOUR_HOURS, ["more than 0 hours"]),
    ("NaN text", "NaN", FOUR_HOURS, ["finite", "at most 4h"]),
    ("NaN number", float("nan"), FOUR_HOURS, ["finite", "at most 4h"]),
    ("inf", "inf", FOUR_HOURS, ["finite", "at most 4h"]),
    ("-inf", "-inf", FOUR_HOURS, ["finite"]),
    ("an overflowing exponent", "1e400", FOUR_HOURS, ["finite"]),
    ("words", "abc", FOUR_HOURS, ["“abc” is not a number of hours", "at most 4h"]),
    ("a unit the field does not take", "2 hours", FOUR_HOURS, ["is not a number of hours"]),
    ("a huge number", "1e9", FOUR_HOURS, ["too long", "4h"]),
    ("a huge number without a flow maximum", "1e9", None, ["too long", "3650d"]),
    ("empty", "", FOUR_HOURS, ["Enter a number of hours", "at most 4h"]),
    ("blank", "   ", FOUR_HOURS, ["Enter a number of hours"]),
    ("None", None, FOUR_HOURS, ["Enter a number of hours", "at most 4h"]),
    ("None without a maximum", None, None, ["Enter a number of hours"]),
    ("above the maximum", "5", FOUR_HOURS, ["5 hours is more than this flow allows", "the maximum is 4h"]),
    ("just above the maximum", "4.01", FOUR_HOURS, ["the maximum is 4h"]),
    ("above a fractional maximum", "1", timedelta(minutes=30), ["the maximum is 30m"]),
    ("less than a minute", "0.001", FOUR_HOURS, ["at least one minute"]),
]


@pytest.mark.parametrize(("raw", "maximum", "words"), [pytest.param(*c[1:], id=c[0]) for c in BAD_REQUESTS])
def test_parse_requested_hours_refuses_with_a_message_for_the_field(
    raw: str | float | None, maximum: timedelta | None, words: list[str]
) -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_requested_hours(raw, maximum)
    assert caught.value.field == "duration_hours"
    assert caught.value.message == str(caught.value)
    for word in words:
        assert word in caught.value.message


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_requested_hours_are_accepted_exactly_when_positive_finite_and_within_the_maximum(
    hours: float,
) -> None:
    """Any float: either a duration in (0, maximum], or InvalidDuration on the field — never anything else."""
    try:
        delta = parse_requested_hours(hours, FOUR_HOURS)
    except InvalidDuration as error:
        assert error.field == "duration_hours"
        assert not (1 / 60 <= hours <= 4) or hours != hours  # refused only outside [1 minute, 4h] (or NaN)
    else:
        assert timedelta(minutes=1) <= delta <= FOUR_HOURS
        assert abs(delta.total_seconds() - hours * 3600) <= 0.5


@given(st.text(max_size=12))
def test_any_text_is_a_duration_or_a_field_error(raw: str) -> None:
    try:
        parse_requested_hours(raw, FOUR_HOURS)
    except InvalidDuration as error:
        assert error.field == "duration_hours" and error.message
