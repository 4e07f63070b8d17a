"""Slack allows about one message per second per channel: a slot per channel, reserved before each send."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

CHANNEL_INTERVAL = 1.1  # a little over a second: network jitter must not make two land within one
BUSY_LIMIT = 1_000  # busy channels named to a claim at most (the furthest slots first)


class ChannelPacer:
    """When the next message to a channel may go out (in this process; other replicas pace their own)."""

    def __init__(self, interval: float = CHANNEL_INTERVAL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.monotonic = monotonic
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, channel: str, *, max_wait: float) -> float | None:
        """Reserve the channel's next slot if it comes within ``max_wait`` seconds; returns the wait (0: now),
        or None when the slot is further away (nothing is reserved: send it later)."""
        if self.interval <= 0:
            return 0.0
        with self._lock:
            now = self.monotonic()
            if len(self._next) > 10_000:  # forget channels whose slots have passed
                self._next = {c: t for c, t in self._next.items() if t > now}
            slot = max(now, self._next.get(channel, now))
            wait = slot - now
            if wait > max_wait:
                return None
            self._next[channel] = slot + self.interval
            return wait

    def hold(self, channel: str, seconds: float) -> None:
        """Slack refused a message to the channel (HTTP 429) and said to wait ``seconds`` (``Retry-After``):
        its next slot is no sooner than that, so the channel's other messages are neither sent into the same
        refusal nor claimed (:meth:`busy`) until then."""
        with self._lock:
            self._next[channel] = max(self._next.get(channel, 0.0), self.monotonic() + seconds)

    def wait_for(self, channel: str) -> float:
        """Seconds until the channel's next free slot."""
        with self._lock:
            return max(0.0, self._next.get(channel, 0.0) - self.monotonic())

    def busy(self, *, max_wait: float, limit: int = BUSY_LIMIT) -> list[str]:
        """The channels whose next slot is more than ``max_wait`` seconds away: a claim leaves their messages
        where they are, due and in order, rather than taking them only to put them back (at most ``limit``, the
        furthest slots first)."""
        if self.interval <= 0:
            return []
        with self._lock:
            horizon = self.monotonic() + max_wait
            far = [(slot, channel) for channel, slot in self._next.items() if slot > horizon]
        if len(far) > limit:
            far = heapq.nlargest(limit, far)
        return [channel for _, channel in far]
