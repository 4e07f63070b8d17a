"""Grantee MFA confirmation (SPEC §5, requests for others): a grantee confirms with their own code first.

When a flow requires MFA, the requester's code proves who asked, not who receives. So the grants of every
grantee other than the requester are written ``awaiting_mfa`` (the grant work skips them) and the grantee is
DMed a *Confirm with MFA* button. A valid code of theirs moves their grants to ``granting`` and schedules the
grant work. The request's ``pending_until`` holds the confirmation deadline, armed as its ``timeout`` due work
(written with the grants, in the same transaction); at the deadline unconfirmed grants end as ``timed_out``.
Every step is audited. These functions run inside the caller's transaction (the service owns it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.lifecycle.events import Events
from policy.config import Flow
from policy.errors import InvalidState, NotEligible
from policy.identity import Identity
from policy.states import GrantState
from store import due_work
from store.due_work import JobKey, JobKind
from store.models import AccessRequest, Grant

AWAITING_MFA = GrantState.AWAITING_MFA
UNCONFIRMED = "timed_out"
UNCONFIRMED_REASON = "MFA confirmation not given in time"


def needs_confirmation(require_mfa: bool, grantee: Identity, requester: Identity) -> bool:
    return require_mfa and not grantee.same_person(requester)


def awaiting(row: AccessRequest, grantee_id: str | None = None) -> list[Grant]:
    """The request's grants still waiting for a confirmation (of one grantee, when given)."""
    return [
        g
        for g in row.grants
        if g.state == AWAITING_MFA and (grantee_id is None or g.grantee_id == grantee_id)
    ]


def ask_grantees(session: Session, events: Events, row: AccessRequest, flow: Flow, now: datetime) -> None:
    """Arm the deadline and DM each grantee whose grants wait for their code; tell the requester."""
    waiting = sorted({g.grantee_id for g in awaiting(row)})
    if not waiting:
        return
    row.pending_until = now + flow.approval.pending_timeout
    due_work.schedule(key=JobKey(JobKind.TIMEOUT, row.id), due_at=row.pending_until, session=session)
    events.record(
        session,
        now,
        "awaiting_grantee_mfa",
        "accessbot",
        row,
        details={
            "grantees": waiting,
            "until": row.pending_until.isoformat(),
        },
    )
    for grantee_id in waiting:
        events.notify(session, now, "grantee_mfa", grantee_id, row)
    events.notify(session, now, "grantee_mfa_waiting", row.requester_id, row, payload={"grantees": waiting})


def check_confirmable(row: AccessRequest, grantee: Identity, now: datetime) -> list[Grant]:
    """The grantee's grants that a valid code would release; raises saying why there are none."""
    mine = awaiting(row, grantee.key)
    if not mine:
        if not any(g.grantee_id == grantee.key for g in row.grants):
            raise NotEligible(f"Request #{row.id} does not grant you anything to confirm.")
        raise InvalidState(f"Request #{row.id} is not waiting for your confirmation any more.")
    if row.pending_until is not None and row.pending_until <= now:
        raise InvalidState(f"The time to confirm request #{row.id} has passed; ask for a new request.")
    return mine


def confirm(
    session: Session, events: Events, row: AccessRequest, grantee: Identity, now: datetime
) -> list[int]:
    """Release the grantee's grants to the grant work; returns their ids (empty when already released)."""
    mine = awaiting(row, grantee.key)
    for grant in mine:
        grant.state = GrantState.GRANTING
    if not mine:
        return []
    row.updated_at = now
    events.record(
        session,
        now,
        "grantee_mfa_confirmed",
        grantee.key,
        row,
        details={
            "grants": [g.id for g in mine],
        },
    )
    due_work.schedule(key=JobKey(JobKind.GRANT, row.id), due_at=now, session=session)
    if not awaiting(row):
        due_work.cancel(now=now, request_id=row.id, kinds=(JobKind.TIMEOUT,), session=session)
    return [g.id for g in mine]


def end_unconfirmed(session: Session, events: Events, row: AccessRequest, now: datetime) -> list[str]:
    """At the deadline: unconfirmed grants end (never granted); returns the grantees who did not confirm."""
    if row.pending_until is None or row.pending_until > now:
        return []
    late = awaiting(row)
    for grant in late:
        grant.state = UNCONFIRMED
        grant.ended_at = now
        grant.end_reason = UNCONFIRMED_REASON
        events.record(session, now, "grantee_mfa_timed_out", "accessbot", row, grant=grant)
    if not late:
        return []
    if all(g.state in (UNCONFIRMED, "failed") for g in row.grants):
        row.state = UNCONFIRMED
    row.updated_at = now
    grantees = sorted({g.grantee_id for g in late})
    for user_id in dict.fromkeys([*grantees, row.requester_id]):
        events.notify(session, now, "grantee_mfa_expired", user_id, row, payload={"grantees": grantees})
    return grantees
