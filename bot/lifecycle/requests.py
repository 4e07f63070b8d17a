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
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.lifecycle import asking, break_glass, confirmations, submitting, viewing
from bot.lifecycle import intents as grant_intents
from bot.lifecycle.approvers import approver_groups, approvers_or_refuse, eligible_approvers
from bot.lifecycle.connector_work import RunNow, run_later
from bot.lifecycle.directory import IdentityProvider
from bot.lifecycle.events import Events
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.records import HomeData, RequestRecord, flow_of
from bot.lifecycle.request_input import duration_of, grantees_of, justification_of, reason_of
from policy.approvals import TIER_BASE, Vote, approval_state
from policy.errors import AlreadyDecided, InvalidRequest, InvalidState, NotEligible, NotFound
from policy.flows import FlowChoice
from policy.identity import Identity
from policy.picker import configured_risk
from policy.states import RequestState
from store import due_work, slack_events
from store import requests as request_store
from store.db import Database
from store.due_work import JobKey, JobKind
from store.models import AccessRequest, ApprovalVote

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestInput:
    requester: Identity
    resource_keys: Sequence[str]
    permission: str
    grantees: Sequence[Identity] = ()
    duration_hours: str | float | None = None
    justification: str | None = None
    mfa_verified: bool = False  # the caller checked the requester's TOTP code (bot.security.mfa) before submitting
    view_id: str | None = None  # the Slack modal it was submitted from: one request per view


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
        with self.db.read() as session:
            row = request_store.get_request(request_id, session=session)
            if row is None:
                raise NotFound(f"There is no request #{request_id}.")
            return RequestRecord.of(row)

    def list(
        self, *, states: Sequence[str] | None = None, user_id: str | None = None, limit: int = 50
    ) -> list[RequestRecord]:
        with self.db.read() as session:
            rows = request_store.list_requests(states=states, user_id=user_id, limit=limit, session=session)
            return [RequestRecord.of(r) for r in rows]

    def submitted_from(self, view_id: str) -> RequestRecord | None:
        """The request made from this Slack view, if one was (a replayed submission makes no second one)."""
        with self.db.read() as session:
            row = request_store.get_request_by_view(view_id, session=session)
            return RequestRecord.of(row) if row is not None else None

    def first_delivery(self, event_id: str) -> bool:
        """True the first time Slack delivers an event id; False for a retry of one already handled."""
        if not event_id:
            return True
        with self.db.begin() as session:  # a concurrent delivery of the same event: whichever commits first wins
            return slack_events.mark_event_processed(event_id=event_id, now=self.clock.now(), session=session)

    # --- submit ---------------------------------------------------------------------------------------------

    def preview(self, request: RequestInput) -> FlowChoice:
        """Decide which flow applies and validate the input, without writing anything."""
        now = self.clock.now()
        grantees = grantees_of(request.requester, request.grantees)
        choice = self.policy.current.choose_flow(
            request.requester, now, request.resource_keys, request.permission, grantees if request.grantees else (),
        )
        duration_of(choice, request.duration_hours)
        justification_of(choice, request.justification)
        return choice

    def submit(self, request: RequestInput) -> Outcome:
        """Write the request; approved at once (automatic, break-glass) or asked of its approvers."""
        now = self.clock.now()
        choice = self.preview(request)
        flow = choice.flow
        duration = duration_of(choice, request.duration_hours)
        justification = justification_of(choice, request.justification)
        if choice.require_mfa and not request.mfa_verified:
            raise InvalidRequest("This access needs your MFA code.", field="mfa_code")
        grantees = grantees_of(request.requester, request.grantees)
        at_once = not submitting.asks_approvers(choice)
        approvers: list[Identity] = []
        if flow.settings.break_glass and not choice.automatic_approval:  # reviewers: nobody is refused access
            approvers = [i for i, _ in eligible_approvers(self.directory, flow, request.requester, grantees,
                                                          {choice.permission.integration}, now, tiers=0)]
        elif not at_once:
            approvers = approvers_or_refuse(self.directory, flow, request.requester, grantees, choice, now, tiers=0)
        risk = configured_risk(self.policy.current.config, choice.resources, choice.permission)
        try:
            with self.db.begin() as session:
                row = submitting.write(session, self.events, submitting.Written(
                    request.requester, grantees, choice, duration, justification, risk, request.view_id), now)
                record = submitting.route(session, self.events, row, request.requester, grantees, choice,
                                          approvers, now)
        except IntegrityError:
            if request.view_id is None:
                raise
            existing = self.submitted_from(request.view_id)  # a concurrent delivery of the same view won
            if existing is None:
                raise
            return Outcome(existing, changed=False, message=f"Request #{existing.id} was already submitted.")
        if at_once and self.run_now(JobKey(JobKind.GRANT, record.id)):
            record = self.get(record.id)  # granted (or failed) here: say so
        return Outcome(record, approvers=tuple(a.key for a in approvers))

    def home(self, user_id: str) -> HomeData:
        """What a user's App Home shows (:func:`bot.lifecycle.viewing.home_data`)."""
        return viewing.home_data(self.list, self.directory, user_id, self.clock.now())

    def visible(self, request_id: int, viewer: Identity) -> RequestRecord:
        """The request, for someone allowed to see its details (parties, approvers, admins)."""
        record = self.get(request_id)
        flow = record.flow()
        admin = self.policy.current.is_admin(viewer, space=flow.space if flow else None)
        if not viewing.may_view(self.directory, record, viewer, self.clock.now(), admin=admin):
            raise NotEligible(f"Request #{request_id} is not yours to see.")
        return record

    # --- decisions ------------------------------------------------------------------------------------------

    def approve(self, request_id: int, approver: Identity, reason: str | None = None, *,
                read: RequestRecord | None = None) -> Outcome:
        """``read``: the request as the caller has just read it (saves reading it again for its parties)."""
        return self._decide(request_id, approver, "approve", reason, read)

    def deny(self, request_id: int, approver: Identity, reason: str | None = None, *,
             read: RequestRecord | None = None) -> Outcome:
        return self._decide(request_id, approver, "deny", reason, read)

    def _decide(self, request_id: int, approver: Identity, decision: str, reason: str | None,
                read: RequestRecord | None) -> Outcome:
        """Record a vote, re-authorized now, inside the transaction that writes it (one vote per approver)."""
        now = self.clock.now()
        reason = reason_of(reason)
        requester, grantees = self._parties(request_id, now, read)
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
                    self.events.notify(session, now, "request_approved", row.requester_id, row)
                    record = RequestRecord.of(row)
        except IntegrityError:  # a concurrent click of the same approver won the unique vote
            return Outcome(self.get(request_id), changed=False, message="You already decided.")
        if record.state == RequestState.GRANTING and self.run_now(JobKey(JobKind.GRANT, record.id)):
            record = self.get(record.id)  # granted (or failed) here: say so
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
        """Reach the next tier: its members become eligible and are asked; the next escalation is scheduled.

        A pending request escalates, and so does a break-glass request nobody has reviewed yet.
        """
        now = self.clock.now()
        requester, grantees = self._parties(request_id, now)
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            flow = flow_of(row)
            escalation = flow.approval.escalation
            waiting = row.state == "pending" or (row.break_glass and row.reviewed_at is None)
            if not waiting or escalation is None or row.escalation_tier >= len(escalation.tiers):
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
            asking.ask(session, self.events, row, flow, new, now, channel_too=False)  # the thread tells the channel
            if row.state == "pending":
                self.events.notify(session, now, "request_escalated", row.requester_id, row,
                                   payload={"tier": tier, "approvers": [a.key for a in new]})
            if tier < len(escalation.tiers):
                due_work.schedule(key=JobKey(JobKind.ESCALATE, row.id), due_at=now + escalation.every,
                                  session=session)
            return Outcome(RequestRecord.of(row), approvers=tuple(a.key for a in new))

    def review(self, request_id: int, reviewer: Identity, outcome: str) -> Outcome:
        """A break-glass review: ``acknowledged`` or ``revoked`` (the caller then revokes), by an approver of the
        flow (checked now, escalation tiers reached included) or an admin."""
        if outcome not in break_glass.OUTCOMES:
            raise InvalidRequest(f"A review is one of {', '.join(break_glass.OUTCOMES)}.")
        now = self.clock.now()
        requester, grantees = self._parties(request_id, now)
        with self.db.begin() as session:
            row = self._locked(session, request_id)
            flow = flow_of(row)
            groups = approver_groups(flow, reviewer, requester, grantees, {row.integration},
                                     tiers=row.escalation_tier)
            space = flow.space
            if not groups and not self.policy.current.is_admin(reviewer, space=space):
                raise NotEligible(f"You are not a reviewer of request #{row.id} (flow {flow.name}).")
            break_glass.settle(session, self.events, row, reviewer, groups, outcome, now)
            return Outcome(RequestRecord.of(row), message=f"Request #{row.id}: review {outcome}.")

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

    def _parties(self, request_id: int, now: datetime,
                 read: RequestRecord | None = None) -> tuple[Identity, builtins.list[Identity]]:
        """The requester and grantees of a request (who they are does not change: a record read earlier serves)."""
        record = read if read is not None and read.id == request_id else self.get(request_id)
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
