"""Runs due work: claims due rows atomically and dispatches each by kind (SPEC §8).

Each kind is idempotent: running a row twice is harmless. Rows are claimed under a short lease (:data:`LEASE`)
by a token per :meth:`Worker.run_due` call, and a heartbeat (:mod:`bot.jobs.heartbeat`) renews that token's
leases while the work runs, so a live worker keeps its rows through slow connector calls and a dead one's rows
are taken over by another replica within one lease. Work that fails runs again after its own backoff
(:mod:`bot.jobs.backoff`), released at once, never left to the lease.

The scheduler (``bot.jobs.scheduler``) calls :meth:`Worker.run_due` every tick, and again at once while claims
come back non-empty; a claim takes what is due up to :data:`MAX_CLAIM` rows (one statement), a backlog's next
claim is made while the last one runs, and the expiries of a claim go to the threads in batches
(:mod:`bot.lifecycle.expiry`). Work a click has just written runs at
once through :meth:`Worker.run_now` (on ``background`` in the serving bot, so Slack gets its answer before a
slow connector call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.jobs.backoff import SLOW_SWEEP, backoff
from bot.jobs.heartbeat import Heartbeat
from bot.lifecycle.automatic import Reconciler
from bot.lifecycle.expiry import ExpiryOutcome, Settle, batch_limit, expire_many
from bot.lifecycle.extending import Extending
from bot.lifecycle.granting import Granting
from bot.lifecycle.requests import AccessService
from bot.lifecycle.revoking import Revoking
from policy.states import GrantState
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.db import Database, background_thread
from store.due_work import ClaimedRow, JobKey, JobKind, NoPayload, RemindPayload, claim_token, payload_type

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=6)  # renewed every 2 s while the work runs: a dead replica's work moves within 6 s
MAX_CLAIM = 2000  # rows per claim at most (a backlog is taken in claims this size)
PIPELINED = 2  # expiry batches of one claim at least, when there are threads for them
UNKNOWN_KIND_RETRY = timedelta(hours=1)
NO_PAYLOAD = NoPayload()


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    key: JobKey
    payload: BaseModel
    attempts: int
    owner: str = ""  # the claim's token: who holds the lease


def _start(pool: Executor | None, tasks: Sequence[Callable[[], None]]) -> list[Future[None]]:
    """The tasks on the pool, or run here and now without one (then nothing is left running)."""
    if pool is None:
        for task in tasks:
            task()
        return []
    return [pool.submit(task) for task in tasks]


def _finish(running: Sequence[Future[None]]) -> None:
    for future in running:
        future.result()


class UnknownWork(Exception):
    """A due-work row this version cannot run (a newer replica wrote it, or its payload does not parse)."""


def claimed(row: ClaimedRow) -> Claimed:
    try:
        key = JobKey.of(row)
        model = payload_type(key.kind)
        payload = NO_PAYLOAD if model is NoPayload and not row.payload else model.model_validate(row.payload or {})
    except (ValueError, ValidationError) as exc:
        raise UnknownWork(f"due work #{row.id} ({row.kind!r}) cannot be run: {exc}") from exc
    return Claimed(row.id, key, payload, row.attempts, row.lease_owner or "")


@dataclass
class Handlers:
    """What due work is dispatched to: the lifecycle's services."""

    service: AccessService
    granting: Granting
    extending: Extending
    revoking: Revoking
    reconciler: Reconciler


class Worker:
    def __init__(
        self, db: Database, handlers: Handlers, clock: Clock, *, threads: int = 1, lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.clock = clock
        self.threads = threads  # rows of one claim run in parallel: connectors wait on the network
        self.lease = lease
        self.background: Executor | None = None  # where run_now runs (the serving bot); inline when None

    @property
    def reconciler(self) -> Reconciler:
        return self.handlers.reconciler

    def run_due(self, *, limit: int | None = None, now: datetime | None = None, claims: int = 1) -> int:
        """Claim and run what is due by ``now``: up to ``limit`` rows in one claim, else up to ``claims`` claims of
        :data:`MAX_CLAIM` rows; returns how many rows were claimed.

        Each claimed row is independent (its own transactions), so with ``threads > 1`` they run on a pool:
        a replica's throughput is then bounded by the database and the connectors, not by one call at a time.
        A backlog (a full claim) is claimed again while the last claim runs, one claim ahead at most (all of
        them under this call's one claim token, which its heartbeat renews).
        """
        now = now or self.clock.now()
        owner = claim_token()
        size = limit or MAX_CLAIM
        tasks, claimed = self._claim(now, size, owner)
        if not tasks:
            return claimed
        total = claimed
        with Heartbeat(self.db, self.clock, lease=self.lease, owner=owner), ExitStack() as stack:
            pool = None
            if self.threads > 1 and (len(tasks) > 1 or claimed == size):
                pool = stack.enter_context(ThreadPoolExecutor(self.threads, thread_name_prefix="due-work",
                                                              initializer=background_thread))
            running = _start(pool, tasks)
            for _ in range(claims - 1 if limit is None else 0):  # a backlog: claim the next while this one runs
                if claimed < size:
                    break
                tasks, claimed = self._claim(now, size, owner)
                total += claimed
                ahead = _start(pool, tasks) if pool is not None else []  # queued behind the running ones
                _finish(running)
                running = ahead if pool is not None else _start(None, tasks)
            _finish(running)
        return total

    def _claim(self, now: datetime, size: int, owner: str) -> tuple[list[Callable[[], None]], int]:
        """Claim up to ``size`` due rows for ``owner``: the tasks that run them, and how many rows were claimed."""
        with self.db.begin() as session:
            rows = due_work.claim_due_work(now=now, lease=self.lease, limit=size, is_postgres=self.db.is_postgres,
                                           owner=owner, session=session)
            works = self._parse(session, rows, now)
        expiring = [w for w in works if w.key.kind is JobKind.EXPIRE]
        tasks: list[Callable[[], None]] = [partial(self._run_claimed, w) for w in works
                                           if w.key.kind is not JobKind.EXPIRE]
        tasks += [partial(self._run_expiring, batch) for batch in self._batches(expiring)]
        return tasks, len(rows)

    def _batches(self, expiring: list[Claimed]) -> list[list[Claimed]]:
        """A claim's expiries in batches: as few as the batch limit allows, but two at least when there are
        threads for them (one batch's statements run while the other's connector calls wait), of even sizes."""
        if not expiring:
            return []
        limit = batch_limit(is_postgres=self.db.is_postgres)
        count = max(-(-len(expiring) // limit), min(self.threads, PIPELINED))
        size = -(-len(expiring) // count)
        return [expiring[i:i + size] for i in range(0, len(expiring), size)]

    def run_now(self, key: JobKey) -> bool:
        """Run freshly written due work ``key`` now if it is due and nobody holds it (the scheduler retries
        otherwise): on ``background`` when set (returns False: the caller cannot see its effects yet), else in
        the caller's thread (CLI, tests; returns True)."""
        if self.background is not None:
            self.background.submit(self._run_now, key)
            return False
        self._run_now(key)
        return True

    def _run_now(self, key: JobKey) -> None:
        now = self.clock.now()
        owner = claim_token()
        with self.db.begin() as session:
            rows = due_work.claim_due_work(now=now, lease=self.lease, limit=1, is_postgres=self.db.is_postgres,
                                           key=key, owner=owner, session=session)
            works = self._parse(session, rows, now)
        if works:
            with Heartbeat(self.db, self.clock, lease=self.lease, owner=owner):
                for work in works:
                    self._run_claimed(work)

    def _parse(self, session: Session, rows: Sequence[ClaimedRow], now: datetime) -> list[Claimed]:
        """The claimed rows as typed work; a row of an unknown kind stays pending and visible (overdue in
        ``/metrics``, its error on the row), never silently done."""
        works = []
        for row in rows:
            try:
                works.append(claimed(row))
            except UnknownWork as exc:
                log.error("%s; it stays pending, retried in %s", exc, UNKNOWN_KIND_RETRY)
                due_work.postpone(work_ids=[row.id], due_at=now + UNKNOWN_KIND_RETRY, error=str(exc), session=session)
        return works

    def _run_expiring(self, batch: list[Claimed]) -> None:
        """Expire rows in one batch (:mod:`bot.lifecycle.expiry`): each row is done in the transaction that
        settles its grant, or runs again after its backoff (a failed revoke: by the grant's attempts; slowly
        once they are exhausted)."""
        owner = batch[0].owner
        rows = {w.key.subject: w.id for w in batch if w.key.subject is not None}

        def settle(session: Session, grant_ids: Sequence[int]) -> None:
            due_work.finish_work(work_ids=[rows[g] for g in grant_ids], now=self.clock.now(), owner=owner,
                                 session=session)

        outcome = self._expire(list(rows), settle)
        left = [w for w in batch if w.key.subject not in outcome.settled]
        if not left:
            return
        now = self.clock.now()
        with self.db.begin() as session:
            done = [w.id for w in left if outcome.done.get(w.key.subject or 0, False)]
            if done:
                due_work.finish_work(work_ids=done, now=now, owner=owner, session=session)
            for work in left:
                if work.id in done:
                    continue
                attempts, gave_up = outcome.failed.get(work.key.subject or 0, (work.attempts, False))
                due_work.retry_work(work_id=work.id, due_at=now + (SLOW_SWEEP if gave_up else backoff(attempts)),
                                    error="revoke failed; will retry", owner=owner, session=session)

    def _expire(self, grant_ids: list[int], settle: Settle | None = None) -> ExpiryOutcome:
        try:
            return expire_many(self.handlers.revoking, grant_ids, settle=settle)
        except Exception:  # noqa: BLE001 — nothing was committed past the failure; every row is retried
            log.exception("expiring %d grants failed", len(grant_ids))
            return ExpiryOutcome()

    def _run_claimed(self, work: Claimed) -> None:
        try:
            done = self.dispatch(work.key, work.payload)
            error = "will retry"
        except Exception as exc:  # noqa: BLE001 — recorded on the row, retried with backoff
            log.exception("due work %s (#%s) failed", work.key, work.id)
            done, error = False, str(exc)
        if done:
            with self.db.begin() as session:
                due_work.finish_work(work_ids=[work.id], now=self.clock.now(), owner=work.owner, session=session)
            return
        due = self.retry_at(work)
        with self.db.begin() as session:
            due_work.retry_work(work_id=work.id, due_at=due, error=error, owner=work.owner, session=session)

    def retry_at(self, work: Claimed) -> datetime:
        """When failed work runs again: backoff by the grant's connector attempts (grant, revoke), slowly for
        a revoke that exhausted its attempts, else by the row's own attempts."""
        attempts = work.attempts
        with self.db.read() as session:
            if work.key.kind is JobKind.GRANT and work.key.subject is not None:
                row = request_store.get_request(work.key.subject, votes=False, session=session)
                attempts = max((g.attempts for g in row.grants), default=1) if row else 1
            elif work.key.kind in (JobKind.REVOKE, JobKind.EXPIRE) and work.key.subject is not None:
                grant = grant_store.get_grant(work.key.subject, session=session)
                attempts = grant.attempts if grant else 1
                if grant is not None and grant.state == GrantState.REVOKE_FAILED:
                    return self.clock.now() + SLOW_SWEEP
        return self.clock.now() + backoff(attempts)

    def dispatch(self, key: JobKey, payload: BaseModel) -> bool:
        """Run one piece of work; True when it is done, False to retry it later."""
        subject = key.subject
        h = self.handlers
        match key.kind:
            case JobKind.GRANT if subject is not None:
                return h.granting.execute_grants(subject)
            case JobKind.REVOKE if subject is not None:
                return h.revoking.execute_revoke(subject)
            case JobKind.EXTEND if subject is not None:
                return h.extending.execute_extend(subject)
            case JobKind.EXPIRE if subject is not None:  # run_due batches these; one on its own is a batch of one
                return self._expire([subject]).done.get(subject, False)
            case JobKind.REMIND if subject is not None:
                assert isinstance(payload, RemindPayload)
                return h.extending.remind(subject, payload.expires_at)
            case JobKind.TIMEOUT if subject is not None:
                h.service.time_out(subject)
                return True
            case JobKind.ESCALATE if subject is not None:
                h.service.escalate(subject)
                return True
            case JobKind.RECONCILE:  # the automatic-flow pass (bot.lifecycle.automatic); it re-arms its own row
                h.reconciler.run_scheduled()
                return True
        raise UnknownWork(f"due work {key} has no subject")
