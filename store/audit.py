"""The append-only audit trail.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, literal, select, union_all
from sqlalchemy.orm import Session

from store.id_sets import among
from store.models import (
    AuditEvent,
    Grant,
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


@dataclass(frozen=True, slots=True)
class GrantEvents:
    """The same audit event (``event``, ``details``) for each of ``grant_ids``."""

    event: str
    details: dict[str, Any]
    grant_ids: Sequence[int]


def add_grant_events(*, session: Session, at: datetime, actor: str, events: Sequence[GrantEvents]) -> None:
    """Audit events for many grants, each with its grant's id and request id, in one ``INSERT … SELECT`` from
    the grants' rows (the database builds the rows: nothing per grant on this side), in the order given (each
    group in grant order)."""
    events = [e for e in events if e.grant_ids]
    if not events:
        return
    audit, grants = table(AuditEvent), table(Grant)
    parts = union_all(*(
        select(literal(i).label("part"), grants.c.id.label("grant_id"), grants.c.request_id.label("request_id"),
               literal(e.event, audit.c.event.type).label("event"),
               literal(e.details, audit.c.details.type).label("details"))
        .where(among(grants.c.id, e.grant_ids, session=session))
        for i, e in enumerate(events)
    )).subquery()
    rows = select(literal(at, audit.c.at.type), parts.c.event, literal(actor, audit.c.actor.type),
                  parts.c.request_id, parts.c.grant_id, parts.c.details).order_by(parts.c.part, parts.c.grant_id)
    session.execute(insert(audit).from_select(["at", "event", "actor", "request_id", "grant_id", "details"], rows))


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
