"""Due work (timers): scheduled in the transaction of their state, claimed under a lease, finished or retried.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from store.id_sets import among
from store.models import DueWork, Grant, table


class JobKind(StrEnum):
    """What a due-work row does; the worker dispatches on it (``bot.jobs.worker``)."""

    GRANT = "grant"  # subject: a request; call the connectors for its ``granting`` grants
    REVOKE = "revoke"  # subject: a grant; call the connector to revoke it
    EXTEND = "extend"  # subject: a grant; tell the connector the expiry the database holds (after an extension)
    EXPIRE = "expire"  # subject: a grant whose expiry is due
    REMIND = "remind"  # subject: a grant; the reminder before expiry (payload: RemindPayload)
    TIMEOUT = "timeout"  # subject: a request; its pending (or MFA confirmation) time is over
    ESCALATE = "escalate"  # subject: a request; the next approval tier
    RECONCILE = "reconcile"  # no subject: the automatic-flow pass


REQUEST_KINDS = frozenset({JobKind.GRANT, JobKind.TIMEOUT, JobKind.ESCALATE})
GRANT_KINDS = frozenset({JobKind.REVOKE, JobKind.EXTEND, JobKind.EXPIRE, JobKind.REMIND})


class RemindPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    expires_at: datetime  # the expiry the reminder was written for: an extension since makes it stale


class NoPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


PAYLOADS: dict[JobKind, type[BaseModel]] = {JobKind.REMIND: RemindPayload}


def payload_type(kind: JobKind) -> type[BaseModel]:
    return PAYLOADS.get(kind, NoPayload)


@dataclass(frozen=True, slots=True)
class JobKey:
    """The one name of a due-work row: its kind and its subject (a request or a grant id; none for reconcile).

    Written as ``kind:subject`` in the ``dedupe_key`` column, so a second write of the same work re-arms the row.
    """

    kind: JobKind
    subject: int | None = None

    def __str__(self) -> str:
        return self.kind.value if self.subject is None else f"{self.kind.value}:{self.subject}"

    @property
    def request_id(self) -> int | None:
        return self.subject if self.kind in REQUEST_KINDS else None

    @property
    def grant_id(self) -> int | None:
        return self.subject if self.kind in GRANT_KINDS else None

    @classmethod
    def parse(cls, text: str) -> JobKey:
        """Raises ``ValueError`` for a kind this version does not know (the row stays visible, never "done")."""
        kind, _, subject = text.partition(":")
        return cls(JobKind(kind), int(subject) if subject else None)

    @classmethod
    def of(cls, row: DueWork | ClaimedRow) -> JobKey:
        kind = JobKind(row.kind)
        return cls(kind, row.grant_id if kind in GRANT_KINDS else row.request_id)


def _arm(row: DueWork, due_at: datetime, payload: BaseModel | None) -> None:
    row.due_at, row.done_at, row.lease_until, row.lease_owner, row.attempts = due_at, None, None, None, 0
    row.payload = payload.model_dump(mode="json") if payload is not None else {}


def _new(key: JobKey, due_at: datetime, payload: BaseModel | None) -> DueWork:
    return DueWork(kind=key.kind.value, dedupe_key=str(key), request_id=key.request_id, grant_id=key.grant_id,
                   due_at=due_at, payload=payload.model_dump(mode="json") if payload is not None else {}, attempts=0)


def _check(key: JobKey, payload: BaseModel | None) -> None:
    expected = payload_type(key.kind)
    if (payload is None and expected is not NoPayload) or (payload is not None and type(payload) is not expected):
        raise TypeError(f"due work {key} takes a {expected.__name__}, not {type(payload).__name__}")


def schedule(*, session: Session, key: JobKey, due_at: datetime, payload: BaseModel | None = None) -> None:
    """Create the timer ``key``, or move it to ``due_at`` and re-arm it if it exists."""
    _check(key, payload)
    existing = lock_work(key=key, session=session)
    if existing is None:
        session.add(_new(key, due_at, payload))
        session.flush()
        return
    _arm(existing, due_at, payload)


def schedule_new(*, session: Session, key: JobKey, due_at: datetime, payload: BaseModel | None = None) -> None:
    """Create the timer ``key`` of a subject written in this transaction (no timer of it can exist yet): no
    lookup, no flush of its own; it is written with the transaction's other rows. A timer that did exist
    would fail the transaction at its flush (the unique dedupe key), never be silently doubled."""
    _check(key, payload)
    session.add(_new(key, due_at, payload))


def schedule_many(
    *, session: Session, timers: Sequence[tuple[JobKey, datetime]], lease_until: datetime | None = None,
    owner: str | None = None,
) -> None:
    """:func:`schedule` for many payload-less timers ``(key, due_at)`` with one lookup and no flush.

    With ``lease_until`` and ``owner`` the timers are written already claimed by ``owner`` (whose heartbeat
    renews them while it works on them): nobody else runs them unless that worker dies, and then within a
    lease. The expiry batch writes its safety-net revokes so.
    """
    for key, _ in timers:
        _check(key, None)
    existing = {
        w.dedupe_key: w
        for w in session.scalars(
            select(DueWork).where(DueWork.dedupe_key.in_([str(k) for k, _ in timers])).with_for_update()
        )
    }
    for key, due_at in timers:
        row = existing.get(str(key))
        if row is None:
            row = _new(key, due_at, None)
            session.add(row)
        else:
            _arm(row, due_at, None)
        if owner is not None and lease_until is not None:
            row.lease_until, row.lease_owner = lease_until, owner


def schedule_claimed(
    *, session: Session, keys: Sequence[JobKey], due_at: datetime, lease_until: datetime, owner: str
) -> None:
    """Write payload-less timers ``keys`` (new or re-armed) already claimed by ``owner`` until
    ``lease_until``: its heartbeat renews them while it works on them, and nobody else runs them unless it dies
    (then within one lease). One lookup, one update, one insert, whatever the number of keys."""
    if not keys:
        return
    names = {str(k): k for k in keys}
    existing = set(session.scalars(select(DueWork.dedupe_key).where(DueWork.dedupe_key.in_(list(names)))))
    claimed: dict[str, Any] = {"due_at": due_at, "done_at": None, "lease_until": lease_until, "lease_owner": owner,
                               "attempts": 0, "payload": {}, "last_error": None}
    if existing:
        session.execute(update(DueWork).where(DueWork.dedupe_key.in_(list(existing))).values(**claimed)
                        .execution_options(synchronize_session=False))
    new = [k for name, k in names.items() if name not in existing]
    if new:
        session.execute(insert(table(DueWork)), [
            {"kind": k.kind.value, "dedupe_key": str(k), "request_id": k.request_id, "grant_id": k.grant_id,
             **claimed} for k in new
        ])


def ensure_work(*, session: Session, key: JobKey, due_at: datetime) -> bool:
    """Make sure the recurring timer ``key`` is armed; True when this call created or re-armed it.

    Unlike :func:`schedule`, a pending row is left as it is (its time and any lease stand), so every replica
    may call this at start-up without moving a timer another replica is running. A concurrent first insert
    raises ``IntegrityError`` (the unique dedupe key): the caller's transaction lost, the row exists.
    """
    existing = lock_work(key=key, session=session)
    if existing is None:
        session.add(_new(key, due_at, None))
        session.flush()
        return True
    if existing.done_at is None:
        return False
    _arm(existing, due_at, None)
    return True


def lock_work(*, session: Session, key: JobKey) -> DueWork | None:
    """Lock the timer row ``key`` until the transaction ends (serializes writers that share one timer)."""
    return session.scalars(select(DueWork).where(DueWork.dedupe_key == str(key)).with_for_update()).first()


def hasten_work(*, session: Session, key: JobKey, due_at: datetime) -> bool:
    """Bring a pending, unclaimed timer forward to ``due_at`` (never later); True when it moved."""
    result = session.execute(
        update(DueWork)
        .where(
            DueWork.dedupe_key == str(key),
            DueWork.done_at.is_(None),
            DueWork.lease_until.is_(None),
            DueWork.due_at > due_at,
        )
        .values(due_at=due_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def cancel(
    *, session: Session, now: datetime, kinds: Sequence[JobKind], request_id: int | None = None,
    grant_ids: Sequence[int] | None = None,
) -> None:
    """Mark the pending work of these kinds done ("canceled"): of one request, or of some grants."""
    if (request_id is None) == (grant_ids is None):
        raise TypeError("cancel takes a request_id or grant_ids")
    subject: ColumnElement[bool]
    pending: ColumnElement[bool]
    if request_id is not None:
        subject, pending = DueWork.request_id == request_id, DueWork.done_at.is_(None)
    else:  # found by their grants' index: the pending index would walk every pending timer (one per live grant)
        subject, pending = among(DueWork.grant_id, grant_ids or (), session=session), _unindexed_pending()
    session.execute(
        update(DueWork)
        .where(subject, DueWork.kind.in_([k.value for k in kinds]), pending)
        .values(done_at=now, last_error="canceled")
    )


def _unindexed_pending() -> ColumnElement[bool]:
    """``done_at IS NULL`` written so that no planner takes it as the way into the table (SQLite, without
    statistics, prefers the pending index to a set of grant ids)."""
    return func.coalesce(DueWork.done_at, None).is_(None)


class ClaimedRow(Protocol):
    """What a claim returns of each row (a ``DueWork`` or a ``RETURNING`` row of the same columns)."""

    id: int
    kind: str
    request_id: int | None
    grant_id: int | None
    payload: dict[str, Any]
    attempts: int
    lease_owner: str | None


# this process: its PID, and a random part (PIDs repeat across hosts)
PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def claim_token() -> str:
    """A claim's lease owner: this process and a random part (unique per claim)."""
    return f"{PROCESS}-{uuid.uuid4().hex[:12]}"


def release_process_leases(*, session: Session, process: str = PROCESS) -> int:
    """Hand back every unfinished row a claim of this process still holds (a clean shutdown): free at once for
    another replica, instead of when the lease runs out. Returns how many rows were handed back."""
    result = session.execute(
        update(DueWork)
        .where(DueWork.done_at.is_(None), DueWork.lease_owner.like(f"{process}-%"))
        .values(lease_until=None, lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim_due_work(
    *, session: Session, now: datetime, lease: timedelta, limit: int = 50, is_postgres: bool = False,
    key: JobKey | None = None, owner: str | None = None,
) -> Sequence[ClaimedRow]:
    """Claim up to ``limit`` due rows (or the one row ``key``): lease them to ``owner`` so no other worker takes
    them until the lease ends (the owner's heartbeat renews it while the work runs: :func:`renew_leases`).

    One statement whatever the number of rows: ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP
    LOCKED]) RETURNING …`` (on SQLite the write transaction already holds the lock).
    """
    work = table(DueWork)
    free = or_(work.c.lease_until.is_(None), work.c.lease_until <= now)
    due = select(work.c.id).where(work.c.done_at.is_(None), work.c.due_at <= now, free)
    if key is not None:
        due = due.where(work.c.dedupe_key == str(key))
    due = due.order_by(work.c.due_at).limit(limit)
    if is_postgres:
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(work)
        .where(work.c.id.in_(due.scalar_subquery()))
        .values(lease_until=now + lease, lease_owner=owner, attempts=work.c.attempts + 1)
        .returning(work.c.id, work.c.kind, work.c.request_id, work.c.grant_id, work.c.payload, work.c.attempts,
                   work.c.lease_owner)
    )
    rows = list(session.execute(stmt))
    return sorted(rows, key=lambda r: r.id)  # type: ignore[no-any-return]


def postpone(*, session: Session, work_ids: Sequence[int], due_at: datetime, error: str) -> None:
    """Release claimed rows to run at ``due_at`` with ``error`` on them (work this version cannot run)."""
    if work_ids:
        session.execute(
            update(DueWork).where(DueWork.id.in_(list(work_ids)))
            .values(due_at=due_at, lease_until=None, lease_owner=None, last_error=error[:2000])
            .execution_options(synchronize_session=False)
        )


def renew_leases(*, session: Session, owner: str, lease_until: datetime) -> int:
    """The heartbeat: extend the lease of every unfinished row ``owner`` holds; returns how many."""
    result = session.execute(
        update(DueWork)
        .where(DueWork.lease_owner == owner, DueWork.done_at.is_(None), DueWork.lease_until.is_not(None))
        .values(lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _held(work_ids: Sequence[int], owner: str | None, session: Session) -> ColumnElement[bool]:
    held = and_(among(DueWork.id, work_ids, session=session), DueWork.lease_until.is_not(None))
    return held if owner is None else and_(held, DueWork.lease_owner == owner)


def finish_work(*, session: Session, work_ids: Sequence[int], now: datetime, owner: str | None = None) -> None:
    """Mark claimed rows done, unless the work re-armed them meanwhile (``schedule`` clears the lease) or
    another worker took them over (``owner``)."""
    session.execute(
        update(DueWork)
        .where(_held(work_ids, owner, session))
        .values(done_at=now, lease_until=None, lease_owner=None)
        .execution_options(synchronize_session=False)
    )


def finish_key(*, session: Session, key: JobKey, now: datetime) -> None:
    """Mark the claimed row ``key`` done from inside the work's own transaction (so a writer that locks the
    same subject next sees it done, not running)."""
    session.execute(
        update(DueWork)
        .where(DueWork.dedupe_key == str(key), DueWork.done_at.is_(None), DueWork.lease_until.is_not(None))
        .values(done_at=now, lease_until=None, lease_owner=None)
        .execution_options(synchronize_session=False)
    )


def retry_work(
    *, session: Session, work_id: int, due_at: datetime, error: str, owner: str | None = None
) -> None:
    """Release a claimed row to run again at ``due_at``, unless the work re-armed it meanwhile (its own timer
    stands) or another worker took it over (``owner``)."""
    session.execute(
        update(DueWork)
        .where(_held([work_id], owner, session))
        .values(due_at=due_at, lease_until=None, lease_owner=None, last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )


def release_keys(*, session: Session, retries: Sequence[tuple[JobKey, datetime]], owner: str, error: str) -> None:
    """:func:`retry_work` by key, for rows written claimed (``schedule_many(owner=…)``): each runs at its time."""
    for key, due_at in retries:
        session.execute(
            update(DueWork)
            .where(DueWork.dedupe_key == str(key), DueWork.lease_owner == owner, DueWork.done_at.is_(None))
            .values(due_at=due_at, lease_until=None, lease_owner=None, last_error=error[:2000])
            .execution_options(synchronize_session=False)
        )


def pending_work(*, session: Session, request_id: int | None = None) -> list[DueWork]:
    """Work not done, soonest first: all of it, or a request's (its own rows and its grants' rows)."""
    stmt = select(DueWork).where(DueWork.done_at.is_(None)).order_by(DueWork.due_at)
    if request_id is not None:
        grants = select(Grant.id).where(Grant.request_id == request_id)
        stmt = stmt.where(or_(DueWork.request_id == request_id, DueWork.grant_id.in_(grants)))
    return list(session.scalars(stmt))


def pending_work_figures(*, session: Session, now: datetime) -> tuple[int, int, datetime | None]:
    """Due work not done: (pending, overdue, the oldest overdue due_at)."""
    pending = session.scalar(select(func.count()).select_from(DueWork).where(DueWork.done_at.is_(None))) or 0
    overdue, oldest = session.execute(
        select(func.count(), func.min(DueWork.due_at)).where(DueWork.done_at.is_(None), DueWork.due_at <= now)
    ).one()
    return int(pending), int(overdue or 0), oldest
