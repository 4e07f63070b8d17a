"""The request lifecycle service (SPEC §5): every entry point — Slack, scheduler, CLI — calls these functions.

Each transition is validated, then written with its audit event, its timers and its notifications in one
transaction. Repeating a transition is harmless: a second approve, cancel or revoke changes nothing.
Connector calls (grant, extend, revoke) live in :mod:`bot.lifecycle.granting`, :mod:`~bot.lifecycle.extending`
and :mod:`~bot.lifecycle.revoking`; they run as due work so a crash loses nothing.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.lifecycle import confirmations
from bot.lifecycle import intents as grant_intents
from bot.lifecycle.approvers import approver_groups, approvers_or_refuse, eligible_approvers
from bot.lifecycle.connector_work import RunNow, run_later
from bot.lifecycle.directory import IdentityProvider
from bot.lifecycle.events import Events
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.records import HomeData, RequestRecord, flow_of
from policy.approvals import TIER_BASE, Vote, approval_state
from policy.durations import parse_requested_hours
from policy.errors import AlreadyDecided, InvalidRequest, InvalidState, NotEligible, NotFound
from policy.flows import FlowChoice
from policy.identity import Identity
from policy.resources import RISK_ORDER
from policy.states import UNFINISHED, RequestState
from store import due_work, slack_events
from store import requests as request_store
from store.db import Database
from store.due_work import JobKey, JobKind
from store.models import AccessRequest, ApprovalVote

log = logging.getLogger(__name__)

MAX_JUSTIFICATION = 1000
MAX_REASON = 124


@dataclass(frozen=True, slots=True)
class RequestInput:
    requester: Identity
    resource_keys: Sequence[str]
    permission: str
    grantees: Sequence[Identity] = ()
    duration_hours: str | float | None = None
    justification: str | None = None
    mfa_verified: bool = False  # the caller checked the requester's TOTP code (bot.security.mfa) before submitting


@dataclass(frozen=True, slots=True)
class Outcome:
    request: RequestRecord
    changed: bool = True
    message: str = ""
    approvers: tuple[str, ...] = field(default=())


class AccessService:
    def __init__(
        self,
        db: Database,
        policy: PolicyHolder,
        directory: IdentityProvider,
        clock: Clock,
        *,
        events: Events | None = None,
        run_now: RunNow = run_later,
    ) -> None:
        self.db = db
        self.policy = policy
        self.directory = directory
        self.clock = clock
        self.events = events or Events()
        self.run_now = run_now  # grant work an approval writes runs at once (the worker's run_now)

    # --- reading --------------------------------------------------------------------------------------------

    def get(self, request_id: int) -> RequestRecord:
        with self.db.begin() as session:
            row = request_store.get_request(request_id, session=session)
            if row is None:
                raise NotFound(f"There is no request #{request_id}.")
            return RequestRecord.of(row)

    def list(
        self, *, states: Sequence[str] | None = None, user_id: str | None = None, limit: int = 50
    ) -> list[RequestRecord]:
        with self.db.begin() as session:
            rows = request_store.list_requests(states=states, user_id=user_id, limit=limit, session=session)
            return [RequestRecord.of(r) for r in rows]

    def first_delivery(self, event_id: str) -> bool:
        """True the first time Slack delivers an event id; False for a retry of one already handled."""
        if not event_id:
            return True
        try:
            with self.db.begin() as session:
                return slack_events.mark_event_processed(event_id=event_id, now=self.clock.now(), session=session)
        except IntegrityError:  # a concurrent delivery of the same event won
            return False

    # --- submit ---------------------------------------------------------------------------------------------

    def preview(self, request: RequestInput) -> FlowChoice:
        """Decide which flow applies and validate the input, without writing anything."""
        now = self.clock.now()
        choice = self.policy.current.choose_flow(
            request.requester, now, request.resource_keys, request.permission, request.grantees
        )
        self._duration(choice, request.duration_hours)
        self._justification(choice, request.justification)
        return choice

    def submit(self, request: RequestInput) -> Outcome:
        now = self.clock.now()
        choice = self.preview(request)
        flow = choice.flow
        duration = self._duration(choice, request.duration_hours)
        justification = self._justification(choice, request.justification)
        if choice.require_mfa and not request.mfa_verified:
            raise InvalidRequest("This access needs your MFA code.", field="mfa_code")
        grantees = list(request.grantees) or [request.requester]
        approvers: list[Identity] = []
        if not choice.automatic_approval:
            approvers = approvers_or_refuse(self.directory, flow, request.requester, grantees, choice, now, tiers=0)
        risk = max((r.risk for r in choice.resources), key=RISK_ORDER.__getitem__, default="medium")
        if RISK_ORDER[choice.permission.risk] > RISK_ORDER[risk]:
            risk = choice.permission.risk
        with self.db.begin() as session:
            row = AccessRequest(
                state="pending",
                flow_name=flow.name,
                flow_snapshot={"flow": flow.model_dump(mode="json", by_alias=True), "risk": risk},
                requester_id=request.requester.key,
                requester_email=request.requester.email,
                grantee_ids=[g.key for g in grantees],
                integration=choice.permission.integration,
                permission=choice.permission.name,
                resource_keys=[r.key for r in choice.resources],
                duration_seconds=None if duration is None else int(duration.total_seconds()),
                justification=justification,
                escalation_tier=0,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            actor = request.requester.key
            self.events.record(session, now, "submitted", actor, row, details={
                "flow": flow.name, "resources": row.resource_keys, "permission": row.permission,
                "grantees": row.grantee_ids, "duration_seconds": row.duration_seconds,
            })
            for grantee in grantees:
                asked_at_once = choice.automatic_approval and confirmations.needs_confirmation(
                    choice.require_mfa, grantee, request.requester)  # the confirmation DM tells them all
                if not grantee.same_person(request.requester) and not asked_at_once:
                    self.events.notify(session, now, "grantee_notice", grantee.key, row)
            if choice.automatic_approval:
                self.events.record(session, now, "approved", "accessbot", row, details={"automatic": True})
                grant_intents.write(session, self.events, row, request.requester, grantees, choice, now)
            else:
                row.pending_until = now + flow.approval.pending_timeout
                due_work.schedule(key=JobKey(JobKind.TIMEOUT, row.id), due_at=row.pending_until, session=session)
                if flow.approval.escalation is not None:
                    due_work.schedule(key=JobKey(JobKind.ESCALATE, row.id),
                                      due_at=now + flow.approval.escalation.every, session=session)
                for approver in approvers:
                    self.events.notify(session, now, "approval_request", approver.key, row)
                self.events.notify(session, now, "request_submitted", row.requester_id, row,
                                   payload={"approvers": [a.key for a in approvers]})
            session.flush()
            record = RequestRecord.of(row)
        if choice.automatic_approval:
            self.run_now(JobKey(JobKind.GRANT, record.id))
            record = self.get(record.id)
        return Outcome(record, approvers=tuple(a.key for a in approvers))

    def _duration(self, choice: FlowChoice, raw: str | float | None) -> timedelta | None:
        blank = raw is None or (isinstance(raw, str) and not raw.strip())
        if choice.require_duration or not blank:
            return parse_requested_hours(raw, choice.max_duration)
        return choice.max_duration

    def _justification(self, choice: FlowChoice, text: str | None) -> str:
        text = (text or "").strip()
        if choice.require_justification and not text:
            raise InvalidRequest("Say why you need this access.", field="justification")
        if len(text) > MAX_JUSTIFICATION:
            raise InvalidRequest(f"Keep the justification under {MAX_JUSTIFICATION} characters.",
                                 field="justification")
        return text

    def home(self, user_id: str) -> HomeData:
        """What a user's App Home shows: their live and pending requests, what waits for their approval (judged
        by each request's flow snapshot), and recent history."""
        now = self.clock.now()
        mine = self.list(user_id=user_id, limit=50)
        # held, being granted, waiting for a grantee's MFA, being revoked or failing to revoke: all still need eyes
        active = [
            r for r in mine
            if any(g.state in UNFINISHED and user_id in (g.grantee_id, r.requester_id) for g in r.grants)
        ]
        pending = [r for r in mine if r.state == RequestState.PENDING and r.requester_id == user_id]
        history = [r for r in mine if r.state != RequestState.PENDING and r not in active][:10]
        me = self.directory.identity(user_id, now)
        to_approve = []
        for record in self.list(states=[RequestState.PENDING], limit=50):
            flow = record.flow()
            if flow is None or record.requester_id == user_id:
                continue
            requester = self.directory.identity(record.requester_id, now)
            grantees = [self.directory.identity(g, now) for g in record.grantee_ids]
            if approver_groups(flow, me, requester, grantees, {record.integration}, tiers=record.escalation_tier):
                to_approve.append(record)
        return HomeData(user_id, active, pending, to_approve, history)

    # --- decisions ------------------------------------------------------------------------------------------

    def approve(self, request_id: int, approver: Identity, reason: str | None = None) -> Outcome:
        return self._decide(request_id, approver, "approve", reason)

    def deny(self, request_id: int, approver: Identity, reason: str | None = None) -> Outcome:
        return self._decide(request_id, approver, "deny", reason)

    def _decide(self, request_id: int, approver: Identity, decision: str, reason: str | None) -> Outcome:
        """Record a vote, re-authorized now, inside the transaction that writes it (one vote per approver)."""
        now = self.clock.now()
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidRequest(f"Keep the reason to {MAX_REASON} characters.", field="reason")
        requester, grantees = self._parties(request_id, now)
        try:
            with self.db.begin() as session:
                row = self._locked(session, request_id)
                flow = flow_of(row)
                already = next((v for v in row.votes if v.approver_id == approver.key), None)
                if row.state != "pending":
                    if already is not None:
                        return Outcome(RequestRecord.of(row), changed=False, message="You already decided.")
                    raise AlreadyDecided(_decided_text(row))
                groups = approver_groups(flow, approver, requester, grantees, {row.integration},
                                         tiers=row.escalation_tier)
                if not groups:
                    if flow.settings.no_self_approval and (
                        approver.same_person(requester) or any(approver.same_person(g) for g in grantees)
                    ):
                        raise NotEligible(
                            "You cannot approve or deny a request you made or that grants you access.")
                    raise NotEligible(f"You are not an approver of request #{row.id} (flow {flow.name}).")
                if already is not None:
                    return Outcome(RequestRecord.of(row), changed=False, message="You already decided.")
                if flow.settings.require_approver_reason and not reason:
                    raise InvalidRequest("A reason is required for this decision.", field="reason")
                row.votes.append(ApprovalVote(
                    request_id=row.id, approver_id=approver.key, approver_email=approver.email,
                    decision=decision, groups=sorted(groups), reason=reason, created_at=now,
                ))
                session.flush()
                votes = [Vote(v.approver_id, v.decision, frozenset(v.groups)) for v in row.votes]  # type: ignore[arg-type]
                state = approval_state(flow.approval, votes)
                self.events.record(session, now, "vote", approver.key, row, details={
                    "decision": decision, "groups": sorted(groups), "reason": reason,
                })
                if state.status == "pending":
                    row.updated_at = now
                    waiting = ", ".join(
                        f"group {g + 1}" if g < TIER_BASE else "an escalation approver"
                        for g in state.waiting_for
                    )
                    self.events.notify(session, now, "approval_update", None, row)
                    self.events.notify(session, now, "approval_progress", row.requester_id, row,
                                       payload={"approver": approver.key, "waiting_for": waiting})
                    message = f"Your approval is recorded; waiting for {waiting}."
                    return Outcome(RequestRecord.of(row), message=message)
                row.decided_at = now
                row.decided_by = approver.key
                row.decision_reason = reason
                due_work.cancel(now=now, request_id=row.id, kinds=(JobKind.TIMEOUT, JobKind.ESCALATE), session=session)
                if state.status == "denied":
                    self._finish(session, row, "denied", now, actor=approver.key, reason=reason)
                    record = RequestRecord.of(row)
                else:
                    self.events.record(session, now, "approved", approver.key, row,
                                       details={"reason": reason})
                    choice = grant_intents.choice_of(self.policy.current, row, flow)
                    grant_intents.write(session, self.events, row, requester, grantees, choice, now)
                    self.events.notify(session, now, "approval_update", None, row)
                    record = RequestRecord.of(row)
        except IntegrityError:  # a concurrent click of the same approver won the unique vote
            return Outcome(self.get(request_id), changed=False, message="You already decided.")
        if record.state == RequestState.GRANTING:
            self.run_now(JobKey(JobKind.GRANT, record.id))
            record = self.get(record.id)
        return Outcome(record, message=f"Request #{record.id} is {record.state}.")

    def cancel(self, request_id: int, actor: Identity) -> Outcome:
        now = self.clock.now()
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            if row.requester_id != actor.key and not self.policy.current.is_admin(actor):
                raise NotEligible("Only the requester (or an admin) can cancel a request.")
            if row.state == "canceled":
                return Outcome(RequestRecord.of(row), changed=False, message="Already canceled.")
            if row.state != "pending":
                raise InvalidState(
                    f"Request #{row.id} is {row.state}; only pending requests can be canceled.")
            due_work.cancel(now=now, request_id=row.id, kinds=(JobKind.TIMEOUT, JobKind.ESCALATE), session=session)
            self._finish(session, row, "canceled", now, actor=actor.key)
            return Outcome(RequestRecord.of(row), message=f"Request #{row.id} is canceled.")

    def time_out(self, request_id: int) -> Outcome:
        """Due work ``timeout``: a pending request times out; past approval, unconfirmed grants end."""
        now = self.clock.now()
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            waiting = row.state == "pending" or bool(confirmations.awaiting(row))
            if waiting and row.pending_until is not None and row.pending_until > now:
                # claimed before its time (another replica's clock): keep the deadline, never drop it
                due_work.schedule(key=JobKey(JobKind.TIMEOUT, row.id), due_at=row.pending_until, session=session)
                return Outcome(RequestRecord.of(row), changed=False)
            if row.state != "pending":
                late = confirmations.end_unconfirmed(session, self.events, row, now)
                return Outcome(RequestRecord.of(row), changed=bool(late))
            if row.pending_until is None:
                return Outcome(RequestRecord.of(row), changed=False)
            due_work.cancel(now=now, request_id=row.id, kinds=(JobKind.ESCALATE,), session=session)
            self._finish(session, row, "timed_out", now, actor="accessbot")
            return Outcome(RequestRecord.of(row))

    def escalate(self, request_id: int) -> Outcome:
        """Reach the next tier: its members become eligible and are DMed; the next escalation is scheduled."""
        now = self.clock.now()
        requester, grantees = self._parties(request_id, now)
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            flow = flow_of(row)
            escalation = flow.approval.escalation
            if row.state != "pending" or escalation is None or row.escalation_tier >= len(escalation.tiers):
                return Outcome(RequestRecord.of(row), changed=False)
            row.escalation_tier += 1
            row.updated_at = now
            tier = row.escalation_tier
            new = [
                identity for identity, groups in eligible_approvers(
                    self.directory, flow, requester, grantees, {row.integration}, now, tiers=tier)
                if TIER_BASE + tier - 1 in groups
            ]
            self.events.record(session, now, "escalated", "accessbot", row, details={
                "tier": tier, "approvers": [a.key for a in new],
            })
            for approver in new:
                self.events.notify(session, now, "approval_request", approver.key, row)
            if tier < len(escalation.tiers):
                due_work.schedule(key=JobKey(JobKind.ESCALATE, row.id), due_at=now + escalation.every,
                                  session=session)
            return Outcome(RequestRecord.of(row), approvers=tuple(a.key for a in new))

    # --- grantee MFA confirmation (bot.lifecycle.confirmations) -------------------------------------------------------

    def check_confirmation(self, request_id: int, grantee: Identity) -> RequestRecord:
        """The request, when it waits for this grantee's MFA code; raises saying why not otherwise."""
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            confirmations.check_confirmable(row, grantee, self.clock.now())
            return RequestRecord.of(row)

    def confirm_grantee(self, request_id: int, grantee: Identity, verify_code: Callable[[], bool]) -> Outcome:
        """The grantee confirms with their code; their grants go to the grant work (the caller runs it).

        The code is checked only once the request is known to wait for this grantee, so a code is never spent
        on a confirmation that could not count; a concurrent second confirmation changes nothing.
        """
        self.check_confirmation(request_id, grantee)
        if not verify_code():
            raise InvalidRequest("That code is not valid (or was already used).", field="mfa_code")
        now = self.clock.now()
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            if confirmations.end_unconfirmed(session, self.events, row, now):
                return Outcome(RequestRecord.of(row), changed=False,
                               message=f"The time to confirm request #{row.id} has passed.")
            released = confirmations.confirm(session, self.events, row, grantee, now)
            message = f"Confirmed: granting request #{row.id}." if released else "Already confirmed."
            outcome = Outcome(RequestRecord.of(row), changed=bool(released), message=message)
        if released:  # if this fails, the scheduler's grant work runs it
            self.run_now(JobKey(JobKind.GRANT, request_id))
        return outcome

    # --- helpers --------------------------------------------------------------------------------------------

    def _locked(self, session: Session, request_id: int) -> AccessRequest:
        row = request_store.get_request(request_id, for_update=True, session=session)
        if row is None:
            raise NotFound(f"There is no request #{request_id}.")
        return row

    def _parties(self, request_id: int, now: datetime) -> tuple[Identity, builtins.list[Identity]]:
        record = self.get(request_id)
        requester = self.directory.identity(record.requester_id, now)
        return requester, [self.directory.identity(g, now) for g in record.grantee_ids]

    def _finish(self, session: Session, row: AccessRequest, state: str, now: datetime, *, actor: str,
                reason: str | None = None) -> None:
        row.state = state
        row.updated_at = now
        row.decided_at = row.decided_at or now
        self.events.record(session, now, state, actor, row, details={"reason": reason} if reason else {})
        self.events.notify(session, now, "approval_update", None, row)
        for user in dict.fromkeys([row.requester_id, *row.grantee_ids]):
            self.events.notify(session, now, "request_closed", user, row, payload={"state": state})


def _decided_text(row: AccessRequest) -> str:
    who = f" by <@{row.decided_by}>" if row.decided_by else ""
    return f"Request #{row.id} was already decided: it is {row.state}{who}."
