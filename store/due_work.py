"""Due work (timers): scheduled in the transaction of their state, claimed under a lease, finished or retried.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from store.models import (
    DueWork,
)


def schedule(
    *,
    session: Session,
    kind: str,
    key: str,
    due_at: datetime,
    request_id: int | None = None,
    grant_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Create the timer ``key``, or move it to ``due_at`` and re-arm it if it exists."""
    existing = session.scalars(select(DueWork).where(DueWork.dedupe_key == key).with_for_update()).first()
    if existing is None:
        session.add(
            DueWork(
                kind=kind,
                dedupe_key=key,
                request_id=request_id,
                grant_id=grant_id,
                due_at=due_at,
                payload=payload or {},
                attempts=0,
            )
        )
        session.flush()
        return
    existing.due_at = due_at
    existing.done_at = None
    existing.lease_until = None
    existing.attempts = 0
    existing.payload = payload or {}


def ensure_work(*, session: Session, kind: str, key: str, due_at: datetime) -> bool:
    """Make sure the recurring timer ``key`` is armed; True when this call created or re-armed it.

    Unlike :func:`schedule`, a pending row is left as it is (its time and any lease stand), so every replica
    may call this at start-up without moving a timer another replica is running. A concurrent first insert
    raises ``IntegrityError`` (the unique dedupe key): the caller's transaction lost, the row exists.
    """
    existing = session.scalars(select(DueWork).where(DueWork.dedupe_key == key).with_for_update()).first()
    if existing is None:
        session.add(DueWork(kind=kind, dedupe_key=key, due_at=due_at, payload={}, attempts=0))
        session.flush()
        return True
    if existing.done_at is None:
        return False
    existing.due_at, existing.done_at, existing.lease_until, existing.attempts = due_at, None, None, 0
    return True


def lock_work(*, session: Session, key: str) -> DueWork | None:
    """Lock the timer row ``key`` until the transaction ends (serializes writers that share one timer)."""
    return session.scalars(select(DueWork).where(DueWork.dedupe_key == key).with_for_update()).first()


def hasten_work(*, session: Session, key: str, due_at: datetime) -> bool:
    """Bring a pending, unclaimed timer forward to ``due_at`` (never later); True when it moved."""
    result = session.execute(
        update(DueWork)
        .where(
            DueWork.dedupe_key == key,
            DueWork.done_at.is_(None),
            DueWork.lease_until.is_(None),
            DueWork.due_at > due_at,
        )
        .values(due_at=due_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def cancel_work(*, session: Session, now: datetime, request_id: int, kinds: Sequence[str]) -> None:
    session.execute(
        update(DueWork)
        .where(DueWork.request_id == request_id, DueWork.kind.in_(kinds), DueWork.done_at.is_(None))
        .values(done_at=now, last_error="canceled")
    )


def cancel_grants_work(*, session: Session, now: datetime, grant_ids: Sequence[int], kinds: Sequence[str]) -> None:
    session.execute(
        update(DueWork)
        .where(DueWork.grant_id.in_(grant_ids), DueWork.kind.in_(kinds), DueWork.done_at.is_(None))
        .values(done_at=now, last_error="canceled")
    )


Timer = tuple[str, datetime, int | None, int | None]  # (dedupe key, due at, request id, grant id)


def schedule_many(*, session: Session, kind: str, timers: Sequence[Timer]) -> None:
    """:func:`schedule` for many timers ``(key, due_at, request_id, grant_id)`` with one lookup and no flush."""
    existing = {
        w.dedupe_key: w
        for w in session.scalars(
            select(DueWork).where(DueWork.dedupe_key.in_([t[0] for t in timers])).with_for_update()
        )
    }
    for key, due_at, request_id, grant_id in timers:
        row = existing.get(key)
        if row is None:
            session.add(
                DueWork(
                    kind=kind,
                    dedupe_key=key,
                    request_id=request_id,
                    grant_id=grant_id,
                    due_at=due_at,
                    payload={},
                    attempts=0,
                )
            )
        else:
            row.due_at, row.done_at, row.lease_until, row.attempts, row.payload = due_at, None, None, 0, {}


def finish_works(*, session: Session, work_ids: Sequence[int], now: datetime) -> None:
    """:func:`finish_work` for many claimed rows."""
    session.execute(
        update(DueWork)
        .where(DueWork.id.in_(work_ids), DueWork.lease_until.is_not(None))
        .values(done_at=now, lease_until=None)
    )


def cancel_grant_work(*, session: Session, now: datetime, grant_id: int, kinds: Sequence[str]) -> None:
    session.execute(
        update(DueWork)
        .where(DueWork.grant_id == grant_id, DueWork.kind.in_(kinds), DueWork.done_at.is_(None))
        .values(done_at=now, last_error="canceled")
    )


def claim_due_work(
    *, session: Session, now: datetime, lease: timedelta, limit: int = 50, is_postgres: bool = False
) -> list[DueWork]:
    """Claim up to ``limit`` due rows: lease them so no other worker takes them until the lease ends.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets replicas claim disjoint rows concurrently; on SQLite the
    transaction already holds the write lock (``BEGIN IMMEDIATE``).
    """
    stmt = (
        select(DueWork)
        .where(
            DueWork.done_at.is_(None),
            DueWork.due_at <= now,
            or_(DueWork.lease_until.is_(None), DueWork.lease_until <= now),
        )
        .order_by(DueWork.due_at)
        .limit(limit)
    )
    if is_postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.lease_until = now + lease
        row.attempts += 1
    return rows


def claim_work_by_key(*, session: Session, key: str, now: datetime, lease: timedelta) -> DueWork | None:
    """Claim one named row if it is due and free (used to run freshly written work inline)."""
    stmt = (
        select(DueWork)
        .where(
            DueWork.dedupe_key == key,
            DueWork.done_at.is_(None),
            DueWork.due_at <= now,
            or_(DueWork.lease_until.is_(None), DueWork.lease_until <= now),
        )
        .with_for_update()
    )
    row = session.scalars(stmt).first()
    if row is not None:
        row.lease_until = now + lease
        row.attempts += 1
    return row


def finish_work(*, session: Session, work_id: int, now: datetime) -> None:
    """Mark a claimed row done, unless the work re-armed it meanwhile (``schedule`` clears the lease)."""
    session.execute(
        update(DueWork)
        .where(DueWork.id == work_id, DueWork.lease_until.is_not(None))
        .values(done_at=now, lease_until=None)
    )


def retry_work(*, session: Session, work_id: int, due_at: datetime, error: str) -> None:
    """Move a claimed row to ``due_at``, unless the work re-armed it meanwhile (its own timer stands)."""
    session.execute(
        update(DueWork)
        .where(DueWork.id == work_id, DueWork.lease_until.is_not(None))
        .values(due_at=due_at, lease_until=None, last_error=error[:2000])
    )


def pending_work(*, session: Session, request_id: int | None = None) -> list[DueWork]:
    stmt = select(DueWork).where(DueWork.done_at.is_(None)).order_by(DueWork.due_at)
    if request_id is not None:
        stmt = stmt.where(DueWork.request_id == request_id)
    return list(session.scalars(stmt))


def pending_work_figures(*, session: Session, now: datetime) -> tuple[int, int, datetime | None]:
    """Due work not done: (pending, overdue, the oldest overdue due_at)."""
    pending = session.scalar(select(func.count()).select_from(DueWork).where(DueWork.done_at.is_(None))) or 0
    overdue, oldest = session.execute(
        select(func.count(), func.min(DueWork.due_at)).where(DueWork.done_at.is_(None), DueWork.due_at <= now)
    ).one()
    return int(pending), int(overdue or 0), oldest
