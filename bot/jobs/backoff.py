"""How long failed work waits before it runs again: its own backoff, never the lease.

Exponential with "equal jitter" (half the delay fixed, half random): 0.5–1 s, 1–2 s, 2–4 s, … capped at
:data:`CAP`, so the first retry comes within a second or two of a transient error and replicas retrying the
same target do not retry in lockstep.
"""

from __future__ import annotations

import random
from datetime import timedelta

SLOW_SWEEP = timedelta(hours=1)  # a revoke that exhausted its attempts is still retried, this often
BASE = 1.0  # seconds: the first retry's delay (before jitter)
CAP = 300.0  # seconds: the longest delay between two attempts


def backoff(attempt: int, *, base: float = BASE, cap: float = CAP) -> timedelta:
    """The delay after the ``attempt``-th failure (1 = the first): ``base * 2**(attempt-1)`` capped at ``cap``,
    of which a random half is jitter."""
    delay = min(cap, base * (2 ** min(max(0, attempt - 1), 32)))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))
