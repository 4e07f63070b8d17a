"""Slack deliveries already handled (an event id is acted on once).

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.models import (
    ProcessedEvent,
)


def mark_event_processed(*, session: Session, event_id: str, now: datetime) -> bool:
    """True the first time an event id is seen; False for a retry of an event already handled."""
    if session.get(ProcessedEvent, event_id) is not None:
        return False
    session.add(ProcessedEvent(event_id=event_id, at=now))
    session.flush()
    return True
