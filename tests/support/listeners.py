"""A listener executor for tests: the serving bot's :class:`~bot.slack.listeners.ListenerPool` (Bolt answers Slack
at ``ack()``, the rest of a listener runs afterwards in a work slot), plus ``wait_idle``: it waits (with a
deadline) until every listener that started has finished, so a test can look at what the bot did after an
acknowledged request without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from bot.slack.listeners import WORK_SLOTS, ListenerPool


class TrackingExecutor(ListenerPool):
    def __init__(self, threads: int = 64, slots: int = WORK_SLOTS) -> None:
        super().__init__(threads, slots)
        self._running = 0
        self._idle = threading.Condition()
        self.failures: list[BaseException] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._running += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        error = future.exception()
        with self._idle:
            if error is not None:
                self.failures.append(error)
            self._running -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 15.0) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._running == 0, timeout):
                raise AssertionError(f"{self._running} Slack listener(s) still running after {timeout}s")
