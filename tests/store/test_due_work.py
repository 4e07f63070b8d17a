"""Timers of a subject written in the same transaction: added without a lookup, never silently doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from store import due_work
from store.db import Database
from store.due_work import JobKey, JobKind
from store.models import DueWork

KEY = JobKey(JobKind.RECONCILE)
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite gives back naive UTC


def test_a_new_timer_is_written_with_the_transaction_without_a_lookup(db: Database) -> None:
    statements: list[str] = []
    with db.begin() as session:
        event.listen(session.get_bind(), "before_cursor_execute",
                     lambda *args: statements.append(str(args[2]).split()[0]))
        due_work.schedule_new(key=KEY, due_at=NOW + timedelta(minutes=5), session=session)
        assert statements == []  # nothing looked up, nothing flushed yet
    with db.read() as session:
        rows = session.scalars(select(DueWork).where(DueWork.dedupe_key == str(KEY))).all()
    assert [(r.kind, aware(r.due_at), r.done_at) for r in rows] == [
        ("reconcile", NOW + timedelta(minutes=5), None)]


def test_a_timer_that_already_exists_fails_the_transaction_and_nothing_is_doubled(db: Database) -> None:
    with db.begin() as session:
        due_work.schedule_new(key=KEY, due_at=NOW, session=session)
    with pytest.raises(IntegrityError), db.begin() as session:
        due_work.schedule_new(key=KEY, due_at=NOW + timedelta(hours=1), session=session)
    with db.read() as session:
        rows = session.scalars(select(DueWork).where(DueWork.dedupe_key == str(KEY))).all()
    assert [aware(r.due_at) for r in rows] == [NOW]
