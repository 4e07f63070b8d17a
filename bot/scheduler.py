"""The scheduler tick: runs the due work, the outbox sender and the config reload check (SPEC §8).

APScheduler 3's ``BackgroundScheduler`` only provides the tick (one interval job, ``max_instances=1``,
``coalesce=True``); its job store is not used for correctness. Deadlines live in the database (``due_work``),
so a restart or crash loses nothing, and replicas share the work through atomic claims.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from bot.clock import Clock
from bot.worker import Worker
from store.db import Database

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


def run_due_by_db_clock(
    worker: Worker, db: Database, clock: Clock, *, max_batches: int = 50
) -> Callable[[], int]:
    """A tick task: ``worker.run_due`` with due-ness decided by the database clock.

    The lifecycle functions re-check deadlines with the process clock (``clock``), so the tick never claims
    work earlier than the process clock says it is due: ``min(database now, process now)``. A replica whose
    clock is fast therefore never acts early, and one whose clock is slow is only late by its skew.
    """

    def run_due() -> int:
        now = min(db_now(db, clock), clock.now())
        total = 0
        for _ in range(max_batches):  # drain a backlog (everything overdue after a restart), bounded per tick
            ran = worker.run_due(now=now)
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

    def tick(self) -> None:
        self.ticks += 1
        for task in self.tasks:
            try:
                task()
            except Exception:  # noqa: BLE001 — a tick must never kill the scheduler; the work is retried
                log.exception("scheduled task %s failed", getattr(task, "__qualname__", task))

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
