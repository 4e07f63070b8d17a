"""On-call rotations: who is on shift for a schedule at a given moment.

A rotation starts at ``starts`` (a wall time in the schedule's time zone when written without an offset, an
exact instant when written with one); every ``every`` the next member takes over, cycling through ``members``.
Before ``starts`` nobody is on shift.

Periods of whole days are counted on the local wall clock, so a weekly hand-over on Monday 09:00 stays at
Monday 09:00 local time across daylight-saving changes. A hand-over at a wall time that occurs twice happens
at its first occurrence; one at a wall time that does not exist (skipped when the clocks go forward) happens
the moment the clocks jump past it. Shorter periods (``12h``, ``90m``) are counted in absolute time.

A schedule read from an incident tool (``pagerduty``, ``opsgenie``) has no rotation here: what the tool last
answered (a :class:`ProviderReading`, fetched by ``bot.lifecycle.oncall``) says who is on. How far an answer is
trusted depends on what it is used for (:func:`provider_on_call`):

* **approving** (``purpose="approve"``): only a fresh, successful answer counts. When the latest attempt failed,
  or the last good answer is older than ``max_age``, nobody is on call for that schedule: an outage never makes
  someone an approver (the flow's other groups and escalation tiers still can be).
* **holding access** (``purpose="hold"``, the automatic flows' reconciler): the last good answer is kept while the
  tool fails (everyone it had on call then, and anyone it said would take over by now), so an outage never
  revokes access. Before the first good answer the schedule is *unknown* (None): the caller keeps what is held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
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


@dataclass(frozen=True, slots=True)
class Shift:
    """Who is on shift for a rotation from ``since`` until ``until`` (None: unbounded on that side).

    ``index`` counts hand-overs since the rotation started (0 = the first member's first shift); ``index`` and
    ``member`` are None before the rotation starts. A shift holds for every moment in ``[since, until)``, so a
    caller may keep it until ``until`` instead of computing it again (:class:`policy.directory.DirectoryIndex`).
    """

    index: int | None
    member: str | None
    since: datetime | None
    until: datetime | None

    def covers(self, moment: datetime) -> bool:
        return (self.since is None or self.since <= moment) and (self.until is None or moment < self.until)


def shift_at(schedule: OncallSchedule, now: datetime) -> Shift | None:
    """The shift of ``schedule``'s rotation at ``now``; None for a schedule read from an incident tool."""
    _require_aware(now)
    rotation = schedule.rotation
    if rotation is None:  # read from an incident tool: see provider_on_call
        return None
    zone = ZoneInfo(schedule.timezone)
    start = _start_instant(rotation.starts, zone)
    if now < start:
        return Shift(None, None, None, start)
    every = rotation.every
    members = rotation.members
    if every % _DAY:
        index = (now - start) // every
        since = start + index * every
        return Shift(index, members[index % len(members)], since, since + every)
    start_wall = _local_wall(start, zone)

    def boundary(k: int) -> datetime:
        return start if k == 0 else first_instant_at(start_wall + k * every, zone)

    index = max(0, (_local_wall(now, zone) - start_wall) // every)
    while index > 0 and boundary(index) > now:
        index -= 1
    until = boundary(index + 1)
    while until <= now:
        index += 1
        until = boundary(index + 1)
    return Shift(index, members[index % len(members)], boundary(index), until)


def shift_index(schedule: OncallSchedule, now: datetime) -> int | None:
    """Hand-overs since the rotation started (0 = the first member's first shift); None before it starts."""
    shift = shift_at(schedule, now)
    return None if shift is None else shift.index


def on_shift(schedule: OncallSchedule, now: datetime) -> str | None:
    """The member on shift at ``now`` (as written in the config), or None before the rotation starts."""
    shift = shift_at(schedule, now)
    return None if shift is None else shift.member


ProviderOncall = Mapping[str, frozenset[str]]
"""Schedule name -> the (case-folded) emails on call now, for the schedules read from an incident tool."""


def schedules_for(
    schedules: Iterable[OncallSchedule],
    names: Iterable[str],
    now: datetime,
    provider: ProviderOncall | None = None,
    member_at: Callable[[OncallSchedule, datetime], str | None] = on_shift,
) -> frozenset[str]:
    """The schedules on which any of ``names`` (emails or Slack ids, case-insensitive) is on call at ``now``.

    A rotation is computed (``member_at``, :func:`on_shift` unless the caller keeps shifts); a schedule read from
    an incident tool is looked up in ``provider`` (absent: nobody).
    """
    wanted = {n.casefold() for n in names if n}
    result: set[str] = set()
    for schedule in schedules:
        if schedule.rotation is None:
            if wanted & (provider or {}).get(schedule.schedule, frozenset()):
                result.add(schedule.schedule)
            continue
        member = member_at(schedule, now)
        if member is not None and member.casefold() in wanted:
            result.add(schedule.schedule)
    return frozenset(result)


def schedules_on_shift(
    directory: Directory, email_or_id: str, now: datetime, provider: ProviderOncall | None = None
) -> frozenset[str]:
    """The names of the directory's schedules on which ``email_or_id`` is on shift at ``now``."""
    return schedules_for(directory.oncall, (email_or_id,), now, provider)


# --- schedules read from an incident tool -------------------------------------------------------------------

Purpose = Literal["approve", "hold"]
APPROVE_MAX_AGE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ProviderShift:
    """One on-call entry of an incident tool's answer: ``email`` is on from ``start`` until ``end``.

    None for ``start`` means "already on when the tool answered", None for ``end`` "until further notice"
    (Opsgenie's flat answer has neither; PagerDuty's entries have both, ``end`` None for a permanent one).
    """

    email: str
    start: datetime | None = None
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (self.end is None or moment < self.end)


@dataclass(frozen=True, slots=True)
class ProviderReading:
    """What the incident tool answered for one schedule at ``read_at``."""

    shifts: tuple[ProviderShift, ...]
    read_at: datetime

    def on_call(self, moment: datetime) -> frozenset[str]:
        """The case-folded emails on call at ``moment`` according to this answer."""
        return frozenset(s.email.casefold() for s in self.shifts if s.covers(moment))


@dataclass(frozen=True, slots=True)
class ProviderState:
    """A schedule's last good answer and whether the latest attempt to read it failed."""

    last_good: ProviderReading | None = None
    failing: bool = False


def provider_on_call(
    state: ProviderState, now: datetime, purpose: Purpose, *, max_age: timedelta = APPROVE_MAX_AGE
) -> frozenset[str] | None:
    """Who is on call for a schedule read from an incident tool, as far as ``purpose`` may trust it.

    ``approve``: the emails of a fresh good answer, else nobody (never None). ``hold``: the last good answer,
    kept through failures; None before any good answer (unknown: keep what is held). See the module docstring.
    """
    _require_aware(now)
    reading = state.last_good
    if purpose == "approve":
        if reading is None or state.failing or now - reading.read_at > max_age:
            return frozenset()
        return reading.on_call(now)
    if reading is None:
        return None
    if state.failing:
        return reading.on_call(reading.read_at) | reading.on_call(now)
    return reading.on_call(now)
