"""Writing a submitted request (SPEC §5): the row with its flow snapshot, then where it goes.

Automatic and break-glass requests are approved at once and their grants written; the others are asked of
their approvers (DMs and/or the team channel), with their timeout and escalation armed. All in the caller's
transaction (the service decided and validated everything before).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.lifecycle import asking, break_glass, confirmations
from bot.lifecycle import intents as grant_intents
from bot.lifecycle.events import Events
from bot.lifecycle.records import RequestRecord
from policy.flows import FlowChoice
from policy.identity import Identity
from store import due_work
from store.due_work import JobKey, JobKind
from store.models import AccessRequest


@dataclass(frozen=True, slots=True)
class Written:
    """A validated request, as it is stored."""

    requester: Identity
    grantees: Sequence[Identity]
    choice: FlowChoice
    duration: timedelta | None
    justification: str
    risk: str | None  # the configured risk (None: none configured)
    view_id: str | None  # the Slack view it came from (unique)


def asks_approvers(choice: FlowChoice) -> bool:
    """Whether a request of this choice waits for approvers (automatic and break-glass requests do not)."""
    return not (choice.automatic_approval or choice.flow.settings.break_glass)


def write(session: Session, events: Events, request: Written, now: datetime) -> AccessRequest:
    flow = request.choice.flow
    row = AccessRequest(
        state="pending",
        flow_name=flow.name,
        flow_snapshot={"flow": flow.model_dump(mode="json", by_alias=True), "risk": request.risk},
        requester_id=request.requester.key,
        requester_email=request.requester.email,
        grantee_ids=[g.key for g in request.grantees],
        integration=request.choice.permission.integration,
        permission=request.choice.permission.name,
        resource_keys=[r.key for r in request.choice.resources],
        duration_seconds=None if request.duration is None else int(request.duration.total_seconds()),
        justification=request.justification,
        escalation_tier=0,
        # known before the row is written, so it is in the INSERT (not an UPDATE after it)
        pending_until=now + flow.approval.pending_timeout if asks_approvers(request.choice) else None,
        created_at=now,
        updated_at=now,
        slack_view_id=request.view_id,
        break_glass=False,
        grants=[],  # a new request has none yet: known empty, never loaded from the database
        votes=[],
    )
    session.add(row)
    session.flush()  # the view id's unique constraint speaks here, before anything else is written
    events.record(session, now, "submitted", request.requester.key, row, details={
        "flow": flow.name, "resources": row.resource_keys, "permission": row.permission,
        "grantees": row.grantee_ids, "duration_seconds": row.duration_seconds,
    })
    return row


def route(session: Session, events: Events, row: AccessRequest, requester: Identity, grantees: Sequence[Identity],
          choice: FlowChoice, approvers: Sequence[Identity], now: datetime) -> RequestRecord:
    """Grant at once (automatic, break-glass) or ask the approvers; tell the grantees and the requester."""
    flow = choice.flow
    at_once = not asks_approvers(choice)
    for grantee in grantees:
        asked_at_once = at_once and confirmations.needs_confirmation(choice.require_mfa, grantee, requester)
        if not grantee.same_person(requester) and not asked_at_once:  # the confirmation DM tells them all
            events.notify(session, now, "grantee_notice", grantee.key, row)
    if at_once:
        events.record(session, now, "approved", "accessbot", row,
                      details={"break_glass": True} if flow.settings.break_glass else {"automatic": True})
        grant_intents.write(session, events, row, requester, grantees, choice, now)
        if flow.settings.break_glass:
            break_glass.open_review(session, events, row, flow, approvers, now)
    else:
        # a new request has no timers yet: written without looking for them; its pending_until came with it
        due_work.schedule_new(key=JobKey(JobKind.TIMEOUT, row.id), due_at=now + flow.approval.pending_timeout,
                              session=session)
        if flow.approval.escalation is not None:
            due_work.schedule_new(key=JobKey(JobKind.ESCALATE, row.id),
                                  due_at=now + flow.approval.escalation.every, session=session)
        asking.ask(session, events, row, flow, approvers, now)
        events.notify(session, now, "request_submitted", row.requester_id, row,
                      payload={"approvers": [a.key for a in approvers], "channel": asking.in_channel(flow)})
    session.flush()
    return RequestRecord.of(row)
