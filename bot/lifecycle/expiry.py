"""Expiry, in batches: many grants that are due at once (a burst of expiries, or a backlog after downtime).

The steps of a revoke (:mod:`bot.lifecycle.revoking`), each phase one transaction of a few set-wise statements
for the whole batch (rows, not ORM objects: the database work per grant is a few rows, not a few round trips):

1. the grants marked ``revoking`` (reason ``expired``) with their audit events, and the connector calls
   recorded as started (the call ledger, :mod:`store.connector_calls`);
2. the connectors' revokes, in parallel (bounded, each under a deadline: :class:`bot.lifecycle.calls.CallRunner`);
3. the revoked grants marked ended (calls done, audit events, notices, requests closed).

The audit events and notices are written by the database from the grants' rows (``INSERT … SELECT``), and each
set of ids is one bound parameter (:func:`store.id_sets.among`): the work per grant on this side is reading its
row and making its call.

The ``expire`` row itself is the safety net: it stays claimed (its heartbeat renews the lease, a few seconds)
until its grant has ended, and is marked done in the transaction that ends it (``settle``). If this worker dies,
the lease lapses within seconds and another replica runs the row again: a grant found ``revoking`` for its
expiry is revoked again — only if the ledger cannot prove the call done, and with the same idempotency key. A
revoke that fails is audited (``revoke_attempt_failed``) and its row handed back to the worker
(:attr:`ExpiryOutcome.failed`), which releases it to run after its own backoff, never a lease. A grant still
``granting`` at its expiry is never granted (:func:`granting.close_too_late`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from bot.lifecycle.connector_work import GrantSpecs
from bot.lifecycle.events import THREAD_EVENTS
from bot.lifecycle.granting import close_too_late
from bot.lifecycle.revoking import Revoking
from integrations.base import ConnectorError, GrantSpec, idempotency_key
from policy.states import ENDING, HELD, GrantState
from store import audit as audit_log
from store import connector_calls as call_ledger
from store import due_work
from store import grants as grant_store
from store import outbox as outbox_store
from store import requests as request_store
from store.audit import GrantEvents
from store.connector_calls import CallKey
from store.due_work import JobKey, JobKind
from store.outbox import GrantMessages, GrantRecipients

log = logging.getLogger(__name__)

ACTOR = "accessbot"
# Grants per batch at most. A larger batch costs fewer statements per grant (each statement of a batch reads its
# rows once, whatever their number), but bounds what a crash mid-batch leaves in doubt (calls repeated after a
# restart, with their idempotency keys) and, on SQLite, how long each of its transactions holds the one write lock
# every other writer (a click, the outbox) waits for: 500 grants take some 25-30 ms a phase there (measured on the
# bench's machine); PostgreSQL locks rows one by one.
BATCH_SQLITE = 500
BATCH_POSTGRES = 1000


def batch_limit(*, is_postgres: bool) -> int:
    return BATCH_POSTGRES if is_postgres else BATCH_SQLITE


Settle = Callable[[Session, Sequence[int]], None]
"""Marks the ``expire`` rows of these grants done, inside the transaction that settles their grants."""


@dataclass
class ExpiryOutcome:
    done: dict[int, bool] = field(default_factory=dict)  # grant id -> its ``expire`` row is done
    failed: dict[int, tuple[int, bool]] = field(default_factory=dict)  # grant id -> (attempts, gave up): retry
    settled: set[int] = field(default_factory=set)  # grant ids whose rows ``settle`` already marked done


@dataclass(frozen=True, slots=True)
class _Plan:
    grant_id: int
    spec: GrantSpec
    keep: list[int]  # other live grants of the same access
    call: bool  # False: another live grant keeps a shared access, or the ledger proves the call done


def expire_many(runner: Revoking, grant_ids: Sequence[int], *, settle: Settle | None = None) -> ExpiryOutcome:
    """Due work ``expire`` for several grants, whose rows the caller holds (and heartbeats) until this returns.

    With ``settle``, each grant's row is marked done in the transaction that settles the grant (ends it, or finds
    nothing to do), not in one of its own afterwards; those grants are in :attr:`ExpiryOutcome.settled`.
    """
    outcome = ExpiryOutcome(done=dict.fromkeys(grant_ids, True))

    def settled(session: Session, ids: Sequence[int]) -> None:
        if settle is not None and ids:
            session.flush()  # timers re-armed by this transaction are not done: settle must see them
            settle(session, ids)
            outcome.settled.update(ids)

    plans = _begin(runner, grant_ids, settled)
    if not plans:
        return outcome
    calls = [p for p in plans if p.call]
    results = runner.calls.run_all([(f"revoke of grant {p.grant_id} at {p.spec.integration}",
                                     _revoker(runner, p.spec)) for p in calls])
    errors = {p.grant_id: r for p, r in zip(calls, results, strict=True) if isinstance(r, BaseException)}
    for grant_id, error in errors.items():
        if not isinstance(error, ConnectorError):
            log.error("revoking grant %s failed: %s: %s", grant_id, type(error).__name__, error)
    _finish(runner, [p for p in plans if p.grant_id not in errors], settled)
    if errors:  # audited and alerted in one transaction; the rows run again after their backoff
        outcome.failed = runner.revoke_failed_many({
            grant_id: str(error) if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
            for grant_id, error in errors.items()
        })
        outcome.done.update(dict.fromkeys(errors, False))
    return outcome


def _revoker(runner: Revoking, spec: GrantSpec) -> Callable[[], None]:
    return lambda: runner.connector(spec.integration).revoke(spec)  # no connector: this grant's call fails


def _copies(runner: Revoking, events: Sequence[GrantEvents]) -> list[GrantMessages]:
    """The outbox copies ``Events.record`` writes of audit events: for the audit channel, and for the thread
    under a channel approval message."""
    channel = runner.events.audit_channel()
    copies = []
    for e in events:
        post = {"event": e.event, "actor": ACTOR, "details": e.details}
        if channel:
            copies.append(GrantMessages("audit_post", post, channel, e.grant_ids))
        if e.event in THREAD_EVENTS:
            copies.append(GrantMessages("channel_thread", post, GrantRecipients.APPROVAL_THREAD, e.grant_ids))
    return copies


def _begin(runner: Revoking, grant_ids: Sequence[int], settled: Settle) -> list[_Plan]:
    now = runner.clock.now()
    with runner.db.begin() as session:
        rows = grant_store.lock_grant_rows(grant_ids, session=session)
        early = [g for g in rows if g.state in HELD and g.expires_at is not None and g.expires_at > now]
        if early:  # claimed before its time (another replica's clock): keep the timers
            due_work.schedule_many(timers=[(JobKey(JobKind.EXPIRE, g.id), g.expires_at) for g in early],
                                   session=session)
        due = [g for g in rows if g.state == GrantState.ACTIVE and g.expires_at is not None and g.expires_at <= now]
        late = [g.id for g in rows if g.state == GrantState.GRANTING and g.expires_at is not None
                and g.expires_at <= now]
        # resumed: this row's earlier run (a dead worker, or a failed revoke) left its grant being revoked
        resumed = [g for g in rows if g.state in ENDING and g.end_reason == "expired"]
        revoking_late = _close_late(runner, session, late, now) if late else []
        revoking = {g.id for g in due} | {g.id for g in resumed} | set(revoking_late)
        settled(session, [i for i in grant_ids if i not in revoking])  # nothing (more) to do for these
        if not revoking:
            return []
        started = [g.id for g in due]
        grant_store.set_grants(started, state=GrantState.REVOKING, end_reason="expired", attempts=0,
                               session=session)
        events = [GrantEvents("revoke_started", {"reason": "expired"}, started)]
        audit_log.add_grant_events(at=now, actor=ACTOR, events=events, session=session)
        outbox_store.enqueue_for_grants(now=now, messages=_copies(runner, events), session=session)
        due_work.cancel(now=now, grant_ids=started, kinds=(JobKind.REMIND,), session=session)
        due += resumed + grant_store.lock_grant_rows(revoking_late, session=session)
        shared = [g for g in due if runner.connector_shares(g.integration)]  # only those can be kept by others
        keep = grant_store.live_overlaps(shared, session=session)
        calling = [g.id for g in due if not keep.get(g.id)]
        proven = call_ledger.start_calls(
            calls=[CallKey(i, "revoke", idempotency_key("revoke", i)) for i in calling], now=now, session=session)
    called = {i for i in calling if not proven[idempotency_key("revoke", i)]}
    specs = GrantSpecs()  # after the commit: on SQLite the write lock is free again
    return [_Plan(g.id, specs.of(g), keep.get(g.id, []), call=g.id in called) for g in due]


def _close_late(runner: Revoking, session: Session, grant_ids: list[int], now: datetime) -> list[int]:
    """Grants still ``granting`` at their expiry (rare: the ORM path of :func:`granting.close_too_late`);
    returns those to revoke (a grant call of theirs may have landed)."""
    grants = grant_store.get_grants(grant_ids, for_update=True, session=session)
    requests = {r.id: r for r in request_store.get_requests(sorted({g.request_id for g in grants}),
                                                            for_update=True, session=session)}
    revoking = []
    for request_id, request in requests.items():
        mine = [g for g in grants if g.request_id == request_id]
        revoking += [g.id for g in close_too_late(runner, session, request, mine, now, schedule_revoke=False)]
    session.flush()
    return revoking


def _finish(runner: Revoking, plans: Sequence[_Plan], settled: Settle) -> None:
    if not plans:
        return
    now = runner.clock.now()
    keep = {p.grant_id: p.keep for p in plans}
    with runner.db.begin() as session:
        ending = grant_store.end_grants(list(keep), now=now, session=session)
        settled(session, list(keep))  # ended here, or by someone else meanwhile
        if not ending:
            return
        call_ledger.finish_calls(keys=[idempotency_key("revoke", g.id) for g in ending], now=now, session=session)
        # a shared access that other live grants still provide: said in the grant's audit event
        kept = [g for g in ending if keep[g.id] and runner.connector_shares(g.integration)]
        events = [GrantEvents(g.state, {"reason": g.end_reason, "access_kept_by_grants": keep[g.id]}, [g.id])
                  for g in kept]
        by_outcome: dict[tuple[str, str | None], list[int]] = {}
        for g in ending:
            by_outcome.setdefault((g.state, g.end_reason), []).append(g.id)
        told = {g.id for g in kept}
        events += [GrantEvents(state, {"reason": reason}, [i for i in ids if i not in told])
                   for (state, reason), ids in by_outcome.items()]
        audit_log.add_grant_events(at=now, actor=ACTOR, events=events, session=session)
        outbox_store.enqueue_for_grants(now=now, messages=[
            *_copies(runner, events),
            *(GrantMessages("access_ended", {"state": state}, GrantRecipients.PEOPLE, ids)
              for (state, _), ids in by_outcome.items()),
        ], session=session)
        grant_store.close_ended_requests(sorted({g.request_id for g in ending}), now=now, session=session)
