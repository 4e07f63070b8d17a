"""The durable Slack outbox, and the references of the messages it posted.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, func, insert, literal, or_, select, union_all
from sqlalchemy.orm import Session

from store.claims import claim
from store.id_sets import among
from store.models import (
    AccessRequest,
    Grant,
    OutboxMessage,
    SlackMessageRef,
    table,
)


class GrantRecipients(StrEnum):
    """Who :func:`enqueue_for_grants` writes to, read from each grant's rows."""

    PEOPLE = "people"  # the grantee, then the requester when that is someone else
    APPROVAL_THREAD = "approval_thread"  # the request's channel approval message (``approval.channel``), if any


@dataclass(frozen=True, slots=True)
class GrantMessages:
    """The same message (``kind``, ``payload``) about each of ``grant_ids``: to one recipient (``to``: a channel),
    or to each grant's own people (:class:`GrantRecipients`)."""

    kind: str
    payload: dict[str, Any]
    to: str | GrantRecipients
    grant_ids: Sequence[int]


def enqueue_for_grants(*, session: Session, now: datetime, messages: Sequence[GrantMessages]) -> None:
    """Messages about many grants in one ``INSERT … SELECT`` from the grants' rows (the database builds the rows:
    nothing per grant on this side), in the order given (each group in grant order, a grantee before the
    requester)."""
    messages = [m for m in messages if m.grant_ids]
    if not messages:
        return
    outbox, grants, requests = table(OutboxMessage), table(Grant), table(AccessRequest)

    def of_request(column: Any) -> Any:  # by the request's key, row by row: never a join over all requests
        return select(column).where(requests.c.id == grants.c.request_id).scalar_subquery()

    def part(i: int, m: GrantMessages, recipient: Any, n: int = 0) -> Select[Any]:
        return select(literal(i).label("part"), grants.c.id.label("grant_id"), literal(n).label("n"),
                      grants.c.request_id.label("request_id"), recipient.label("recipient"),
                      literal(m.kind, outbox.c.kind.type).label("kind"),
                      literal(m.payload, outbox.c.payload.type).label("payload"),
                      ).where(among(grants.c.id, m.grant_ids, session=session))

    parts: list[Select[Any]] = []
    for i, m in enumerate(messages):  # a recipient that comes out NULL means no message (see the WHERE below)
        if m.to is GrantRecipients.PEOPLE:
            requester = func.nullif(of_request(requests.c.requester_id), grants.c.grantee_id)  # someone else
            parts += [part(i, m, grants.c.grantee_id), part(i, m, requester, 1)]
        elif m.to is GrantRecipients.APPROVAL_THREAD:
            channel = of_request(requests.c.flow_snapshot[("flow", "approval", "channel")].as_string())
            parts.append(part(i, m, func.nullif(channel, "")))
        else:
            parts.append(part(i, m, literal(m.to, outbox.c.recipient.type)))
    source = union_all(*parts).subquery()
    rows = select(
        source.c.kind, source.c.recipient, source.c.request_id, source.c.grant_id, source.c.payload,
        literal(now, outbox.c.created_at.type), literal(now, outbox.c.due_at.type), literal(0, outbox.c.attempts.type),
    ).where(source.c.recipient.is_not(None)).order_by(source.c.part, source.c.grant_id, source.c.n)
    session.execute(insert(outbox).from_select(
        ["kind", "recipient", "request_id", "grant_id", "payload", "created_at", "due_at", "attempts"], rows))


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


def enqueue_many(
    *, session: Session, now: datetime, kind: str, recipients: Sequence[str], request_id: int,
) -> None:
    """The same message about a request for each of ``recipients`` (an approval request to its approvers), in
    one ``INSERT`` and in that order, after whatever the session still had to write (so ids keep the order in
    which messages were queued). Written at once, as rows only: no objects are kept for them."""
    if not recipients:
        return
    if any(isinstance(pending, OutboxMessage) for pending in session.new):
        session.flush()
    session.execute(insert(table(OutboxMessage)), [
        {"kind": kind, "recipient": recipient, "request_id": request_id, "grant_id": None, "payload": {},
         "secret": None, "created_at": now, "due_at": now, "attempts": 0}
        for recipient in recipients
    ])


def claim_outbox(
    *, session: Session, now: datetime, lease: timedelta, limit: int = 50, is_postgres: bool = False,
    skip_recipients: Collection[str] = (),
) -> list[OutboxMessage]:
    """Claim up to ``limit`` unsent messages that are due, oldest first, under a lease; none to
    ``skip_recipients`` (channels that cannot take a message now: theirs stay due, in order)."""
    extra = (or_(OutboxMessage.recipient.is_(None), OutboxMessage.recipient.not_in(list(skip_recipients)))
             if skip_recipients else None)
    return claim(
        OutboxMessage, session=session, unfinished=OutboxMessage.sent_at.is_(None), due_at=OutboxMessage.due_at,
        order_by=OutboxMessage.id, now=now, lease=lease, limit=limit, is_postgres=is_postgres, extra=extra,
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
