"""Runs due work: claims due rows atomically and dispatches each by kind (SPEC §8).

Each kind is idempotent: running a row twice is harmless, and a row whose worker died is taken again after
its lease. The scheduler (``bot.jobs.scheduler``) calls :meth:`Worker.run_due` every tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from bot.clock import Clock
from bot.lifecycle.automatic import Reconciler
from bot.lifecycle.expiry import BATCH, expire_many
from bot.lifecycle.grants import LEASE, GrantRunner, backoff
from bot.lifecycle.requests import AccessService
from store import due_work
from store.db import Database
from store.models import DueWork

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    kind: str
    request_id: int | None
    grant_id: int | None
    payload: dict[str, object]
    attempts: int


class Worker:
    def __init__(
        self, db: Database, service: AccessService, grants: GrantRunner, clock: Clock, *, threads: int = 1,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.db = db
        self.service = service
        self.grants = grants
        self.clock = clock
        self.threads = threads  # rows of one claim run in parallel: connectors wait on the network
        self.reconciler = reconciler or Reconciler(
            db, service, grants, service.policy, service.directory, clock)  # due work ``reconcile``

    def run_due(self, *, limit: int = 100, now: datetime | None = None) -> int:
        """Claim and run everything due; returns how many rows were run.

        Each claimed row is independent (its own transactions, its own lease), so with ``threads > 1`` they run
        on a pool: a replica's throughput is then bounded by the database, not by one connector call at a time.
        """
        now = now or self.clock.now()
        with self.db.begin() as session:
            rows = due_work.claim_due_work(now=now, lease=LEASE, limit=limit, is_postgres=self.db.is_postgres,
                session=session)
            claimed = [_Claimed(r.id, r.kind, r.request_id, r.grant_id, dict(r.payload), r.attempts) for r in rows]
        expiring = [w for w in claimed if w.kind == "expire" and w.grant_id is not None]
        tasks: list[Callable[[], None]] = [partial(self._run_claimed, w) for w in claimed if w not in expiring]
        size = max(1, min(BATCH, -(-len(expiring) // self.threads)))  # spread a burst over the threads
        tasks += [partial(self._run_expiring, expiring[i:i + size]) for i in range(0, len(expiring), size)]
        if self.threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(min(self.threads, len(tasks)), thread_name_prefix="due-work") as pool:
                for future in [pool.submit(task) for task in tasks]:
                    future.result()
        else:
            for task in tasks:
                task()
        return len(claimed)

    def _run_expiring(self, batch: list[_Claimed]) -> None:
        """Expire rows in one batch (:mod:`bot.lifecycle.expiry`); each row then finishes or retries."""
        try:
            results = expire_many(self.grants, [w.grant_id for w in batch if w.grant_id is not None])
        except Exception:  # noqa: BLE001 — nothing was committed past the failure; every row is retried
            log.exception("expiring %d grants failed", len(batch))
            results = {}
        with self.db.begin() as session:
            done = [w.id for w in batch if results.get(w.grant_id or 0, False)]
            if done:
                due_work.finish_works(work_ids=done, now=self.clock.now(), session=session)
            for work in batch:
                if work.id not in done:
                    due_work.retry_work(work_id=work.id, due_at=self.clock.now() + backoff(work.attempts),
                                    error="will retry", session=session)

    def _run_claimed(self, work: _Claimed) -> None:
        try:
            done = self.dispatch(work.kind, work.request_id, work.grant_id, work.payload)
            error = "will retry"
        except Exception as exc:  # noqa: BLE001 — recorded on the row, retried with backoff
            log.exception("due work %s #%s failed", work.kind, work.id)
            done, error = False, str(exc)
        with self.db.begin() as session:
            if done:
                due_work.finish_work(work_id=work.id, now=self.clock.now(), session=session)
            else:
                key = f"{work.kind}:{work.grant_id if work.kind == 'revoke' else work.request_id}"
                due = self.grants.next_retry(key) if work.kind in ("grant", "revoke") else (
                    self.clock.now() + backoff(work.attempts))
                due_work.retry_work(work_id=work.id, due_at=due, error=error, session=session)

    def dispatch(self, kind: str, request_id: int | None, grant_id: int | None, payload: dict[str, object]) -> bool:
        match kind:
            case "grant":
                assert request_id is not None
                return self.grants.execute_grants(request_id)
            case "revoke":
                assert grant_id is not None
                return self.grants.execute_revoke(grant_id)
            case "expire":  # run_due batches these (bot.lifecycle.expiry); one on its own is a batch of one
                assert grant_id is not None
                return expire_many(self.grants, [grant_id])[grant_id]
            case "remind":
                assert grant_id is not None
                expected = payload.get("expires_at")
                return self.grants.remind(grant_id, str(expected) if expected else None)
            case "timeout":
                assert request_id is not None
                self.service.time_out(request_id)
                return True
            case "escalate":
                assert request_id is not None
                self.service.escalate(request_id)
                return True
            case "reconcile":  # the automatic-flow pass (bot.lifecycle.automatic); it re-arms its own row
                self.reconciler.run_scheduled()
                return True
            case _:
                log.error("unknown due work kind %r; dropping it", kind)
                return True

    def pending(self) -> list[DueWork]:
        with self.db.begin() as session:
            return due_work.pending_work(session=session)


