"""Claiming rows under a lease: the one query the due work and the outbox share (SPEC §8).

On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets replicas claim disjoint rows concurrently; on SQLite the
transaction already holds the write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session


class Leased(Protocol):
    lease_until: Any
    attempts: Any


RowT = TypeVar("RowT", bound=Leased)


def claim(
    model: type[RowT], *, session: Session, unfinished: ColumnElement[bool], due_at: InstrumentedAttribute[Any],
    order_by: InstrumentedAttribute[Any], now: datetime, lease: timedelta, limit: int, is_postgres: bool,
    extra: ColumnElement[bool] | None = None,
) -> list[RowT]:
    """Lease up to ``limit`` unfinished rows due by ``now`` whose lease is free; each claim counts an attempt."""
    lease_until: Any = model.lease_until
    stmt = select(model).where(unfinished, due_at <= now, or_(lease_until.is_(None), lease_until <= now))
    if extra is not None:
        stmt = stmt.where(extra)
    stmt = stmt.order_by(order_by).limit(limit)
    if is_postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.lease_until = now + lease
        row.attempts += 1
    return rows
