"""Store functions. Each takes a keyword-only ``session`` and never commits: the service owns the transaction.

Every query here is by primary key or an index, so it does not grow with history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, contains_eager, selectinload

from store.models import (
    AccessRequest,
    AuditEvent,
    DueWork,
    Grant,
    MfaEnrolment,
    OutboxMessage,
    ProcessedEvent,
    SlackMessageRef,
)

ACTIVE_GRANT_STATES = ("granting", "active", "revoking", "revoke_failed")


def get_request(
    session: Session, request_id: int, *, for_update: bool = False, votes: bool = True
) -> AccessRequest | None:
    """A request with its grants (and its votes unless ``votes=False``: the revoke path never reads them)."""
    stmt = select(AccessRequest).where(AccessRequest.id == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    stmt = stmt.options(selectinload(AccessRequest.grants))
    if votes:
        stmt = stmt.options(selectinload(AccessRequest.votes))
    return session.scalars(stmt).first()


def get_grant(session: Session, grant_id: int, *, for_update: bool = False) -> Grant | None:
    stmt = select(Grant).where(Grant.id == grant_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def list_requests(
    session: Session, *, states: Sequence[str] | None = None, user_id: str | None = None, limit: int = 50
) -> list[AccessRequest]:
    stmt = select(AccessRequest).order_by(AccessRequest.id.desc()).limit(limit)
    if states:
        stmt = stmt.where(AccessRequest.state.in_(states))
    if user_id:
        granted = select(Grant.request_id).where(Grant.grantee_id == user_id)
        stmt = stmt.where(or_(AccessRequest.requester_id == user_id, AccessRequest.id.in_(granted)))
    return list(session.scalars(stmt.options(selectinload(AccessRequest.grants))))


def get_grants(session: Session, grant_ids: Sequence[int], *, for_update: bool = False) -> list[Grant]:
    """Grants by id, in id order (a stable lock order: concurrent batches never deadlock)."""
    stmt = select(Grant).where(Grant.id.in_(grant_ids)).order_by(Grant.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def get_requests(session: Session, request_ids: Sequence[int], *, for_update: bool = False) -> list[AccessRequest]:
    """Requests by id with their grants (no votes), in id order."""
    stmt = select(AccessRequest).where(AccessRequest.id.in_(request_ids)).order_by(AccessRequest.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt.options(selectinload(AccessRequest.grants))))


def overlapping_grants_of(session: Session, grants: Sequence[Grant]) -> dict[int, list[Grant]]:
    """:func:`overlapping_grants` for many grants in one query: grant id -> the other live grants like it."""
    if not grants:
        return {}
    stmt = select(Grant).where(
        Grant.grantee_id.in_({g.grantee_id for g in grants}),
        Grant.state.in_(("granting", "active")),
        Grant.resource_key.in_({g.resource_key for g in grants}),
    )
    live = list(session.scalars(stmt))
    return {
        g.id: [o for o in live if (o.grantee_id, o.resource_key, o.permission) == (g.grantee_id, g.resource_key,
                                                                                g.permission) and o.id != g.id]
        for g in grants
    }


def overlapping_grants(session: Session, grant: Grant) -> list[Grant]:
    """Other live grants giving the same grantee the same permission on the same resource."""
    stmt = select(Grant).where(
        Grant.grantee_id == grant.grantee_id,
        Grant.state.in_(("granting", "active")),
        Grant.resource_key == grant.resource_key,
        Grant.permission == grant.permission,
        Grant.id != grant.id,
    )
    return list(session.scalars(stmt))


def automatic_grants(
    session: Session, *, grantee_id: str | None = None, failed_since: datetime | None = None
) -> list[Grant]:
    """Grants held or being revoked (``ACTIVE_GRANT_STATES``) of requests made under an automatic flow.

    An automatic flow's request is recognised by its flow snapshot (``type: automatic``), so its grants are
    found even after the flow was removed from the configuration. With ``failed_since``, grants that failed
    since then are included too. Each grant's request is loaded with it.
    """
    held: ColumnElement[bool] = Grant.state.in_(ACTIVE_GRANT_STATES)
    if failed_since is not None:
        held = or_(held, and_(Grant.state == "failed", Grant.ended_at >= failed_since))
    stmt = (
        select(Grant)
        .join(AccessRequest, Grant.request_id == AccessRequest.id)
        .where(held, AccessRequest.flow_snapshot[("flow", "type")].as_string() == "automatic")
        .options(contains_eager(Grant.request))
        .order_by(Grant.id)
    )
    if grantee_id is not None:
        stmt = stmt.where(Grant.grantee_id == grantee_id)
    return list(session.scalars(stmt))


def add_audit(
    session: Session,
    *,
    at: datetime,
    event: str,
    actor: str,
    request_id: int | None = None,
    grant_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    row = AuditEvent(
        at=at, event=event, actor=actor, request_id=request_id, grant_id=grant_id, details=details or {}
    )
    session.add(row)
    return row


def audit_events(
    session: Session, *, since: datetime | None = None, request_id: int | None = None, limit: int | None = None
) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if request_id is not None:
        stmt = stmt.where(AuditEvent.request_id == request_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


# --- due work -------------------------------------------------------------------------------------------------


def schedule(
    session: Session,
    *,
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


def ensure_work(session: Session, *, kind: str, key: str, due_at: datetime) -> bool:
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


def lock_work(session: Session, *, key: str) -> DueWork | None:
    """Lock the timer row ``key`` until the transaction ends (serializes writers that share one timer)."""
    return session.scalars(select(DueWork).where(DueWork.dedupe_key == key).with_for_update()).first()


def hasten_work(session: Session, *, key: str, due_at: datetime) -> bool:
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


def cancel_work(session: Session, *, now: datetime, request_id: int, kinds: Sequence[str]) -> None:
    session.execute(
        update(DueWork)
        .where(DueWork.request_id == request_id, DueWork.kind.in_(kinds), DueWork.done_at.is_(None))
        .values(done_at=now, last_error="canceled")
    )


def cancel_grants_work(session: Session, *, now: datetime, grant_ids: Sequence[int], kinds: Sequence[str]) -> None:
    session.execute(
        update(DueWork)
        .where(DueWork.grant_id.in_(grant_ids), DueWork.kind.in_(kinds), DueWork.done_at.is_(None))
        .values(done_at=now, last_error="canceled")
    )


Timer = tuple[str, datetime, int | None, int | None]  # (dedupe key, due at, request id, grant id)


def schedule_many(session: Session, *, kind: str, timers: Sequence[Timer]) -> None:
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
            session.add(DueWork(kind=kind, dedupe_key=key, request_id=request_id, grant_id=grant_id, due_at=due_at,
                                payload={}, attempts=0))
        else:
            row.due_at, row.done_at, row.lease_until, row.attempts, row.payload = due_at, None, None, 0, {}


def finish_works(session: Session, *, work_ids: Sequence[int], now: datetime) -> None:
    """:func:`finish_work` for many claimed rows."""
    session.execute(
        update(DueWork)
        .where(DueWork.id.in_(work_ids), DueWork.lease_until.is_not(None))
        .values(done_at=now, lease_until=None)
    )


def cancel_grant_work(session: Session, *, now: datetime, grant_id: int, kinds: Sequence[str]) -> None:
    session.execute(
        update(DueWork)
        .where(DueWork.grant_id == grant_id, DueWork.kind.in_(kinds), DueWork.done_at.is_(None))
        .values(done_at=now, last_error="canceled")
    )


def claim_due_work(
    session: Session, *, now: datetime, lease: timedelta, limit: int = 50, is_postgres: bool = False
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


def claim_work_by_key(session: Session, *, key: str, now: datetime, lease: timedelta) -> DueWork | None:
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


def finish_work(session: Session, *, work_id: int, now: datetime) -> None:
    """Mark a claimed row done, unless the work re-armed it meanwhile (``schedule`` clears the lease)."""
    session.execute(
        update(DueWork)
        .where(DueWork.id == work_id, DueWork.lease_until.is_not(None))
        .values(done_at=now, lease_until=None)
    )


def retry_work(session: Session, *, work_id: int, due_at: datetime, error: str) -> None:
    """Move a claimed row to ``due_at``, unless the work re-armed it meanwhile (its own timer stands)."""
    session.execute(
        update(DueWork)
        .where(DueWork.id == work_id, DueWork.lease_until.is_not(None))
        .values(due_at=due_at, lease_until=None, last_error=error[:2000])
    )


def pending_work(session: Session, *, request_id: int | None = None) -> list[DueWork]:
    stmt = select(DueWork).where(DueWork.done_at.is_(None)).order_by(DueWork.due_at)
    if request_id is not None:
        stmt = stmt.where(DueWork.request_id == request_id)
    return list(session.scalars(stmt))


# --- outbox ---------------------------------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
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
    session: Session, *, now: datetime, lease: timedelta, limit: int = 50, is_postgres: bool = False
) -> list[OutboxMessage]:
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.due_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if is_postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.lease_until = now + lease
        row.attempts += 1
    return rows


def outbox_messages(session: Session, *, unsent_only: bool = False) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if unsent_only:
        stmt = stmt.where(OutboxMessage.sent_at.is_(None))
    return list(session.scalars(stmt))


# --- Slack message references, MFA, events --------------------------------------------------------------------


def message_refs(session: Session, *, request_id: int, purpose: str) -> list[SlackMessageRef]:
    stmt = select(SlackMessageRef).where(
        and_(SlackMessageRef.request_id == request_id, SlackMessageRef.purpose == purpose)
    )
    return list(session.scalars(stmt))


def save_message_ref(
    session: Session, *, request_id: int, user_id: str, purpose: str, channel: str, ts: str
) -> None:
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


def get_mfa(session: Session, user_id: str, *, for_update: bool = False) -> MfaEnrolment | None:
    stmt = select(MfaEnrolment).where(MfaEnrolment.user_id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def advance_mfa_step(session: Session, *, user_id: str, step: int) -> bool:
    """Compare-and-set the last used TOTP time step: True only for the one caller that moves it forward."""
    result = session.execute(
        update(MfaEnrolment)
        .where(
            MfaEnrolment.user_id == user_id,
            or_(MfaEnrolment.last_step.is_(None), MfaEnrolment.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def mark_event_processed(session: Session, *, event_id: str, now: datetime) -> bool:
    """True the first time an event id is seen; False for a retry of an event already handled."""
    if session.get(ProcessedEvent, event_id) is not None:
        return False
    session.add(ProcessedEvent(event_id=event_id, at=now))
    session.flush()
    return True


# --- health figures (/metrics): each an indexed read that does not grow with history -------------------------


def live_grant_counts(session: Session) -> dict[str, int]:
    """How many grants are in each state that still needs the bot (granting … revoke_failed)."""
    states = (*ACTIVE_GRANT_STATES, "awaiting_mfa")
    rows = session.execute(select(Grant.state, func.count()).where(Grant.state.in_(states)).group_by(Grant.state))
    return {state: 0 for state in states} | {str(state): int(n) for state, n in rows}


def pending_work_figures(session: Session, *, now: datetime) -> tuple[int, int, datetime | None]:
    """Due work not done: (pending, overdue, the oldest overdue due_at)."""
    pending = session.scalar(select(func.count()).select_from(DueWork).where(DueWork.done_at.is_(None))) or 0
    overdue, oldest = session.execute(
        select(func.count(), func.min(DueWork.due_at)).where(DueWork.done_at.is_(None), DueWork.due_at <= now)
    ).one()
    return int(pending), int(overdue or 0), oldest


def unsent_outbox_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.sent_at.is_(None))) or 0)
