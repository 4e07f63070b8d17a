"""Whose App Home is worth republishing after a change: the people who look at theirs.

Slack sends ``app_home_opened`` each time someone opens the Home tab, and the bot then publishes it fresh
(:mod:`handlers.home`). Republishing after every change for everyone a request concerns costs, in a large org,
one ``views.publish`` and one App Home computation per approver per change (a request with 30 approvers: 30 per
vote), mostly for tabs nobody has open. :class:`HomeViewers` remembers who opened their Home in the last
``keep`` seconds (a day by default): only their homes are republished after a change; everyone else's is
published fresh when they next open it. Kept per process: a replica that did not see the open event leaves that
tab as it was until the next open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

KEEP_SECONDS = 24 * 3600.0


class HomeViewers:
    def __init__(self, keep: float = KEEP_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self.monotonic = monotonic
        self._opened: dict[str, float] = {}  # user id -> when they last opened their Home tab
        self._lock = threading.Lock()

    def opened(self, user_id: str) -> None:
        now = self.monotonic()
        with self._lock:
            self._opened[user_id] = now
            if len(self._opened) > 4 * 10_000:  # a day of a very large org: drop who has not looked since
                self._opened = {u: t for u, t in self._opened.items() if now - t < self.keep}

    def watching(self, user_id: str) -> bool:
        """Whether ``user_id`` opened their Home tab in the last ``keep`` seconds."""
        opened = self._opened.get(user_id)
        return opened is not None and self.monotonic() - opened < self.keep

    def middleware(self, body: dict[str, Any], next: Callable[[], None]) -> None:  # noqa: A002 — Bolt's name
        """Bolt global middleware: notes an ``app_home_opened`` of the Home tab, then goes on."""
        event = body.get("event") or {}
        if event.get("type") == "app_home_opened" and event.get("tab", "home") == "home" and event.get("user"):
            self.opened(str(event["user"]))
        next()
