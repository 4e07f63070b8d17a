"""The page's time controls, through the bot's own due-work mechanism: the runtime's clock is moved forward.

The bot's clock (:class:`bot.scheduler.DatabaseClock`) is the host clock plus an offset; on SQLite the offset is
the demo's to set. "Expire now" moves the clock to the next ``expire`` row's ``due_at``, "escalate now" to the
next ``escalate`` row's; the scheduler's next tick claims and runs them exactly as it would have then. Nothing in
the lifecycle knows the demo exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from store import due_work
from store.db import Database


class OffsetClock(Protocol):
    offset: timedelta

    def now(self) -> datetime: ...


def advance(clock: OffsetClock, delta: timedelta) -> datetime:
    if delta < timedelta(0):
        raise ValueError("time only moves forward")
    clock.offset += delta
    return clock.now()


def next_due(db: Database, kind: str) -> datetime | None:
    with db.begin() as session:
        rows = [w for w in due_work.pending_work(session=session) if w.kind == kind]
        return min((w.due_at for w in rows), default=None)


def jump_to_next(db: Database, clock: OffsetClock, kind: str) -> datetime | None:
    """Move the clock just past the next pending ``kind`` work (None: there is none)."""
    due = next_due(db, kind)
    if due is None:
        return None
    due = due if due.tzinfo else due.replace(tzinfo=clock.now().tzinfo)
    advance(clock, max(timedelta(0), due - clock.now()) + timedelta(seconds=1))
    return due
