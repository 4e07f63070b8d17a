"""Durations: the config syntax (``90s``, ``30m``, ``1.5h``, ``2d``, bare hours) and requested hours."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from policy.errors import InvalidDuration

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([smhdw]?)\s*$")
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: object) -> timedelta:
    """Parse a config duration; a bare number is hours. Raises ``ValueError`` with a readable message."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("a duration is a number of hours or text like 90s, 30m, 1.5h, 2d")
    elif isinstance(value, int | float):
        seconds = float(value) * 3600.0
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration; write 90s, 30m, 1.5h, 2d or a number of hours")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "h"]
    else:
        raise ValueError("a duration is a number of hours or text like 90s, 30m, 1.5h, 2d")
    if not math.isfinite(seconds):
        raise ValueError("a duration must be finite")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError("a duration may be at most 10 years; use `indefinite` for no limit")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta | None) -> str:
    """Human text: ``4h``, ``30m``, ``1.5h``, ``2d``, ``indefinite``."""
    if delta is None:
        return "indefinite"
    seconds = delta.total_seconds()
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def parse_requested_hours(raw: str | float | None, maximum: timedelta | None) -> timedelta:
    """Validate the hours a requester typed (SPEC §5): > 0, finite, <= ``maximum`` (None = no limit).

    Fractions are allowed (``0.25`` is 15 minutes). Raises :class:`InvalidDuration` with a message for the
    ``duration_hours`` field.
    """
    limit = f" (at most {format_duration(maximum)})" if maximum is not None else ""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidDuration(f"Enter a number of hours{limit}.", field="duration_hours")
    try:
        hours = float(raw.strip().replace(",", ".")) if isinstance(raw, str) else float(raw)
    except ValueError:
        raise InvalidDuration(
            f"“{str(raw)[:20]}” is not a number of hours. Enter e.g. 0.5 or 2{limit}.", field="duration_hours"
        ) from None
    if not math.isfinite(hours):
        raise InvalidDuration(f"Enter a finite number of hours{limit}.", field="duration_hours")
    if hours <= 0:
        raise InvalidDuration(f"The duration must be more than 0 hours{limit}.", field="duration_hours")
    if hours * 3600 > MAX_DURATION.total_seconds():
        longest = format_duration(maximum if maximum is not None else MAX_DURATION)
        raise InvalidDuration(
            f"{hours:g} hours is too long; the maximum is {longest}.", field="duration_hours"
        )
    delta = timedelta(seconds=round(hours * 3600))
    if delta.total_seconds() < 60:
        raise InvalidDuration(
            f"The duration must be at least one minute (0.02 hours){limit}.", field="duration_hours"
        )
    if maximum is not None and delta > maximum:
        raise InvalidDuration(
            f"{hours:g} hours is more than this flow allows; the maximum is {format_duration(maximum)}.",
            field="duration_hours",
        )
    return delta
