"""Revoking through connectors (SPEC §5 Revoke): "Revoke now", the reconciler's revokes, and the due work
``revoke:<grant>``.

A revoke is written as ``revoking`` (with a safety-net ``revoke`` timer) before the connector is called and
marked ended after; a crash in between leaves the timer, which revokes again (connectors are idempotent).
Overlapping grants of the same access keep it while any of them lives, for connectors with ``shared_access``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from bot.lifecycle.connector_work import ConnectorWork, grant_spec
from bot.lifecycle.records import RequestRecord
from integrations.base import ConnectorError, idempotency_key
from policy.errors import InvalidState, NotEligible, NotFound
from policy.identity import Identity
from policy.states import ENDING, HELD, UNFINISHED, GrantState, RequestState
from store import connector_calls as call_ledger
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.connector_calls import CallKey
from store.due_work import JobKey, JobKind
from store.models import AccessRequest, Grant

MAX_REVOKE_ATTEMPTS = 8


class Revoking(ConnectorWork):
    def revoke(
        self, request_id: int, actor: Identity, *, reason: str = "revoked", as_admin: bool = False
    ) -> RequestRecord:
        """Revoke now: the grantee, the requester or an admin (of the flow's space) may.

        ``as_admin`` is for the operator's shell (``accessbot requests revoke``), who is trusted as an admin.
        """
        now = self.clock.now()
        with self.db.begin() as session:
            request = request_store.get_request(request_id, for_update=True, session=session)
            if request is None:
                raise NotFound(f"There is no request #{request_id}.")
            space = request.flow_snapshot["flow"].get("space")
            admin = as_admin or self.policy.current.is_admin(actor, space=space)
            states = HELD | {GrantState.REVOKE_FAILED}
            everything = admin or request.requester_id == actor.key
            grants = (
                [g for g in request.grants if g.state in states]
                if everything
                else self.actor_grants(request, actor, states=states)
            )
            if not grants and not (everything or any(g.grantee_id == actor.key for g in request.grants)):
                raise NotEligible("Only the grantee, the requester or an admin can revoke this access.")
            self._drop_unconfirmed(session, request, actor, everything, now, reason)
            if not grants:
                if request.state == RequestState.PENDING:
                    raise InvalidState(f"Request #{request_id} is still pending; cancel it instead.")
                return RequestRecord.of(request)
            for grant in grants:
                self._begin_revoke(session, request, grant, now, actor=actor.key, reason=reason)
            ids = [g.id for g in grants]
        for grant_id in ids:
            self.run_now(JobKey(JobKind.REVOKE, grant_id))
        return self.record(request_id)

    def _drop_unconfirmed(self, session: Session, request: AccessRequest, actor: Identity, everything: bool,
                          now: datetime, reason: str) -> None:
        """Grants still waiting for their grantee's MFA confirmation end without a connector call."""
        for grant in request.grants:
            if grant.state == GrantState.AWAITING_MFA and (everything or grant.grantee_id == actor.key):
                grant.state, grant.ended_at, grant.end_reason = GrantState.REVOKED, now, reason
                self.events.record(session, now, "revoked", actor.key, request, grant=grant,
                                   details={"reason": reason, "unconfirmed": True})
        if request.state == RequestState.GRANTING and all(
            g.state in (GrantState.REVOKED, GrantState.FAILED) for g in request.grants
        ):
            request.state, request.updated_at = RequestState.REVOKED, now

    def revoke_grant(self, grant_id: int, *, reason: str, actor: str = "accessbot") -> bool:
        """Revoke one live grant now (the reconciler's path); False when it is no longer live.

        Audited like every revoke (``revoke_started`` with the reason, then ``revoked``); a failed connector
        call is retried by the ``revoke:<grant>`` due work.
        """
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state not in HELD:
                return False
            request = request_store.get_request(grant.request_id, for_update=True, session=session)
            assert request is not None
            self._begin_revoke(session, request, grant, now, actor=actor, reason=reason)
        self.run_now(JobKey(JobKind.REVOKE, grant_id))
        return True

    def _begin_revoke(self, session: Session, request: AccessRequest, grant: Grant, now: datetime, *,
                      actor: str, reason: str) -> None:
        grant.state = GrantState.REVOKING
        grant.end_reason = reason
        grant.attempts = 0
        due_work.cancel(now=now, grant_ids=[grant.id], kinds=(JobKind.EXPIRE, JobKind.REMIND), session=session)
        self.events.record(session, now, "revoke_started", actor, request, grant=grant, details={"reason": reason})
        due_work.schedule(key=JobKey(JobKind.REVOKE, grant.id), due_at=now, session=session)

    def execute_revoke(self, grant_id: int) -> bool:
        """Due work ``revoke``: call the connector, then mark the grant ended. False = failed, retry later.

        The call is recorded as started first (the call ledger) and done with the ended state; a call the
        ledger proves done is not made again.
        """
        now = self.clock.now()
        key = idempotency_key("revoke", grant_id)
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, session=session)
            if grant is None or grant.state not in ENDING:
                return True
            spec = grant_spec(grant)
            keep = grant_store.overlapping_grants(grant, session=session)
            shared = self.connector_shares(grant.integration)
            calling = not (shared and keep)
            proven = calling and call_ledger.start_calls(calls=[CallKey(grant_id, "revoke", key)], now=now,
                                                         session=session)[key]
        if calling and not proven:
            try:
                self.calls.call(f"revoke of grant {grant_id} at {spec.integration}",
                                lambda: self.connector(spec.integration).revoke(spec))
            except ConnectorError as exc:
                return self.revoke_failed(grant_id, str(exc))
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state not in ENDING:
                return True
            request = request_store.get_request(grant.request_id, for_update=True, votes=False, session=session)
            assert request is not None
            due_work.cancel(now=now, grant_ids=[grant.id], kinds=(JobKind.REVOKE,), session=session)  # the safety net
            call_ledger.finish_calls(keys=[key], now=now, session=session)
            self.end_grant(session, request, grant, now, keep=keep, shared=shared)
        return True

    def connector_shares(self, integration: str) -> bool:
        """Whether grants of this integration share one access at the target (``shared_access``)."""
        connector = self.connectors.get(integration)
        return bool(connector is not None and connector.shared_access)

    def end_grant(self, session: Session, request: AccessRequest, grant: Grant, now: datetime, *,
                  keep: list[Grant], shared: bool) -> None:
        """The connector revoked it: mark the grant (and the request, when it was the last) ended; tell people."""
        expired = grant.end_reason == "expired"
        grant.state = GrantState.EXPIRED if expired else GrantState.REVOKED
        grant.ended_at = now
        details: dict[str, object] = {"reason": grant.end_reason}
        if shared and keep:
            details["access_kept_by_grants"] = [g.id for g in keep]
        self.events.record(session, now, grant.state, "accessbot", request, grant=grant, details=details)
        for user in dict.fromkeys([grant.grantee_id, request.requester_id]):
            self.events.notify(session, now, "access_ended", user, request, grant=grant,
                               payload={"state": grant.state})
        close_if_ended(request, now)

    def revoke_failed(self, grant_id: int, error: str) -> bool:
        """A revoke call failed: audited, the admins alerted on the first failure; False (retry later)."""
        self.revoke_failed_many({grant_id: error})
        return False

    def revoke_failed_many(self, errors: Mapping[int, str]) -> dict[int, tuple[int, bool]]:
        """:meth:`revoke_failed` for many grants in one transaction; returns grant id -> (attempts, gave up)."""
        now = self.clock.now()
        outcome: dict[int, tuple[int, bool]] = {}
        with self.db.begin() as session:
            grants = grant_store.get_grants(list(errors), for_update=True, session=session)
            requests = {r.id: r for r in request_store.get_requests(sorted({g.request_id for g in grants}),
                                                                    session=session)}
            for grant in grants:
                error = errors[grant.id]
                request = requests.get(grant.request_id)
                grant.attempts += 1
                grant.last_error = error[:2000]
                self.events.record(session, now, "revoke_attempt_failed", "accessbot", request, grant=grant,
                                   details={"error": error[:500], "attempt": grant.attempts})
                call_ledger.fail_call(key=idempotency_key("revoke", grant.id), error=error, session=session)
                if grant.attempts == 1:
                    self.events.notify(session, now, "revoke_failing", None, request, grant=grant,
                                       payload={"error": error[:300]})
                if grant.attempts >= MAX_REVOKE_ATTEMPTS and grant.state != GrantState.REVOKE_FAILED:
                    grant.state = GrantState.REVOKE_FAILED
                    self.events.record(session, now, "revoke_failed", "accessbot", request, grant=grant,
                                       details={"error": error[:500]})
                outcome[grant.id] = (grant.attempts, grant.state == GrantState.REVOKE_FAILED)
        return outcome

    def force_close(self, grant_id: int, actor: Identity) -> None:
        """An admin closes a grant whose revoke keeps failing (audited; the access may still exist)."""
        if not self.policy.current.is_admin(actor):
            raise NotEligible("Only an admin can force a grant closed.")
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state not in ENDING:
                raise InvalidState(f"Grant {grant_id} is not being revoked.")
            grant.state = GrantState.REVOKED
            grant.ended_at = now
            # this grant's revoke retries only: the request's other grants keep theirs
            due_work.cancel(now=now, grant_ids=[grant.id], kinds=(JobKind.REVOKE,), session=session)
            request = request_store.get_request(grant.request_id, for_update=True, votes=False, session=session)
            self.events.record(session, now, "force_closed", actor.key, request, grant=grant,
                               details={"last_error": grant.last_error})
            if request is not None:
                close_if_ended(request, now)



def close_if_ended(request: AccessRequest, now: datetime) -> None:
    """When none of its grants is unfinished, the request ends: ``expired`` if its grants expired (or failed),
    else ``revoked`` if any was revoked."""
    if any(g.state in UNFINISHED for g in request.grants):
        return
    ended = {g.state for g in request.grants}
    if ended <= {GrantState.EXPIRED, GrantState.FAILED} and GrantState.EXPIRED in ended:
        request.state = RequestState.EXPIRED
    elif GrantState.REVOKED in ended:
        request.state = RequestState.REVOKED
    request.updated_at = now
