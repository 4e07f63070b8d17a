"""The scheduler tick: runs the due work, the outbox sender and the config reload check (SPEC §8).

APScheduler 3's ``BackgroundScheduler`` only provides the tick (one interval job, ``max_instances=1``,
``coalesce=True``); its job store is not used for correctness. Deadlines live in the database (``due_work``),
so a restart or crash loses nothing, and replicas share the work through atomic claims.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from bot.clock import Clock, SystemClock
from bot.jobs.worker import MAX_CLAIM, Worker
from store.db import Database, background_work, is_background

log = logging.getLogger(__name__)

Task = Callable[[], object]


def db_now(db: Database, clock: Clock) -> datetime:
    """The database clock (aware UTC) on PostgreSQL, so replicas agree on what is due; ``clock`` on SQLite."""
    if not db.is_postgres:
        return clock.now()
    with db.engine.connect() as connection:
        value = connection.execute(text("SELECT now()")).scalar_one()
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


class DatabaseClock:
    """The host clock corrected to the database's clock (PostgreSQL), re-synced every tick.

    Every replica then judges deadlines by one clock, the database's, in the lifecycle functions as much as in
    the claim: a bot host whose clock is slow cannot keep access open past its expiry, and one whose clock is
    fast cannot end it early. On SQLite (one process, one host) it is the host clock.
    """

    SKEW_WARNING = timedelta(seconds=5)

    def __init__(self, db: Database, base: Clock | None = None) -> None:
        self.db = db
        self.base = base or SystemClock()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def sync(self) -> timedelta:
        """Measure the host's offset from the database clock (a tick task); returns it."""
        if not self.db.is_postgres:
            return self.offset
        before = self.base.now()
        database = db_now(self.db, self.base)
        after = self.base.now()
        offset = database - (before + (after - before) / 2)
        if abs(offset) > self.SKEW_WARNING and abs(offset - self.offset) > self.SKEW_WARNING:
            log.warning("this host's clock is %.1f s %s the database's; deadlines follow the database",
                        abs(offset.total_seconds()), "behind" if offset > timedelta(0) else "ahead of")
        self.offset = offset
        return offset


def run_due_by_db_clock(
    worker: Worker, db: Database, clock: Clock, *, max_batches: int = 50
) -> Callable[[], int]:
    """A tick task: ``worker.run_due`` with due-ness decided by the database clock.

    Claims use ``min(database now, clock now)``, so nothing is claimed before ``clock`` (which the lifecycle
    functions re-check with) says it is due. In production ``clock`` is a synced :class:`DatabaseClock`, so both
    are the database's time; a row claimed early anyway (another replica) is re-armed, never dropped. Each call
    reads the time afresh: what fell due while the previous one ran (a burst of expiries spread over a second or
    two) is taken at once, not a tick later. A tick claims ``max_batches`` claims' worth of rows at most.
    """

    def run_due() -> int:
        total = 0
        for _ in range(max_batches):  # drain a backlog (everything overdue after a restart), bounded per tick
            left = max_batches - -(-total // MAX_CLAIM)  # claims this tick may still make
            if left <= 0:
                break
            ran = worker.run_due(now=min(db_now(db, clock), clock.now()), claims=left)
            total += ran
            if ran == 0:
                break
        return total

    return run_due


class Scheduler:
    """Runs every task once per tick, in order; a failing task is logged and the others still run."""

    def __init__(self, tasks: Sequence[Task], tick_seconds: float) -> None:
        if tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        self.tasks = list(tasks)
        self.tick_seconds = tick_seconds
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self.ticks = 0
        self.last_progress: float | None = None  # time.monotonic() when a tick last started or finished a task
        self._idle = threading.Condition()
        self._in_tick = 0

    def tick(self) -> None:
        """Every task once; they are background work (their transactions take turns, :func:`background_work`)."""
        with self._idle:
            self._in_tick += 1
        self.ticks += 1
        self.last_progress = time.monotonic()
        marked = is_background()
        background_work(True)
        try:
            for task in self.tasks:
                try:
                    task()
                except Exception:  # noqa: BLE001 — a tick must never kill the scheduler; the work is retried
                    log.exception("scheduled task %s failed", getattr(task, "__qualname__", task))
                self.last_progress = time.monotonic()
        finally:
            background_work(marked)
            with self._idle:
                self._in_tick -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Stop ticking and wait up to ``timeout`` seconds for a tick in progress; True when none is left."""
        self.shutdown(wait=False)
        with self._idle:
            return self._idle.wait_for(lambda: self._in_tick == 0, timeout=max(timeout, 0.0))

    def start(self) -> None:
        """Start ticking; the first tick runs at once, so everything overdue at start is done immediately."""
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_seconds,
            id="accessbot-tick",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def shutdown(self, *, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
