"""Slack deliveries already handled (an event id is acted on once).

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.models import ProcessedEvent, conflict_insert


def mark_event_processed(*, session: Session, event_id: str, now: datetime) -> bool:
    """True the first time an event id is seen; False for a retry of an event already handled (or being handled:
    a concurrent delivery's row, once it commits). One ``INSERT … ON CONFLICT DO NOTHING``: every ``/access``
    passes here, so it is one round trip, not a read and then a write."""
    statement = (conflict_insert(session, ProcessedEvent).values(event_id=event_id, at=now)
                 .on_conflict_do_nothing().returning(ProcessedEvent.event_id))
    return session.execute(statement).first() is not None  # a row only when this INSERT wrote it
