"""Expiry, in batches: many grants that are due at once (a burst of expiries, or a backlog after downtime).

The steps of a revoke (:mod:`bot.lifecycle.revoking`), each phase one transaction for the whole batch, so the
database work per grant is a few rows, not a few round trips:

1. the grants marked ``revoking`` with their audit events, the connector calls recorded as started (the call
   ledger, :mod:`store.connector_calls`), and a safety-net ``revoke`` timer per grant written *already
   claimed* by this worker (``owner``): its heartbeat renews them while the batch runs, so nobody revokes them
   twice, and if this worker dies they are free within one short lease;
2. the connectors' revokes, in parallel (bounded, each under a deadline: :class:`bot.lifecycle.calls.CallRunner`);
3. the revoked grants marked ended (calls done, timers done, audit events, notices).

A revoke that fails is audited (``revoke_attempt_failed``) and its safety-net timer is handed back to the
worker (:attr:`ExpiryOutcome.failed`), which releases it to run after its own backoff, never a lease. A crash
between 2 and 3 leaves those calls started and not done: they are the only ones repeated, with the same
idempotency keys. A grant still ``granting`` at its expiry is never granted (:func:`granting.close_too_late`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.lifecycle.connector_work import grant_spec
from bot.lifecycle.granting import close_too_late
from bot.lifecycle.revoking import Revoking
from integrations.base import ConnectorError, GrantSpec, idempotency_key
from policy.states import ENDING, HELD, GrantState
from store import connector_calls as call_ledger
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.connector_calls import CallKey
from store.due_work import JobKey, JobKind
from store.models import Grant

log = logging.getLogger(__name__)

BATCH = 250  # grants per batch (per worker thread): bounds what a crash mid-batch leaves in doubt


@dataclass
class ExpiryOutcome:
    done: dict[int, bool] = field(default_factory=dict)  # grant id -> its ``expire`` row is done
    failed: dict[int, tuple[int, bool]] = field(default_factory=dict)  # grant id -> (attempts, gave up)


@dataclass(frozen=True, slots=True)
class _Plan:
    grant_id: int
    spec: GrantSpec
    keep: list[Grant]
    call: bool  # False: another live grant keeps a shared access, or the ledger proves the call done


def expire_many(runner: Revoking, grant_ids: Sequence[int], *, lease: timedelta, owner: str) -> ExpiryOutcome:
    """Due work ``expire`` for several grants. ``lease`` and ``owner`` are the claim's: the safety-net
    ``revoke`` timers are written claimed by ``owner`` until ``now + lease`` (its heartbeat renews them)."""
    outcome = ExpiryOutcome(done=dict.fromkeys(grant_ids, True))
    plans = _begin(runner, grant_ids, lease=lease, owner=owner)
    if not plans:
        return outcome
    calls = [p for p in plans if p.call]
    results = runner.calls.run_all([(f"revoke of grant {p.grant_id} at {p.spec.integration}",
                                     _revoker(runner, p.spec)) for p in calls])
    errors = {p.grant_id: r for p, r in zip(calls, results, strict=True) if isinstance(r, BaseException)}
    for grant_id, error in errors.items():
        if not isinstance(error, ConnectorError):
            log.error("revoking grant %s failed: %s: %s", grant_id, type(error).__name__, error)
        runner.revoke_failed(grant_id, str(error) if isinstance(error, ConnectorError)
                             else f"{type(error).__name__}: {error}")
    _finish(runner, [p for p in plans if p.grant_id not in errors])
    if errors:
        with runner.db.read() as session:
            for grant in grant_store.get_grants(list(errors), session=session):
                outcome.failed[grant.id] = (grant.attempts, grant.state == GrantState.REVOKE_FAILED)
    return outcome


def _revoker(runner: Revoking, spec: GrantSpec) -> Callable[[], None]:
    connector = runner.connector(spec.integration)
    return lambda: connector.revoke(spec)


def _begin(runner: Revoking, grant_ids: Sequence[int], *, lease: timedelta, owner: str) -> list[_Plan]:
    now = runner.clock.now()
    with runner.db.begin() as session:
        grants = grant_store.get_grants(grant_ids, for_update=True, session=session)
        requests = {r.id: r for r in request_store.get_requests(sorted({g.request_id for g in grants}),
                                                                for_update=True, session=session)}
        early = [g for g in grants if g.state in HELD and g.expires_at is not None and g.expires_at > now]
        if early:  # claimed before its time (another replica's clock): keep the timers
            due_work.schedule_many(timers=[(JobKey(JobKind.EXPIRE, g.id), g.expires_at) for g in early
                                           if g.expires_at], session=session)
        due = [g for g in grants if g.state == GrantState.ACTIVE and g.expires_at is not None
               and g.expires_at <= now]
        for request_id in sorted({g.request_id for g in grants}):
            late = [g for g in grants if g.request_id == request_id and g.state == GrantState.GRANTING
                    and g.expires_at is not None and g.expires_at <= now]
            if late:  # never granted before its expiry: closed, or revoked when a grant call may have landed
                due += close_too_late(runner, session, requests[request_id], late, now)
        if not due:
            return []
        due_work.cancel(now=now, grant_ids=[g.id for g in due], kinds=(JobKind.EXPIRE, JobKind.REMIND),
                        session=session)
        for grant in due:
            if grant.state != GrantState.REVOKING:
                grant.state, grant.end_reason, grant.attempts = GrantState.REVOKING, "expired", 0
                runner.events.record(session, now, "revoke_started", "accessbot", requests[grant.request_id],
                                     grant=grant, details={"reason": "expired"})
        due_work.schedule_many(timers=[(JobKey(JobKind.REVOKE, g.id), now) for g in due],
                               lease_until=now + lease, owner=owner, session=session)
        keep = grant_store.overlapping_grants_of(due, session=session)
        shared = {g.id: runner.connector_shares(g.integration) for g in due}
        calling = [g for g in due if not (shared[g.id] and keep[g.id])]
        proven = call_ledger.start_calls(
            calls=[CallKey(g.id, "revoke", idempotency_key("revoke", g.id)) for g in calling], now=now,
            session=session)
        return [_Plan(g.id, grant_spec(g), keep[g.id],
                      call=g in calling and not proven[idempotency_key("revoke", g.id)]) for g in due]


def _finish(runner: Revoking, plans: Sequence[_Plan]) -> None:
    if not plans:
        return
    now = runner.clock.now()
    with runner.db.begin() as session:
        grants_by_id = {g.id: g for g in grant_store.get_grants([p.grant_id for p in plans], for_update=True,
                                                                 session=session)}
        request_ids = sorted({g.request_id for g in grants_by_id.values()})
        requests = {r.id: r for r in request_store.get_requests(request_ids, for_update=True, session=session)}
        ending = [g for g in grants_by_id.values() if g.state in ENDING]
        due_work.cancel(now=now, grant_ids=[g.id for g in ending], kinds=(JobKind.REVOKE,), session=session)
        call_ledger.finish_calls(keys=[idempotency_key("revoke", g.id) for g in ending], now=now, session=session)
        for plan in plans:
            done = grants_by_id.get(plan.grant_id)
            if done is not None and done.state in ENDING:
                runner.end_grant(session, requests[done.request_id], done, now, keep=plan.keep,
                                 shared=runner.connector_shares(done.integration))
