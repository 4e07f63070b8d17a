"""Break-glass (``settings.break_glass``, SPEC §5): granted at once, reviewed by the approvers afterwards.

A break-glass request skips the approval — MFA and the justification still apply — and its grants are written
at once. Every approver of the flow's groups gets a *review* message (Acknowledge / Revoke now) in their DM
and/or the flow's channel; the audit channel gets a loud notice (the ``break_glass_granted`` audit event); the
requester is told who will review. An unreviewed request escalates like a pending one (the ``escalate`` due
work, tier after tier). The first review settles it for everyone: the review messages are updated in place.
These functions run inside the caller's transaction (the service owns it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from bot.lifecycle import asking
from bot.lifecycle.events import Events
from policy.config import Flow
from policy.errors import AlreadyDecided, InvalidState
from policy.identity import Identity
from store import due_work
from store.due_work import JobKey, JobKind
from store.models import AccessRequest

ACKNOWLEDGED = "acknowledged"
REVOKED = "revoked"
OUTCOMES = (ACKNOWLEDGED, REVOKED)


def open_review(session: Session, events: Events, row: AccessRequest, flow: Flow, reviewers: Sequence[Identity],
                now: datetime) -> None:
    """Mark the request break-glass, ask the reviewers, alert the audit channel, arm the escalation."""
    row.break_glass = True
    events.record(session, now, "break_glass_granted", row.requester_id, row, details={
        "flow": flow.name, "resources": row.resource_keys, "permission": row.permission,
        "grantees": row.grantee_ids, "reviewers": [r.key for r in reviewers],
    })
    asking.ask(session, events, row, flow, reviewers, now)
    events.notify(session, now, "break_glass_notice", row.requester_id, row,
                  payload={"reviewers": [r.key for r in reviewers]})
    if flow.approval.escalation is not None:
        due_work.schedule(key=JobKey(JobKind.ESCALATE, row.id), due_at=now + flow.approval.escalation.every,
                          session=session)


def settle(session: Session, events: Events, row: AccessRequest, reviewer: Identity, groups: frozenset[int],
           outcome: str, now: datetime) -> None:
    """Record the review (the first one counts); refuses a second one saying who reviewed."""
    if not row.break_glass:
        raise InvalidState(f"Request #{row.id} was not a break-glass request; there is nothing to review.")
    if row.reviewed_at is not None:
        raise AlreadyDecided(f"Request #{row.id} was already reviewed: {row.review_outcome} by <@{row.reviewed_by}>.")
    row.reviewed_at, row.reviewed_by, row.review_outcome = now, reviewer.key, outcome
    row.updated_at = now
    due_work.cancel(now=now, request_id=row.id, kinds=(JobKind.ESCALATE,), session=session)
    events.record(session, now, f"break_glass_{outcome}", reviewer.key, row, details={"groups": sorted(groups)})
    events.notify(session, now, "approval_update", None, row)
    for user in dict.fromkeys([row.requester_id, *row.grantee_ids]):
        events.notify(session, now, "break_glass_reviewed", user, row, payload={"outcome": outcome})
