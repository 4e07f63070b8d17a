"""Granting through connectors (SPEC §5 Grant): the due work ``grant:<request>``.

A grant is written as an intent (``granting``, with its expiry) by the approval's transaction
(:mod:`bot.lifecycle.intents`) before its connector is called; a crash anywhere leaves a row that the due work
finishes: connectors are idempotent, and every call carries its idempotency key and is recorded in the call
ledger (:mod:`store.connector_calls`) — "started" before the call, "done" with the ``active`` state — so a call
is repeated only when it cannot be proven finished, and then with the same key.

**The expiry is fixed once, at approval.** ``expires_at`` is written with the intent (approval time + the
duration) and never moves except by an explicit extension: a grant that is retried, or resumed after a crash,
is granted until that same time (the connector is told it), so a crash never lengthens access. A grant whose
expiry has passed before its connector call is never granted: it is closed (``expired``, "expired before it
was granted") and the requester told; if a call to grant it had started (its outcome unknown), it is revoked
instead, so whatever the target did is undone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.lifecycle.connector_work import ConnectorWork, grant_spec
from integrations.base import ConnectorError, GrantResult, GrantSpec, idempotency_key
from policy.states import UNFINISHED, GrantState, RequestState
from store import connector_calls as call_ledger
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.connector_calls import CallKey
from store.due_work import JobKey, JobKind, RemindPayload
from store.models import AccessRequest, Grant

MAX_GRANT_ATTEMPTS = 5
TOO_LATE = "expired before it was granted"


class Granting(ConnectorWork):
    def execute_grants(self, request_id: int) -> bool:  # due work ``grant``
        """Call the connector for every ``granting`` grant of the request; True when none is left to retry."""
        now = self.clock.now()
        with self.db.begin() as session:
            row = request_store.get_request(request_id, votes=False, session=session)
            if row is None:
                return True
            pending = [g for g in row.grants if g.state == GrantState.GRANTING]
            late = [g for g in pending if g.expires_at is not None and g.expires_at <= now]
            if late:
                close_too_late(self, session, row, late, now)
            live = [g for g in pending if g not in late]
            done = call_ledger.start_calls(
                calls=[CallKey(g.id, "grant", idempotency_key("grant", g.id)) for g in live], now=now,
                session=session)
            # a call already done committed its grant ``active``: one still ``granting`` has no proven call
            plans = [(g.id, grant_spec(g)) for g in live if not done[idempotency_key("grant", g.id)]]
        results = self.calls.run_all([
            (f"grant of grant {spec.grant_id} at {spec.integration}", self._granter(spec)) for _, spec in plans
        ])
        all_done = True
        for (grant_id, _), result in zip(plans, results, strict=True):
            if isinstance(result, ConnectorError):
                all_done &= self._grant_failed(grant_id, str(result), retryable=result.retryable)
            elif isinstance(result, BaseException):
                all_done &= self._grant_failed(grant_id, f"{type(result).__name__}: {result}", retryable=True)
            else:
                assert isinstance(result, GrantResult)
                self._granted(request_id, grant_id, result)
        return all_done

    def _granter(self, spec: GrantSpec) -> Callable[[], GrantResult]:
        connector = self.connector(spec.integration)
        return lambda: connector.grant(spec)

    def _granted(self, request_id: int, grant_id: int, result: GrantResult) -> None:
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state != GrantState.GRANTING:
                return
            call_ledger.finish_calls(keys=[idempotency_key("grant", grant_id)], now=now, session=session)
            grant.state = GrantState.ACTIVE
            grant.granted_at = now
            grant.attempts += 1
            grant.external_ref = result.external_ref
            request = request_store.get_request(request_id, for_update=True, votes=False, session=session)
            assert request is not None
            if request.state == RequestState.GRANTING:
                request.state = RequestState.ACTIVE
                request.updated_at = now
            self.events.record(session, now, "granted", "accessbot", request, grant=grant, details={
                "resource": grant.resource_key, "permission": grant.permission,
                "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
            })
            secret = self.secrets.encrypt(json.dumps(dict(result.credentials))) if result.credentials else None
            self.events.notify(session, now, "access_granted", grant.grantee_id, request, grant=grant,
                               payload={"note": result.note}, secret=secret)
            if grant.grantee_id != request.requester_id:
                self.events.notify(session, now, "access_granted_requester", request.requester_id, request,
                                   grant=grant)
            schedule_expiry(session, grant, self.policy.current.config.reminder_before)

    def _grant_failed(self, grant_id: int, error: str, *, retryable: bool) -> bool:
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state != GrantState.GRANTING:
                return True
            call_ledger.fail_call(key=idempotency_key("grant", grant_id), error=error, session=session)
            grant.attempts += 1
            grant.last_error = error[:2000]
            request = request_store.get_request(grant.request_id, for_update=True, session=session)
            give_up = not retryable or grant.attempts >= MAX_GRANT_ATTEMPTS
            self.events.record(session, now, "grant_failed" if give_up else "grant_attempt_failed", "accessbot",
                               request, grant=grant, details={"error": error[:500], "attempt": grant.attempts})
            if not give_up:
                return False
            grant.state = GrantState.FAILED
            grant.ended_at = now
            grant.end_reason = "grant failed"
            assert request is not None
            if all(g.state == GrantState.FAILED for g in request.grants):
                request.state = RequestState.FAILED
                request.updated_at = now
            self.events.notify(session, now, "grant_failed", request.requester_id, request, grant=grant,
                               payload={"error": error[:300]})
            return True


def close_too_late(work: ConnectorWork, session: Session, request: AccessRequest, grants: Sequence[Grant],
                   now: datetime, *, schedule_revoke: bool = True) -> list[Grant]:
    """Grants still ``granting`` at their expiry are never granted: closed ``expired`` and the requester told,
    or — when a call to grant one had started and its outcome is unknown — revoked (returned, ``revoking``,
    with a ``revoke`` timer due now unless the caller revokes them itself: ``schedule_revoke=False``)."""
    started = call_ledger.started_calls(grant_ids=[g.id for g in grants], action="grant", session=session)
    to_revoke = []
    for grant in grants:
        if grant.id in started:  # the target may have granted it: take it back
            grant.state, grant.end_reason, grant.attempts = GrantState.REVOKING, "expired", 0
            work.events.record(session, now, "revoke_started", "accessbot", request, grant=grant,
                               details={"reason": "expired", "before_granted": True})
            if schedule_revoke:
                due_work.schedule(key=JobKey(JobKind.REVOKE, grant.id), due_at=now, session=session)
            to_revoke.append(grant)
            continue
        grant.state, grant.ended_at, grant.end_reason = GrantState.EXPIRED, now, TOO_LATE
        work.events.record(session, now, "expired_before_granted", "accessbot", request, grant=grant,
                           details={"expires_at": grant.expires_at.isoformat() if grant.expires_at else None})
        work.events.notify(session, now, "grant_failed", request.requester_id, request, grant=grant,
                           payload={"error": f"the access {TOO_LATE} (it was to end at "
                                             f"{grant.expires_at:%Y-%m-%d %H:%M} UTC); nothing was granted"})
    due_work.cancel(now=now, grant_ids=[g.id for g in grants], kinds=(JobKind.EXPIRE, JobKind.REMIND),
                    session=session)
    if not any(g.state in UNFINISHED for g in request.grants):
        request.state, request.updated_at = RequestState.EXPIRED, now
    return to_revoke


def schedule_expiry(session: Session, grant: Grant, reminder_before: timedelta) -> None:
    """Arm the grant's ``expire`` timer and the reminder before it (an extension moves both)."""
    if grant.expires_at is None:
        return
    due_work.schedule(key=JobKey(JobKind.EXPIRE, grant.id), due_at=grant.expires_at, session=session)
    remind_at = max(grant.expires_at - reminder_before, grant.granted_at or grant.expires_at)
    if remind_at < grant.expires_at:
        due_work.schedule(key=JobKey(JobKind.REMIND, grant.id), due_at=remind_at,
                          payload=RemindPayload(expires_at=grant.expires_at), session=session)
