"""How long failed work waits before it runs again."""

from __future__ import annotations

import random
from datetime import timedelta

SLOW_SWEEP = timedelta(hours=1)  # a revoke that exhausted its attempts is still retried, this often


def backoff(attempt: int, *, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff with ±20 % jitter: 5s, 10s, 20s, … capped at an hour."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))
