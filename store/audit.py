"""The append-only audit trail.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.models import (
    AuditEvent,
    table,
)


def add_audit(
    *,
    session: Session,
    at: datetime,
    event: str,
    actor: str,
    request_id: int | None = None,
    grant_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    row = AuditEvent(at=at, event=event, actor=actor, request_id=request_id, grant_id=grant_id, details=details or {})
    session.add(row)
    return row


def add_audit_many(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many audit events in one statement (each a dict of the columns ``add_audit`` takes)."""
    if rows:
        session.execute(insert(table(AuditEvent)), [{"details": {}, **row} for row in rows])


def audit_events(
    *, session: Session, since: datetime | None = None, request_id: int | None = None, limit: int | None = None
) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if request_id is not None:
        stmt = stmt.where(AuditEvent.request_id == request_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))
