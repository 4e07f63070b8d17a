"""On-call rotations: who is on shift for a schedule at a given moment.

A rotation starts at ``starts`` (a wall time in the schedule's time zone when written without an offset, an
exact instant when written with one); every ``every`` the next member takes over, cycling through ``members``.
Before ``starts`` nobody is on shift.

Periods of whole days are counted on the local wall clock, so a weekly hand-over on Monday 09:00 stays at
Monday 09:00 local time across daylight-saving changes. A hand-over at a wall time that occurs twice happens
at its first occurrence; one at a wall time that does not exist (skipped when the clocks go forward) happens
the moment the clocks jump past it. Shorter periods (``12h``, ``90m``) are counted in absolute time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from policy.config import Directory, OncallSchedule

_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("on-call shifts need a timezone-aware `now`")


def _local_wall(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def first_instant_at(wall: datetime, zone: tzinfo) -> datetime:
    """The first moment (in UTC) at which the local clock of ``zone`` reads ``wall`` or later.

    For a wall time that occurs twice this is its first occurrence; for one that does not exist it is the
    moment the clocks jump past it.
    """
    earlier = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _local_wall(earlier, zone) == wall:
        return earlier  # exists; fold=0 is the first occurrence of a repeated time
    # In a gap: the answer lies between the two readings of the wall time; the local clock is increasing
    # there except for the jump itself, so bisect on "the clock reads `wall` or later".
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = earlier
    low, high = min(low, high), max(low, high)
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        if _local_wall(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return high


def _start_instant(starts: datetime, zone: tzinfo) -> datetime:
    if starts.tzinfo is not None and starts.utcoffset() is not None:
        return starts.astimezone(UTC)
    return first_instant_at(starts, zone)


def shift_index(schedule: OncallSchedule, now: datetime) -> int | None:
    """Hand-overs since the rotation started (0 = the first member's first shift); None before it starts."""
    _require_aware(now)
    zone = ZoneInfo(schedule.timezone)
    rotation = schedule.rotation
    start = _start_instant(rotation.starts, zone)
    if now < start:
        return None
    every = rotation.every
    if every % _DAY:
        return (now - start) // every
    start_wall = _local_wall(start, zone)

    def boundary(k: int) -> datetime:
        return start if k == 0 else first_instant_at(start_wall + k * every, zone)

    index = max(0, (_local_wall(now, zone) - start_wall) // every)
    while index > 0 and boundary(index) > now:
        index -= 1
    while boundary(index + 1) <= now:
        index += 1
    return index


def on_shift(schedule: OncallSchedule, now: datetime) -> str | None:
    """The member on shift at ``now`` (as written in the config), or None before the rotation starts."""
    index = shift_index(schedule, now)
    if index is None:
        return None
    members = schedule.rotation.members
    return members[index % len(members)]


def schedules_for(schedules: Iterable[OncallSchedule], names: Iterable[str], now: datetime) -> frozenset[str]:
    """The schedules whose member on shift is any of ``names`` (emails or Slack ids, case-insensitive)."""
    wanted = {n.casefold() for n in names if n}
    result: set[str] = set()
    for schedule in schedules:
        member = on_shift(schedule, now)
        if member is not None and member.casefold() in wanted:
            result.add(schedule.schedule)
    return frozenset(result)


def schedules_on_shift(directory: Directory, email_or_id: str, now: datetime) -> frozenset[str]:
    """The names of the directory's schedules on which ``email_or_id`` is on shift at ``now``."""
    return schedules_for(directory.oncall, (email_or_id,), now)
