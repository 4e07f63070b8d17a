"""Time windows: weekdays, from inclusive / to exclusive, crossing midnight, time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from policy.config import ALL_DAYS, Window
from policy.windows import compile_window, describe_days, describe_window, in_window

BERLIN = ZoneInfo("Europe/Berlin")
WORKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def window(start: str, end: str, days: list[str] | None = None, timezone: str | None = None) -> Window:
    data: dict[str, Any] = {"from": start, "to": end, "timezone": timezone}
    if days is not None:
        data["days"] = days
    return Window.model_validate(data)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin(text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN, fold=fold)


OFFICE = window("08:00", "20:00", WORKDAYS, "Europe/Berlin")
NIGHT_BERLIN = window("22:00", "06:00", timezone="Europe/Berlin")
FRIDAY_NIGHT = window("22:00", "06:00", ["fri"], "Europe/Berlin")

# 2026-01-05 is a Monday.
CASES = [
    # (id, window, now, expected)
    ("always", "always", utc("2026-01-05T03:00"), True),
    ("office: Monday 08:00 local is inside (from inclusive)", OFFICE, berlin("2026-01-05T08:00"), True),
    ("office: Monday 07:59:59 local is outside", OFFICE, berlin("2026-01-05T07:59:59"), False),
    ("office: Monday 19:59:59 local is inside", OFFICE, berlin("2026-01-05T19:59:59"), True),
    ("office: Monday 20:00 local is outside (to exclusive)", OFFICE, berlin("2026-01-05T20:00"), False),
    ("office: Saturday noon is outside", OFFICE, berlin("2026-01-10T12:00"), False),
    ("office: 07:30 UTC is 08:30 in Berlin (winter)", OFFICE, utc("2026-01-05T07:30"), True),
    ("office: 06:30 UTC is 08:30 in Berlin (summer)", OFFICE, utc("2026-07-06T06:30"), True),
    ("office: 19:30 UTC is 21:30 in Berlin (summer)", OFFICE, utc("2026-07-06T19:30"), False),
    (
        "office: local Monday 00:30 is Sunday in UTC",
        window("00:00", "02:00", ["mon"], "Europe/Berlin"),
        utc("2026-01-04T23:30"),
        True,
    ),
    (
        "default timezone used when the window has none",
        window("08:00", "20:00"),
        utc("2026-01-05T07:30"),
        False,
    ),
    ("night: 22:00 is inside", NIGHT_BERLIN, berlin("2026-01-05T22:00"), True),
    ("night: 21:59 is outside", NIGHT_BERLIN, berlin("2026-01-05T21:59"), False),
    ("night: 00:00 is inside", NIGHT_BERLIN, berlin("2026-01-06T00:00"), True),
    ("night: 05:59:59 is inside", NIGHT_BERLIN, berlin("2026-01-06T05:59:59"), True),
    ("night: 06:00 is outside", NIGHT_BERLIN, berlin("2026-01-06T06:00"), False),
    ("night: noon is outside", NIGHT_BERLIN, berlin("2026-01-06T12:00"), False),
    ("friday night: Friday 23:00", FRIDAY_NIGHT, berlin("2026-01-09T23:00"), True),
    (
        "friday night: Saturday 03:00 belongs to Friday's window",
        FRIDAY_NIGHT,
        berlin("2026-01-10T03:00"),
        True,
    ),
    ("friday night: Saturday 06:00 has ended", FRIDAY_NIGHT, berlin("2026-01-10T06:00"), False),
    ("friday night: Saturday 22:00 does not start a window", FRIDAY_NIGHT, berlin("2026-01-10T22:00"), False),
    ("friday night: Friday 03:00 belongs to Thursday", FRIDAY_NIGHT, berlin("2026-01-09T03:00"), False),
    ("friday night: Sunday 01:00", FRIDAY_NIGHT, berlin("2026-01-11T01:00"), False),
    (
        "sunday night crosses into Monday",
        window("22:00", "06:00", ["sun"], "UTC"),
        utc("2026-01-05T05:00"),
        True,
    ),
    ("to midnight: 23:59 inside", window("20:00", "00:00", ["mon"]), utc("2026-01-05T23:59"), True),
    ("to midnight: Tuesday 00:00 outside", window("20:00", "00:00", ["mon"]), utc("2026-01-06T00:00"), False),
    ("from midnight: 00:00 inside", window("00:00", "06:00", ["mon"]), utc("2026-01-05T00:00"), True),
    # Spring forward: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC). The night window is 7h long.
    ("spring: Saturday 22:00 CET inside", NIGHT_BERLIN, utc("2026-03-28T21:00"), True),
    ("spring: 01:59:59 CET inside", NIGHT_BERLIN, utc("2026-03-29T00:59:59"), True),
    ("spring: 03:00 CEST right after the jump", NIGHT_BERLIN, utc("2026-03-29T01:00"), True),
    ("spring: 05:59 CEST inside", NIGHT_BERLIN, utc("2026-03-29T03:59"), True),
    ("spring: 06:00 CEST (04:00 UTC) ends it", NIGHT_BERLIN, utc("2026-03-29T04:00"), False),
    ("spring: 04:30 UTC is 06:30 CEST, outside", NIGHT_BERLIN, utc("2026-03-29T04:30"), False),
    (
        "spring: a window inside the skipped hour never opens",
        window("02:15", "02:45", timezone="Europe/Berlin"),
        utc("2026-03-29T01:00"),
        False,
    ),
    (
        "spring: a window starting in the skipped hour opens at the jump",
        window("02:30", "04:00", timezone="Europe/Berlin"),
        utc("2026-03-29T01:00"),
        True,
    ),
    # Fall back: 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC). The night window is 9h long.
    ("fall: Saturday 22:00 CEST inside", NIGHT_BERLIN, utc("2026-10-24T20:00"), True),
    ("fall: first 02:30 (CEST) inside", NIGHT_BERLIN, berlin("2026-10-25T02:30", fold=0), True),
    ("fall: second 02:30 (CET) inside", NIGHT_BERLIN, berlin("2026-10-25T02:30", fold=1), True),
    ("fall: 05:59 CET inside", NIGHT_BERLIN, utc("2026-10-25T04:59"), True),
    ("fall: 06:00 CET (05:00 UTC) ends it", NIGHT_BERLIN, utc("2026-10-25T05:00"), False),
    ("fall: 04:30 UTC is 05:30 CET, still inside", NIGHT_BERLIN, utc("2026-10-25T04:30"), True),
    (
        "fall: repeated hour inside a window both times, first",
        window("02:00", "02:30", timezone="Europe/Berlin"),
        utc("2026-10-25T00:15"),
        True,
    ),
    (
        "fall: repeated hour inside a window both times, second",
        window("02:00", "02:30", timezone="Europe/Berlin"),
        utc("2026-10-25T01:15"),
        True,
    ),
    (
        "fall: 02:45 CEST outside a 02:00–02:30 window",
        window("02:00", "02:30", timezone="Europe/Berlin"),
        utc("2026-10-25T00:45"),
        False,
    ),
    (
        "weekday window crossing midnight across spring DST",
        window("22:00", "06:00", ["sat"], "Europe/Berlin"),
        utc("2026-03-29T03:30"),
        True,
    ),
    (
        "weekday window crossing midnight across fall DST, Sunday does not start one",
        window("22:00", "06:00", ["sat"], "Europe/Berlin"),
        utc("2026-10-25T21:30"),
        False,
    ),
]


@pytest.mark.parametrize(("when", "now", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_in_window(when: Window | str, now: datetime, expected: bool) -> None:
    assert in_window(when, now, "UTC") is expected  # type: ignore[arg-type]


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: ``now`` is then as good as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None


@pytest.mark.parametrize("now", [datetime(2026, 1, 5, 9), datetime(2026, 1, 5, 9, tzinfo=_NoOffset())],
                         ids=["naive", "tzinfo without an offset"])
def test_in_window_needs_an_aware_now(now: datetime) -> None:
    with pytest.raises(ValueError, match="^in_window needs a timezone-aware `now`$"):
        in_window(OFFICE, now, "UTC")


def test_night_window_length_across_dst() -> None:
    """Counting minutes inside the 22:00–06:00 window: 7h on the spring night, 9h on the autumn night."""

    def minutes_inside(start_utc: str) -> int:
        start = utc(start_utc)
        return sum(in_window(NIGHT_BERLIN, start + timedelta(minutes=m), "UTC") for m in range(12 * 60))

    assert minutes_inside("2026-03-28T18:00") == 7 * 60
    assert minutes_inside("2026-10-24T18:00") == 9 * 60
    assert minutes_inside("2026-01-10T18:00") == 8 * 60


_clock = st.times().map(lambda t: t.replace(microsecond=0))


@given(_clock, _clock, st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)))
def test_window_and_its_complement_cover_every_moment(start: Any, end: Any, moment: datetime) -> None:
    """A window from A to B and the window from B to A (same zone, all days) partition the day."""
    if start == end:
        return
    now = moment.replace(tzinfo=UTC)
    forward = Window(**{"from": start, "to": end, "timezone": "Europe/Berlin"})
    backward = Window(**{"from": end, "to": start, "timezone": "Europe/Berlin"})
    assert in_window(forward, now, "UTC") is not in_window(backward, now, "UTC")


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        pytest.param(WORKDAYS, "Mon–Fri", id="workdays"),
        pytest.param(list(ALL_DAYS), "daily", id="every day"),
        pytest.param([], "never", id="no day"),
        pytest.param(["mon", "wed", "fri"], "Mon, Wed, Fri", id="scattered"),
        pytest.param(["sat", "sun"], "Sat, Sun", id="two-day run"),
        pytest.param(["fri", "sat", "sun", "mon"], "Fri–Mon", id="run over the weekend"),
        pytest.param(["wed", "mon", "tue", "fri"], "Mon–Wed, Fri", id="unordered with a run"),
        pytest.param(["mon", "mon"], "Mon", id="duplicates"),
        pytest.param(["sun", "tue", "wed", "thu"], "Tue–Thu, Sun", id="a run, then a day before the week's end"),
    ],
)
def test_describe_days(days: list[Any], expected: str) -> None:
    assert describe_days(days) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param("always", "always", id="always"),
        pytest.param(OFFICE, "Mon–Fri 08:00–20:00 Europe/Berlin", id="office hours"),
        pytest.param(window("22:00", "06:00"), "daily 22:00–06:00 UTC", id="default zone, overnight"),
        pytest.param(window("08:00:30", "09:00", ["sun"]), "Sun 08:00:30–09:00 UTC", id="seconds shown"),
    ],
)
def test_describe_window(when: Window | str, expected: str) -> None:
    assert describe_window(when, "UTC") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"days": [], "from": "08:00", "to": "20:00"}, id="no days: a window that never opens"),
        pytest.param({"from": "08:00+02:00", "to": "20:00"}, id="an offset instead of the timezone key"),
        pytest.param({"from": "08:00", "to": "08:00"}, id="from equals to"),
    ],
)
def test_windows_that_make_no_sense_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Window.model_validate(data)


_zones = st.sampled_from(["Europe/Berlin", "UTC", "America/New_York", "Australia/Lord_Howe"])
_days = st.lists(st.sampled_from(list(ALL_DAYS)), min_size=1, unique=True)


@given(
    _clock,
    _clock,
    _days,
    _zones,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
)
def test_a_compiled_window_decides_as_in_window(
    start: Any, end: Any, days: list[Any], zone: str, moment: datetime
) -> None:
    if start == end:
        return
    when = Window(**{"from": start, "to": end, "days": days, "timezone": zone})
    inside = compile_window(when, "UTC")
    assert inside is not None
    now = moment.replace(tzinfo=UTC)
    assert inside(now) is in_window(when, now, "UTC")


@pytest.mark.parametrize(("when", "now", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_compiled_window_cases(when: Window | str, now: datetime, expected: bool) -> None:
    inside = compile_window(when, "UTC")  # type: ignore[arg-type]
    assert (True if inside is None else inside(now)) is expected
