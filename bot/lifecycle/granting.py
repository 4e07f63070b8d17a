"""Granting through connectors (SPEC §5 Grant): the due work ``grant:<request>``.

A grant is written as an intent (``granting``, with its expiry) by the approval's transaction
(:mod:`bot.lifecycle.intents`) before its connector is called; a crash anywhere leaves a row that the due work
finishes: connectors are idempotent.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from bot.lifecycle.connector_work import ConnectorWork, grant_spec
from integrations.base import ConnectorError
from policy.states import GrantState, RequestState
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.due_work import JobKey, JobKind, RemindPayload
from store.models import Grant

MAX_GRANT_ATTEMPTS = 5


class Granting(ConnectorWork):
    def execute_grants(self, request_id: int) -> bool:  # due work ``grant``
        """Call the connector for every ``granting`` grant of the request; True when none is left to retry."""
        with self.db.begin() as session:
            row = request_store.get_request(request_id, session=session)
            if row is None:
                return True
            pending = [(g.id, grant_spec(g)) for g in row.grants if g.state == GrantState.GRANTING]
            duration = row.duration_seconds
        all_done = True
        for grant_id, spec in pending:
            try:
                result = self.connector(spec.integration).grant(spec)
            except ConnectorError as exc:
                all_done &= self._grant_failed(grant_id, str(exc), retryable=exc.retryable)
                continue
            now = self.clock.now()
            with self.db.begin() as session:
                grant = grant_store.get_grant(grant_id, for_update=True, session=session)
                if grant is None or grant.state != GrantState.GRANTING:
                    continue
                grant.state = GrantState.ACTIVE
                grant.granted_at = now
                grant.attempts += 1
                grant.external_ref = result.external_ref
                grant.expires_at = None if duration is None else now + timedelta(seconds=duration)
                request = request_store.get_request(request_id, for_update=True, session=session)
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
        return all_done

    def _grant_failed(self, grant_id: int, error: str, *, retryable: bool) -> bool:
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state != GrantState.GRANTING:
                return True
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


def schedule_expiry(session: Session, grant: Grant, reminder_before: timedelta) -> None:
    """Arm the grant's ``expire`` timer and the reminder before it (an extension moves both)."""
    if grant.expires_at is None:
        return
    due_work.schedule(key=JobKey(JobKind.EXPIRE, grant.id), due_at=grant.expires_at, session=session)
    remind_at = max(grant.expires_at - reminder_before, grant.granted_at or grant.expires_at)
    if remind_at < grant.expires_at:
        due_work.schedule(key=JobKey(JobKind.REMIND, grant.id), due_at=remind_at,
                          payload=RemindPayload(expires_at=grant.expires_at), session=session)
