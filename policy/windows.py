"""Time windows of flows (``when``): is a moment inside the window, and how to say what the window is.

A window is decided on local wall-clock time: ``now`` is converted to the window's time zone (or the
configuration's default) and its wall time and weekday are compared with the window. ``days`` are the days a
window *starts* on; ``from`` is inclusive and ``to`` exclusive; a window whose ``to`` is earlier than its
``from`` crosses midnight (22:00–06:00 on ``fri`` covers Friday 22:00 to Saturday 06:00).

Across daylight-saving changes this means: on the night the clocks go forward the skipped hour simply never
occurs (a 22:00–06:00 window is an hour shorter); on the night they go back the repeated hour is inside or
outside the window both times it occurs, as its wall time says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from policy.config import ALL_DAYS, Day, Window

_DAY_LABELS: dict[Day, str] = {
    "mon": "Mon",
    "tue": "Tue",
    "wed": "Wed",
    "thu": "Thu",
    "fri": "Fri",
    "sat": "Sat",
    "sun": "Sun",
}


def _wall(clock: time) -> time:
    """A window bound as a naive wall time (a bound written with an offset keeps only its clock reading)."""
    return clock.replace(tzinfo=None)


def window_timezone(window: Window, default_timezone: str) -> str:
    """The IANA name of the zone a window is read in."""
    return window.timezone or default_timezone


def in_window(when: Literal["always"] | Window, now: datetime, default_timezone: str) -> bool:
    """Whether ``now`` (timezone-aware) falls inside ``when``."""
    if when == "always":
        return True
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("in_window needs a timezone-aware `now`")
    local = now.astimezone(ZoneInfo(window_timezone(when, default_timezone)))
    clock = local.time()  # naive wall time; the fold of a repeated hour plays no part
    start, end = _wall(when.from_), _wall(when.to)
    today = ALL_DAYS[local.weekday()]
    if start < end:
        return today in when.days and start <= clock < end
    yesterday = ALL_DAYS[(local.weekday() - 1) % 7]
    return (today in when.days and clock >= start) or (yesterday in when.days and clock < end)


def compile_window(
    when: Literal["always"] | Window, default_timezone: str
) -> Callable[[datetime], bool] | None:
    """:func:`in_window` with the zone, bounds and days resolved once; None for ``always``."""
    if when == "always":
        return None
    zone = ZoneInfo(window_timezone(when, default_timezone))
    start, end = _wall(when.from_), _wall(when.to)
    days = frozenset(ALL_DAYS.index(d) for d in when.days)
    after_days = frozenset((d + 1) % 7 for d in days)  # the days on which a window crossing midnight ends

    def inside(now: datetime) -> bool:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("in_window needs a timezone-aware `now`")
        local = now.astimezone(zone)
        clock = local.time()
        weekday = local.weekday()
        if start < end:
            return weekday in days and start <= clock < end
        return (weekday in days and clock >= start) or (weekday in after_days and clock < end)

    return inside


def _format_clock(clock: time) -> str:
    return clock.strftime("%H:%M:%S" if clock.second or clock.microsecond else "%H:%M")


def describe_days(days: list[Day]) -> str:
    """``Mon–Fri``, ``Mon, Wed, Fri``, ``Sat, Sun``, ``Fri–Mon``, ``daily`` or ``never``."""
    chosen = sorted({ALL_DAYS.index(d) for d in days})
    if not chosen:
        return "never"
    if len(chosen) == len(ALL_DAYS):
        return "daily"
    # Start after a gap so that a run over the week's end (Fri–Mon) stays one run.
    first = next(i for i in chosen if (i - 1) % 7 not in chosen)
    ordered = sorted(chosen, key=lambda i: (i - first) % 7)
    runs: list[list[int]] = []
    for i in ordered:
        if runs and (runs[-1][-1] + 1) % 7 == i:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts: list[str] = []
    for run in runs:
        labels = [_DAY_LABELS[ALL_DAYS[i]] for i in run]
        parts.append(f"{labels[0]}–{labels[-1]}" if len(run) >= 3 else ", ".join(labels))
    return ", ".join(parts)


def describe_window(when: Literal["always"] | Window, default_timezone: str) -> str:
    """One line for people: ``Mon–Fri 08:00–20:00 Europe/Berlin``, ``daily 22:00–06:00 UTC`` or ``always``."""
    if when == "always":
        return "always"
    days = describe_days(when.days)
    clocks = f"{_format_clock(_wall(when.from_))}–{_format_clock(_wall(when.to))}"
    return f"{days} {clocks} {window_timezone(when, default_timezone)}"
