"""``GET /healthz``: is the database reachable, is the scheduler ticking, is the Slack connection up?

Answered by :func:`bot.http.wsgi_app` in HTTP mode and by :func:`serve_health` on ``ACCESSBOT_HEALTH_PORT`` in
Socket Mode. 200 with ``{"status": "ok", "checks": {...}}`` when all pass, else 503 with ``"unhealthy"`` and
each failing check's reason. The database check runs off the request thread with a deadline, so an unreachable
database makes the probe fail fast instead of hanging it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import text

from store.db import Database, sqlite_file

log = logging.getLogger(__name__)

Checks = dict[str, str]
OK = "ok"


class Ticking(Protocol):
    tick_seconds: float
    last_progress: float | None

    @property
    def running(self) -> bool: ...


@dataclass
class Health:
    db: Database
    schedulers: Sequence[Ticking]
    slack: Callable[[], str]  # "ok" or why not
    db_timeout: float = 3.0
    _probe: _Probe | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self) -> tuple[bool, Checks]:
        checks = {"database": self.database(), "scheduler": self.scheduler(), "slack": self._slack()}
        healthy = all(value == OK for value in checks.values())
        if not healthy:
            log.debug("unhealthy: %s", checks)
        return healthy, checks

    def database(self) -> str:
        """``SELECT 1`` on a daemon thread (a hung connection never holds up the probe or the process's exit);
        while an earlier one still hangs, no second one is started."""
        with self._lock:
            if self._probe is None or self._probe.done.is_set():
                self._probe = _Probe(self.db)
            probe = self._probe
        if not probe.done.wait(self.db_timeout):
            return f"unreachable: no answer within {self.db_timeout:.0f} s"
        return OK if probe.error is None else f"unreachable: {probe.error}"

    def scheduler(self) -> str:
        now = time.monotonic()
        for scheduler in self.schedulers:
            if not scheduler.running:
                return "stopped"
            stale_after = max(60.0, 10 * scheduler.tick_seconds)
            if scheduler.last_progress is None or now - scheduler.last_progress > stale_after:
                return f"stuck: no progress for over {stale_after:.0f} s"
        return OK

    def _slack(self) -> str:
        try:
            return self.slack()
        except Exception as exc:  # noqa: BLE001
            return f"unknown: {first_line(exc)}"



class _Probe:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.done = threading.Event()
        self.error: str | None = None
        threading.Thread(target=self._run, name="health-db", daemon=True).start()

    def _run(self) -> None:
        try:
            database_file = sqlite_file(self.db.url)
            # a pooled SQLite connection keeps answering from a file that was moved or deleted: look at the path
            if database_file is not None and not database_file.exists():
                raise FileNotFoundError(f"the database file {database_file} is gone")
            with self.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 — the reason is the answer
            self.error = first_line(getattr(exc, "orig", None) or exc)
        finally:
            self.done.set()


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:300]
