"""Expiry, in batches: many grants that are due at once (a burst of expiries, or a backlog after downtime).

The steps of a revoke (:mod:`bot.lifecycle.revoking`) — grant marked ``revoking`` with its audit event and a
safety-net ``revoke`` timer, due after the lease since this worker revokes inline; the connector's revoke; the
grant marked ended with its audit event and notices — but each transaction covers the whole batch, so the
database work per grant is a few rows, not a few round trips. Connector calls stay one per grant. A crash
between the connector calls and the last transaction leaves the batch ``revoking``; the safety-net timers revoke
those grants again (connectors are idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from bot.lifecycle.connector_work import grant_spec
from bot.lifecycle.revoking import Revoking
from integrations.base import ConnectorError
from policy.states import ENDING, HELD, GrantState
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.due_work import JobKey, JobKind
from store.models import Grant

log = logging.getLogger(__name__)

BATCH = 25  # grants per batch: bounds what a crash mid-batch revokes twice


def expire_many(runner: Revoking, grant_ids: Sequence[int], *, lease: timedelta) -> dict[int, bool]:
    """Due work ``expire`` for several grants; returns grant id -> done (False: retry the row later).

    ``lease`` is the claim's lease: the safety-net ``revoke`` timers fall due when it ends.
    """
    results = dict.fromkeys(grant_ids, True)
    now = runner.clock.now()
    with runner.db.begin() as session:
        grants = grant_store.get_grants(grant_ids, for_update=True, session=session)
        requests = {r.id: r for r in request_store.get_requests(sorted({g.request_id for g in grants}),
                                                       for_update=True, session=session)}
        early = [g for g in grants if g.state in HELD and g.expires_at is not None and g.expires_at > now]
        if early:  # claimed before its time (another replica's clock): keep the timers
            due_work.schedule_many(timers=[(JobKey(JobKind.EXPIRE, g.id), g.expires_at) for g in early if g.expires_at],
                                   session=session)
        due = [g for g in grants if g.state in HELD and g.expires_at is not None and g.expires_at <= now]
        if not due:
            return results
        due_work.cancel(now=now, grant_ids=[g.id for g in due], kinds=(JobKind.EXPIRE, JobKind.REMIND), session=session)
        for grant in due:
            grant.state, grant.end_reason, grant.attempts = GrantState.REVOKING, "expired", 0
            runner.events.record(session, now, "revoke_started", "accessbot", requests[grant.request_id],
                                 grant=grant, details={"reason": "expired"})
        due_work.schedule_many(timers=[(JobKey(JobKind.REVOKE, g.id), now + lease) for g in due], session=session)
        keep = grant_store.overlapping_grants_of(due, session=session)
        plans = [(g.id, grant_spec(g), keep[g.id]) for g in due]

    revoked: list[tuple[int, list[Grant], bool]] = []
    for grant_id, spec, kept in plans:
        try:
            shared = runner.revoke_at_connector(spec, kept)
        except ConnectorError as exc:
            results[grant_id] = runner.revoke_failed(grant_id, str(exc))
            continue
        except Exception:  # noqa: BLE001 — the safety-net revoke timer retries it; the rest of the batch goes on
            log.exception("revoking grant %s failed", grant_id)
            continue
        revoked.append((grant_id, kept, shared))
    if not revoked:
        return results

    now = runner.clock.now()
    with runner.db.begin() as session:
        grants_by_id = {g.id: g for g in grant_store.get_grants([r[0] for r in revoked], for_update=True,
                                                                 session=session)}
        request_ids = sorted({g.request_id for g in grants_by_id.values()})
        requests = {r.id: r for r in request_store.get_requests(request_ids, for_update=True, session=session)}
        ending = [g for g in grants_by_id.values() if g.state in ENDING]
        due_work.cancel(now=now, grant_ids=[g.id for g in ending], kinds=(JobKind.REVOKE,), session=session)
        for grant_id, kept, shared in revoked:
            done = grants_by_id.get(grant_id)
            if done is not None and done.state in ENDING:
                runner.end_grant(session, requests[done.request_id], done, now, keep=kept, shared=shared)
    return results
