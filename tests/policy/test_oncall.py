"""On-call rotations: hand-overs, before the start, wall-clock shifts across DST, sub-day periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.config import Directory, OncallSchedule
from policy.oncall import first_instant_at, on_shift, schedules_on_shift

BERLIN = ZoneInfo("Europe/Berlin")
MEMBERS = ["alice@example.com", "bob@example.com", "U0CAROL"]


def schedule(
    every: str,
    starts: str,
    members: list[str] | None = None,
    timezone: str = "Europe/Berlin",
    name: str = "sre-primary",
) -> OncallSchedule:
    return OncallSchedule.model_validate(
        {
            "schedule": name,
            "timezone": timezone,
            "rotation": {"every": every, "starts": starts, "members": members or MEMBERS},
        }
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin(text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN, fold=fold)


# 2026-01-05 is a Monday; Berlin is UTC+1 in winter, UTC+2 from 2026-03-29 to 2026-10-25.
WEEKLY = schedule("7d", "2026-01-05T09:00")
DAILY_0230 = schedule("1d", "2026-03-27T02:30")
TWELVE_HOURS = schedule("12h", "2026-03-28T20:00")

CASES: list[Any] = [
    # (id, schedule, now, expected member)
    ("before the start nobody", WEEKLY, berlin("2026-01-05T08:59:59"), None),
    ("at the start the first member", WEEKLY, berlin("2026-01-05T09:00"), "alice@example.com"),
    ("start is Berlin wall time, 08:00 UTC", WEEKLY, utc("2026-01-05T08:00"), "alice@example.com"),
    ("start is Berlin wall time, 07:59 UTC is before", WEEKLY, utc("2026-01-05T07:59"), None),
    ("end of the first week", WEEKLY, berlin("2026-01-12T08:59:59"), "alice@example.com"),
    ("hand-over after 7 days", WEEKLY, berlin("2026-01-12T09:00"), "bob@example.com"),
    ("third member", WEEKLY, berlin("2026-01-19T09:00"), "U0CAROL"),
    ("cycles back to the first", WEEKLY, berlin("2026-01-26T09:00"), "alice@example.com"),
    # 2026-03-30 09:00 CEST (after spring forward) starts week 12: 12 % 3 = 0 -> alice.
    ("spring: hand-over stays at 09:00 CEST", WEEKLY, utc("2026-03-30T07:00"), "alice@example.com"),
    ("spring: 08:59 CEST is still the previous week", WEEKLY, utc("2026-03-30T06:59"), "U0CAROL"),
    # 2026-10-26 09:00 CET is week 42: 42 % 3 = 0 -> alice.
    ("fall: hand-over stays at 09:00 CET", WEEKLY, utc("2026-10-26T08:00"), "alice@example.com"),
    ("fall: 08:59 CET still previous week", WEEKLY, utc("2026-10-26T07:59"), "U0CAROL"),
    (
        "fall: 7 x 24 real hours after 09:00 CEST is 08:00 CET, not yet",
        WEEKLY,
        utc("2026-10-26T07:00"),
        "U0CAROL",
    ),
    ("years later: week 230", WEEKLY, berlin("2030-06-03T09:00"), "U0CAROL"),
    # Daily hand-over at 02:30, a wall time that does not exist on 2026-03-29 and occurs twice on 2026-10-25.
    ("skipped hand-over time: before the jump", DAILY_0230, utc("2026-03-29T00:59:59"), "bob@example.com"),
    ("skipped hand-over time: at the jump (03:00 CEST)", DAILY_0230, utc("2026-03-29T01:00"), "U0CAROL"),
    ("next day back at 02:30 CEST", DAILY_0230, berlin("2026-03-30T02:30"), "alice@example.com"),
    ("next day 02:29 CEST", DAILY_0230, berlin("2026-03-30T02:29"), "U0CAROL"),
    # 2026-10-25 is 212 days after 2026-03-27: 212 % 3 = 2 -> carol from the first 02:30.
    ("repeated hand-over time: first 02:30", DAILY_0230, berlin("2026-10-25T02:30", fold=0), "U0CAROL"),
    (
        "repeated hand-over time: second 02:15 keeps it",
        DAILY_0230,
        berlin("2026-10-25T02:15", fold=1),
        "U0CAROL",
    ),
    (
        "repeated hand-over time: 02:29 first time is earlier",
        DAILY_0230,
        berlin("2026-10-25T02:29", fold=0),
        "bob@example.com",
    ),
    # Sub-day periods count absolute time: 20:00 CET + 12 hours = 07:00 UTC = 09:00 CEST after the jump.
    ("12h: first shift", TWELVE_HOURS, berlin("2026-03-28T20:00"), "alice@example.com"),
    (
        "12h: hand-over after 12 real hours (09:00 CEST)",
        TWELVE_HOURS,
        berlin("2026-03-29T09:00"),
        "bob@example.com",
    ),
    ("12h: 08:59 CEST still first", TWELVE_HOURS, berlin("2026-03-29T08:59"), "alice@example.com"),
    (
        "aware start used as is",
        schedule("1d", "2026-01-05T09:00+00:00"),
        utc("2026-01-05T09:00"),
        "alice@example.com",
    ),
    (
        "aware start used as is, just before",
        schedule("1d", "2026-01-05T09:00+00:00"),
        utc("2026-01-05T08:59"),
        None,
    ),
    ("UTC schedule", schedule("8h", "2026-01-05T00:00", timezone="UTC"), utc("2026-01-05T16:00"), "U0CAROL"),
    (
        "single member always on",
        schedule("1d", "2026-01-05T00:00", ["solo@example.com"]),
        utc("2027-01-01T00:00"),
        "solo@example.com",
    ),
]


@pytest.mark.parametrize(("rotation", "now", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_on_shift(rotation: OncallSchedule, now: datetime, expected: str | None) -> None:
    assert on_shift(rotation, now) == expected


def test_on_shift_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        on_shift(WEEKLY, datetime(2026, 1, 5, 9))


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        pytest.param("2026-01-05T09:00", utc("2026-01-05T08:00"), id="ordinary time"),
        pytest.param("2026-03-29T02:30", utc("2026-03-29T01:00"), id="skipped time: the jump"),
        pytest.param("2026-03-29T03:00", utc("2026-03-29T01:00"), id="first time after the jump"),
        pytest.param("2026-10-25T02:30", utc("2026-10-25T00:30"), id="repeated time: first occurrence"),
    ],
)
def test_first_instant_at(wall: str, expected: datetime) -> None:
    assert first_instant_at(datetime.fromisoformat(wall), BERLIN) == expected


@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2032, 1, 1)),
    st.sampled_from(["1d", "2d", "7d", "14d"]),
)
def test_whole_day_shifts_change_at_the_local_start_time(moment: datetime, every: str) -> None:
    """Between two readings of the same wall time on consecutive shift days the member changes once."""
    rotation = schedule(every, "2026-01-05T09:00")
    now = moment.replace(tzinfo=UTC)
    member = on_shift(rotation, now)
    local = now.astimezone(BERLIN)
    if member is None:
        assert now < utc("2026-01-05T08:00")
        return
    days = (local.replace(tzinfo=None) - datetime(2026, 1, 5, 9)) // timedelta(days=1)
    period = int(every[:-1])
    assert member == MEMBERS[(days // period) % len(MEMBERS)]


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2032, 1, 1)))
def test_sub_day_shifts_are_absolute(moment: datetime) -> None:
    rotation = schedule("90m", "2026-01-05T09:00")
    now = moment.replace(tzinfo=UTC)
    start = utc("2026-01-05T08:00")
    expected = None if now < start else MEMBERS[((now - start) // timedelta(minutes=90)) % 3]
    assert on_shift(rotation, now) == expected


DIRECTORY = Directory.model_validate(
    {
        "oncall": [
            {
                "schedule": "sre-primary",
                "rotation": {
                    "every": "7d",
                    "starts": "2026-01-05T00:00",
                    "members": ["Alice@Example.com", "bob@example.com"],
                },
            },
            {
                "schedule": "sre-secondary",
                "rotation": {
                    "every": "7d",
                    "starts": "2026-01-05T00:00",
                    "members": ["bob@example.com", "alice@example.com"],
                },
            },
            {
                "schedule": "db",
                "rotation": {"every": "1d", "starts": "2026-01-05T00:00", "members": ["U0ALICE"]},
            },
            {
                "schedule": "later",
                "rotation": {"every": "1d", "starts": "2027-01-01T00:00", "members": ["alice@example.com"]},
            },
        ]
    }
)


@pytest.mark.parametrize(
    ("who", "now", "expected"),
    [
        pytest.param("alice@example.com", utc("2026-01-05T10:00"), {"sre-primary"}, id="email, other case"),
        pytest.param("BOB@example.com", utc("2026-01-05T10:00"), {"sre-secondary"}, id="second schedule"),
        pytest.param("bob@example.com", utc("2026-01-12T10:00"), {"sre-primary"}, id="after the hand-over"),
        pytest.param("u0alice", utc("2026-01-12T10:00"), {"db"}, id="slack id, other case"),
        pytest.param("nobody@example.com", utc("2026-01-05T10:00"), set(), id="not a member"),
        pytest.param("alice@example.com", utc("2026-01-04T10:00"), set(), id="before every start"),
    ],
)
def test_schedules_on_shift(who: str, now: datetime, expected: set[str]) -> None:
    assert schedules_on_shift(DIRECTORY, who, now) == expected


# --- shifts remembered by the directory index (policy.directory.DirectoryIndex.member_on_shift) -----------------

MOMENTS = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC))


@given(moments=st.lists(MOMENTS, min_size=1, max_size=40),
       which=st.sampled_from([WEEKLY, DAILY_0230, TWELVE_HOURS]))
def test_a_remembered_shift_answers_as_computing_it_again(moments: list[datetime], which: OncallSchedule) -> None:
    """In any order of moments (forwards, backwards, across DST and hand-overs), the kept shift gives the member
    that computing the rotation again gives."""
    from policy.directory import DirectoryIndex

    index = DirectoryIndex(Directory.model_validate({"oncall": [which.model_dump(mode="json")]}))
    kept = index.directory.oncall[0]
    for moment in moments:
        assert index.member_on_shift(kept, moment) == on_shift(kept, moment), moment


def test_a_shift_is_kept_until_its_hand_over_and_no_longer() -> None:
    from policy.directory import DirectoryIndex
    from policy.oncall import shift_at

    index = DirectoryIndex(Directory.model_validate({"oncall": [WEEKLY.model_dump(mode="json")]}))
    kept = index.directory.oncall[0]
    shift = shift_at(kept, berlin("2026-01-06T12:00"))
    assert shift is not None and shift.member == "alice@example.com"
    assert (shift.since, shift.until) == (berlin("2026-01-05T09:00"), berlin("2026-01-12T09:00"))
    assert index.member_on_shift(kept, berlin("2026-01-12T08:59:59")) == "alice@example.com"
    assert index.member_on_shift(kept, berlin("2026-01-12T09:00")) == "bob@example.com"  # not the kept one
    assert index.on_call_now(berlin("2026-01-12T09:00")) == ("bob@example.com",)
    assert index.on_call_now(berlin("2026-01-05T08:00")) == (None,)  # before the rotation starts
