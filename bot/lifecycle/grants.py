"""Granting, extending, revoking and expiring through connectors (SPEC §5 Grant/Extend/Revoke, §8).

A grant is written as an intent (``granting``, with its expiry) before its connector is called; a revoke is
written as ``revoking`` before the connector is called and marked ended after. A crash anywhere leaves a row
that the due work (``grant:<request>``, ``revoke:<grant>``) finishes: connectors are idempotent.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from concurrent.futures import Executor
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.lifecycle.events import Events
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.records import RequestRecord, flow_of
from bot.security.crypto import SecretBox
from integrations.base import Connector, ConnectorError, GrantSpec
from policy.durations import format_duration, parse_requested_hours
from policy.errors import InvalidRequest, InvalidState, NotEligible, NotFound
from policy.identity import Identity
from policy.resources import Permission, Resource
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.db import Database
from store.models import AccessRequest, Extension, Grant

log = logging.getLogger(__name__)

MAX_GRANT_ATTEMPTS = 5
MAX_REVOKE_ATTEMPTS = 8
SLOW_SWEEP = timedelta(hours=1)
LEASE = timedelta(minutes=2)
LIVE = ("granting", "active")


def backoff(attempt: int, *, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff with ±20 % jitter: 5s, 10s, 20s, … capped at an hour."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


def grant_spec(grant: Grant) -> GrantSpec:
    resource = Resource(
        integration=grant.integration,
        type=str(grant.resource.get("type", "")),
        name=str(grant.resource.get("name", "")),
        path=str(grant.resource.get("path", "")),
        source_id=str(grant.resource.get("source_id", "")),
        tags=tuple(sorted(dict(grant.resource.get("tags", {})).items())),
        risk=grant.resource.get("risk", "medium"),
    )
    permission = Permission(
        integration=grant.integration,
        name=grant.permission,
        risk=grant.permission_spec.get("risk", "medium"),
        roles=tuple(grant.permission_spec.get("roles", ())),
    )
    return GrantSpec(
        grant_id=grant.id,
        request_id=grant.request_id,
        grantee_slack_id=grant.grantee_id,
        grantee_email=grant.grantee_email,
        integration=grant.integration,
        resource=resource,
        permission=permission,
        expires_at=grant.expires_at,
        external_ref=grant.external_ref,
    )


class GrantRunner:
    def __init__(
        self,
        db: Database,
        policy: PolicyHolder,
        connectors: Mapping[str, Connector],
        clock: Clock,
        events: Events,
        secrets: SecretBox,
    ) -> None:
        self.db = db
        self.policy = policy
        self.connectors = connectors
        self.clock = clock
        self.events = events
        self.secrets = secrets
        self.background: Executor | None = None

    def connector(self, integration: str) -> Connector:
        try:
            return self.connectors[integration]
        except KeyError:
            raise ConnectorError(f"no connector is configured for integration {integration!r}") from None

    # --- grant --------------------------------------------------------------------------------------------------

    def run_request(self, request_id: int) -> None:
        """Run the request's grant work now if nobody else holds it (the scheduler retries otherwise)."""
        self.run_keyed(f"grant:{request_id}", lambda: self.execute_grants(request_id))

    def run_keyed(self, key: str, action: object) -> None:
        """Run freshly written due work now: on ``background`` when set (the serving bot: a Slack click is
        answered at once, never after a slow connector), else in the caller's thread (CLI, tests)."""
        if self.background is not None:
            self.background.submit(self._run_keyed_now, key, action)
        else:
            self._run_keyed_now(key, action)

    def _run_keyed_now(self, key: str, action: object) -> None:
        now = self.clock.now()
        with self.db.begin() as session:
            work = due_work.claim_work_by_key(key=key, now=now, lease=LEASE, session=session)
            work_id = work.id if work is not None else None
        if work_id is None:
            return
        try:
            done = action()  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 — recorded and retried by the scheduler
            log.warning("%s failed: %s", key, exc)
            with self.db.begin() as session:
                due_work.retry_work(work_id=work_id, due_at=self.clock.now() + backoff(1), error=str(exc),
                    session=session)
            return
        with self.db.begin() as session:
            if done is False:
                due_work.retry_work(work_id=work_id, due_at=self.next_retry(key), error="will retry", session=session)
            else:
                due_work.finish_work(work_id=work_id, now=self.clock.now(), session=session)

    def next_retry(self, key: str) -> datetime:
        with self.db.begin() as session:
            kind, _, ident = key.partition(":")
            attempts = 1
            if kind == "grant":
                row = request_store.get_request(int(ident), session=session)
                attempts = max((g.attempts for g in row.grants), default=1) if row else 1
            elif kind == "revoke":
                grant = grant_store.get_grant(int(ident), session=session)
                attempts = grant.attempts if grant else 1
                if grant is not None and grant.state == "revoke_failed":
                    return self.clock.now() + SLOW_SWEEP
        return self.clock.now() + backoff(attempts)

    def execute_grants(self, request_id: int) -> bool:
        """Call the connector for every ``granting`` grant of the request; True when none is left to retry."""
        with self.db.begin() as session:
            row = request_store.get_request(request_id, session=session)
            if row is None:
                return True
            pending = [(g.id, grant_spec(g)) for g in row.grants if g.state == "granting"]
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
                if grant is None or grant.state != "granting":
                    continue
                grant.state = "active"
                grant.granted_at = now
                grant.attempts += 1
                grant.external_ref = result.external_ref
                grant.expires_at = None if duration is None else now + timedelta(seconds=duration)
                request = request_store.get_request(request_id, for_update=True, session=session)
                assert request is not None
                if request.state == "granting":
                    request.state = "active"
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
                self._schedule_expiry(session, grant, request)
        return all_done

    def _grant_failed(self, grant_id: int, error: str, *, retryable: bool) -> bool:
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state != "granting":
                return True
            grant.attempts += 1
            grant.last_error = error[:2000]
            request = request_store.get_request(grant.request_id, for_update=True, session=session)
            give_up = not retryable or grant.attempts >= MAX_GRANT_ATTEMPTS
            self.events.record(session, now, "grant_failed" if give_up else "grant_attempt_failed", "accessbot",
                               request, grant=grant, details={"error": error[:500], "attempt": grant.attempts})
            if not give_up:
                return False
            grant.state = "failed"
            grant.ended_at = now
            grant.end_reason = "grant failed"
            assert request is not None
            if all(g.state in ("failed",) for g in request.grants):
                request.state = "failed"
                request.updated_at = now
            self.events.notify(session, now, "grant_failed", request.requester_id, request, grant=grant,
                               payload={"error": error[:300]})
            return True

    def _schedule_expiry(self, session: Session, grant: Grant, request: AccessRequest) -> None:
        if grant.expires_at is None:
            return
        due_work.schedule(kind="expire", key=f"expire:{grant.id}", due_at=grant.expires_at,
                      request_id=request.id, grant_id=grant.id, session=session)
        before = self.policy.current.config.reminder_before
        remind_at = max(grant.expires_at - before, grant.granted_at or grant.expires_at)
        if remind_at < grant.expires_at:
            due_work.schedule(kind="remind", key=f"remind:{grant.id}", due_at=remind_at,
                          request_id=request.id, grant_id=grant.id,
                          payload={"expires_at": grant.expires_at.isoformat()}, session=session)

    # --- extend -------------------------------------------------------------------------------------------------

    def extend(self, request_id: int, actor: Identity, hours: str | None = None) -> RequestRecord:
        """Extend the actor's active grants of a request by the flow's ``extend.each`` (or fewer hours)."""
        now = self.clock.now()
        with self.db.begin() as session:
            request = request_store.get_request(request_id, session=session)
            if request is None:
                raise NotFound(f"There is no request #{request_id}.")
            flow = flow_of(request)
            grants = self._actor_grants(request, actor, states=("active",))
            if not grants:
                raise InvalidState(f"Request #{request_id} has no active access of yours to extend.")
            if flow.extend.max_times == 0:
                raise InvalidRequest(f"Flow {flow.name} does not allow extensions; make a new request.")
            if any(g.expires_at is None for g in grants):
                raise InvalidRequest("This access does not expire; there is nothing to extend.")
            used = max(g.extensions_used for g in grants)
            if used >= flow.extend.max_times:
                raise InvalidRequest(
                    f"Request #{request_id} was already extended {used} time(s), the most flow {flow.name} allows."
                )
            delta = flow.extend.each if not hours else parse_requested_hours(hours, flow.extend.each)
            plans = [(g.id, grant_spec(g), g.expires_at + delta) for g in grants if g.expires_at]  # type: ignore[operator]
        for _, spec, until in plans:
            self.connector(spec.integration).extend(spec, until)
        with self.db.begin() as session:
            request = request_store.get_request(request_id, for_update=True, session=session)
            assert request is not None
            for grant_id, _, until in plans:
                grant = grant_store.get_grant(grant_id, for_update=True, session=session)
                if grant is None or grant.state != "active":
                    continue
                session.add(Extension(grant_id=grant.id, actor_id=actor.key, created_at=now,
                                      previous_expiry=grant.expires_at, new_expiry=until))
                grant.expires_at = until
                grant.extensions_used += 1
                self._schedule_expiry(session, grant, request)
                self.events.record(session, now, "extended", actor.key, request, grant=grant, details={
                    "by": format_duration(delta), "expires_at": until.isoformat(),
                    "extensions_used": grant.extensions_used,
                })
                self.events.notify(session, now, "access_extended", grant.grantee_id, request, grant=grant)
            session.flush()
            return RequestRecord.of(request)

    # --- revoke / expire ----------------------------------------------------------------------------------------

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
            states = ("granting", "active", "revoke_failed")
            everything = admin or request.requester_id == actor.key
            grants = (
                [g for g in request.grants if g.state in states]
                if everything
                else self._actor_grants(request, actor, states=states)
            )
            if not grants and not (everything or any(g.grantee_id == actor.key for g in request.grants)):
                raise NotEligible("Only the grantee, the requester or an admin can revoke this access.")
            self._drop_unconfirmed(session, request, actor, everything, now, reason)
            if not grants:
                if request.state == "pending":
                    raise InvalidState(f"Request #{request_id} is still pending; cancel it instead.")
                return RequestRecord.of(request)
            for grant in grants:
                self._begin_revoke(session, request, grant, now, actor=actor.key, reason=reason)
            ids = [g.id for g in grants]
        for grant_id in ids:
            self.run_keyed(f"revoke:{grant_id}", lambda gid=grant_id: self.execute_revoke(gid))
        return self._record(request_id)

    def _drop_unconfirmed(self, session: Session, request: AccessRequest, actor: Identity, everything: bool,
                          now: datetime, reason: str) -> None:
        """Grants still waiting for their grantee's MFA confirmation end without a connector call."""
        for grant in request.grants:
            if grant.state == "awaiting_mfa" and (everything or grant.grantee_id == actor.key):
                grant.state, grant.ended_at, grant.end_reason = "revoked", now, reason
                self.events.record(session, now, "revoked", actor.key, request, grant=grant,
                                   details={"reason": reason, "unconfirmed": True})
        if request.state == "granting" and all(g.state in ("revoked", "failed") for g in request.grants):
            request.state, request.updated_at = "revoked", now

    def revoke_grant(self, grant_id: int, *, reason: str, actor: str = "accessbot") -> bool:
        """Revoke one live grant now (the reconciler's path); False when it is no longer live.

        Audited like every revoke (``revoke_started`` with the reason, then ``revoked``); a failed connector
        call is retried by the ``revoke:<grant>`` due work.
        """
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state not in LIVE:
                return False
            request = request_store.get_request(grant.request_id, for_update=True, session=session)
            assert request is not None
            self._begin_revoke(session, request, grant, now, actor=actor, reason=reason)
        self.run_keyed(f"revoke:{grant_id}", lambda: self.execute_revoke(grant_id))
        return True

    def _begin_revoke(self, session: Session, request: AccessRequest, grant: Grant, now: datetime, *,
                      actor: str, reason: str) -> None:
        grant.state = "revoking"
        grant.end_reason = reason
        grant.attempts = 0
        due_work.cancel_grant_work(now=now, grant_id=grant.id, kinds=("expire", "remind"), session=session)
        self.events.record(session, now, "revoke_started", actor, request, grant=grant, details={"reason": reason})
        due_work.schedule(kind="revoke", key=f"revoke:{grant.id}", due_at=now,
                      request_id=request.id, grant_id=grant.id, session=session)

    def execute_revoke(self, grant_id: int) -> bool:
        """Call the connector to revoke, then mark the grant ended. False = failed, retry later."""
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, session=session)
            if grant is None or grant.state not in ("revoking", "revoke_failed"):
                return True
            spec = grant_spec(grant)
            keep = grant_store.overlapping_grants(grant, session=session)
        return self._revoke_and_end(grant_id, spec, keep)

    def revoke_at_connector(self, spec: GrantSpec, keep: list[Grant]) -> bool:
        """Revoke at the connector, unless another live grant still provides the access of a connector with
        ``shared_access``; returns whether the connector shares access. Raises :class:`ConnectorError`."""
        connector = self.connector(spec.integration)
        shared = bool(getattr(connector, "shared_access", False))
        if not (shared and keep):
            connector.revoke(spec)
        return shared

    def _revoke_and_end(self, grant_id: int, spec: GrantSpec, keep: list[Grant]) -> bool:
        try:
            shared = self.revoke_at_connector(spec, keep)
        except ConnectorError as exc:
            return self.revoke_failed(grant_id, str(exc))
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state not in ("revoking", "revoke_failed"):
                return True
            request = request_store.get_request(grant.request_id, for_update=True, votes=False, session=session)
            assert request is not None
            due_work.cancel_grant_work(now=now, grant_id=grant.id, kinds=("revoke",), session=session)  # the safety net
            self.end_grant(session, request, grant, now, keep=keep, shared=shared)
        return True

    def end_grant(self, session: Session, request: AccessRequest, grant: Grant, now: datetime, *,
                  keep: list[Grant], shared: bool) -> None:
        """The connector revoked it: mark the grant (and the request, when it was the last) ended; tell people."""
        expired = grant.end_reason == "expired"
        grant.state = "expired" if expired else "revoked"
        grant.ended_at = now
        details: dict[str, object] = {"reason": grant.end_reason}
        if shared and keep:
            details["access_kept_by_grants"] = [g.id for g in keep]
        self.events.record(session, now, grant.state, "accessbot", request, grant=grant, details=details)
        for user in dict.fromkeys([grant.grantee_id, request.requester_id]):
            self.events.notify(session, now, "access_ended", user, request, grant=grant,
                               payload={"state": grant.state})
        still_live = (*LIVE, "revoking", "revoke_failed", "awaiting_mfa")
        if all(g.state not in still_live for g in request.grants):
            ended = {g.state for g in request.grants}
            request.state = "expired" if ended <= {"expired", "failed"} and "expired" in ended else (
                "revoked" if "revoked" in ended else request.state)
            request.updated_at = now

    def revoke_failed(self, grant_id: int, error: str) -> bool:
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None:
                return True
            grant.attempts += 1
            grant.last_error = error[:2000]
            request = request_store.get_request(grant.request_id, session=session)
            self.events.record(session, now, "revoke_attempt_failed", "accessbot", request, grant=grant,
                               details={"error": error[:500], "attempt": grant.attempts})
            if grant.attempts == 1:
                self.events.notify(session, now, "revoke_failing", None, request, grant=grant,
                                   payload={"error": error[:300]})
            if grant.attempts >= MAX_REVOKE_ATTEMPTS and grant.state != "revoke_failed":
                grant.state = "revoke_failed"
                self.events.record(session, now, "revoke_failed", "accessbot", request, grant=grant,
                                   details={"error": error[:500]})
        return False

    def force_close(self, grant_id: int, actor: Identity) -> None:
        """An admin closes a grant whose revoke keeps failing (audited; the access may still exist)."""
        if not self.policy.current.is_admin(actor):
            raise NotEligible("Only an admin can force a grant closed.")
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, for_update=True, session=session)
            if grant is None or grant.state not in ("revoking", "revoke_failed"):
                raise InvalidState(f"Grant {grant_id} is not being revoked.")
            grant.state = "revoked"
            grant.ended_at = now
            due_work.cancel_work(now=now, request_id=grant.request_id, kinds=("revoke",), session=session)
            self.events.record(session, now, "force_closed", actor.key, None, grant=grant,
                               details={"last_error": grant.last_error})

    def remind(self, grant_id: int, expected: str | None) -> bool:
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, session=session)
            if grant is None or grant.state != "active" or grant.expires_at is None or grant.expires_at <= now:
                return True  # gone, or already due to expire: a reminder now would be noise
            if expected and grant.expires_at.isoformat() != expected:
                return True  # extended since: a new reminder is scheduled
            request = request_store.get_request(grant.request_id, session=session)
            self.events.notify(session, now, "expiry_reminder", grant.grantee_id, request, grant=grant)
            self.events.record(session, now, "reminded", "accessbot", request, grant=grant)
        return True

    # --- helpers ------------------------------------------------------------------------------------------------

    def _actor_grants(self, request: AccessRequest, actor: Identity, *, states: tuple[str, ...]) -> list[Grant]:
        key = actor.key
        mine = [g for g in request.grants if g.state in states and g.grantee_id == key]
        if mine:
            return mine
        if request.requester_id == key or self.policy.current.is_admin(actor):
            return [g for g in request.grants if g.state in states]
        return []

    def _record(self, request_id: int) -> RequestRecord:
        with self.db.begin() as session:
            row = request_store.get_request(request_id, session=session)
            assert row is not None
            return RequestRecord.of(row)


