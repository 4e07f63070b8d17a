"""The durable Slack outbox, and the references of the messages it posted.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.orm import Session

from store.claims import claim
from store.models import (
    OutboxMessage,
    SlackMessageRef,
    table,
)


def enqueue_many(*, session: Session, now: datetime, rows: Sequence[dict[str, Any]]) -> None:
    """:func:`enqueue` for many messages in one statement (each a dict: kind, recipient, request_id, …)."""
    if rows:
        session.execute(insert(table(OutboxMessage)), [
            {"payload": {}, "secret": None, "request_id": None, "grant_id": None, **row,
             "created_at": now, "due_at": now, "attempts": 0} for row in rows
        ])


def enqueue(
    *,
    session: Session,
    now: datetime,
    kind: str,
    recipient: str | None,
    request_id: int | None = None,
    grant_id: int | None = None,
    payload: dict[str, Any] | None = None,
    secret: str | None = None,
) -> OutboxMessage:
    row = OutboxMessage(
        kind=kind,
        recipient=recipient,
        request_id=request_id,
        grant_id=grant_id,
        payload=payload or {},
        secret=secret,
        created_at=now,
        due_at=now,
        attempts=0,
    )
    session.add(row)
    return row


def claim_outbox(
    *, session: Session, now: datetime, lease: timedelta, limit: int = 50, is_postgres: bool = False
) -> list[OutboxMessage]:
    """Claim up to ``limit`` unsent messages that are due, oldest first, under a lease."""
    return claim(
        OutboxMessage, session=session, unfinished=OutboxMessage.sent_at.is_(None), due_at=OutboxMessage.due_at,
        order_by=OutboxMessage.id, now=now, lease=lease, limit=limit, is_postgres=is_postgres,
    )


def outbox_messages(*, session: Session, unsent_only: bool = False) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if unsent_only:
        stmt = stmt.where(OutboxMessage.sent_at.is_(None))
    return list(session.scalars(stmt))


def message_refs(*, session: Session, request_id: int, purpose: str) -> list[SlackMessageRef]:
    stmt = select(SlackMessageRef).where(
        and_(SlackMessageRef.request_id == request_id, SlackMessageRef.purpose == purpose)
    )
    return list(session.scalars(stmt))


def save_message_ref(*, session: Session, request_id: int, user_id: str, purpose: str, channel: str, ts: str) -> None:
    existing = session.scalars(
        select(SlackMessageRef).where(
            SlackMessageRef.request_id == request_id,
            SlackMessageRef.user_id == user_id,
            SlackMessageRef.purpose == purpose,
        )
    ).first()
    if existing is None:
        session.add(SlackMessageRef(request_id=request_id, user_id=user_id, purpose=purpose, channel=channel, ts=ts))
    else:
        existing.channel, existing.ts = channel, ts


def unsent_outbox_count(*, session: Session) -> int:
    return int(
        session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))) or 0
    )
