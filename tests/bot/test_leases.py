"""Leases follow the work: a heartbeat keeps a live worker's claim, a hung connector call is abandoned and
retried, and failed work waits for its own backoff, never for a lease (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.clock import SystemClock
from bot.container import build
from bot.jobs.backoff import backoff
from bot.jobs.worker import Worker
from bot.lifecycle.calls import CallRunner
from integrations.base import ConnectorError, GrantSpec
from integrations.noop import NoopConnector
from store import audit as audit_log
from store.db import Database
from store.models import DueWork, Grant
from tests.bot.fixtures import make_container
from tests.bot.worker_process import seed_expiring_grants


class BlockingRevoke(NoopConnector):
    """Revoke waits until ``release`` is set (or ``hang`` seconds), like a target that stops answering."""

    def __init__(self, inner: NoopConnector, hang: float = 10.0) -> None:
        super().__init__(inner.name, inner.catalog())
        self.release = threading.Event()
        self.entered = threading.Event()
        self.hang = hang

    def revoke(self, grant: GrantSpec) -> None:
        self.entered.set()
        if not self.release.wait(self.hang):
            return  # answered too late: the bot had abandoned the call
        super().revoke(grant)


def expire_row(db: Database, grant_id: int) -> DueWork | None:
    """The grant's ``expire`` row: the expiry's job until the grant has ended (its safety net too)."""
    with db.read() as session:
        return session.scalars(select(DueWork).where(DueWork.dedupe_key == f"expire:{grant_id}")).first()


def lease_of(db: Database, grant_id: int) -> datetime:
    row = expire_row(db, grant_id)
    return row.lease_until if row is not None and row.lease_until is not None else datetime.min.replace(tzinfo=UTC)


def test_backoff_starts_within_two_seconds_grows_and_is_capped() -> None:
    firsts = [backoff(1).total_seconds() for _ in range(200)]
    assert 0.5 <= min(firsts) and max(firsts) <= 1.0 and len(set(firsts)) > 100  # jittered, ≤ 1 s
    assert all(2.0 <= backoff(3).total_seconds() <= 4.0 for _ in range(50))
    assert all(150 <= backoff(n).total_seconds() <= 300 for n in (20, 60, 10_000) for _ in range(20))


def test_a_live_worker_keeps_its_claim_while_its_connector_call_runs(db: Database) -> None:
    c, _, noop = make_container(db)
    blocking = BlockingRevoke(noop)
    lease = timedelta(seconds=0.6)
    workers = [build(db=db, policy=c.policy, secrets=c.secrets, clock=SystemClock(),
                     connectors={"db": blocking}, lease=lease).worker for _ in range(2)]
    (grant_id,) = seed_expiring_grants(db, 1, first=datetime.now(UTC) - timedelta(seconds=1), spread=timedelta(0))
    first = threading.Thread(target=workers[0].run_due)
    first.start()
    assert blocking.entered.wait(10)
    row = expire_row(db, grant_id)
    assert row is not None and row.lease_until is not None and row.lease_owner
    claimed_until, owner = row.lease_until, row.lease_owner
    deadline = time.monotonic() + 10
    while lease_of(db, grant_id) < claimed_until + 2 * lease and time.monotonic() < deadline:
        time.sleep(0.05)
    renewed = expire_row(db, grant_id)
    assert renewed is not None and renewed.lease_until is not None
    assert renewed.lease_until >= claimed_until + 2 * lease and renewed.lease_owner == owner  # the heartbeat
    assert workers[1].run_due() == 0  # three leases later, the replica still finds it taken
    blocking.release.set()
    first.join(10)
    assert [op for op, _ in blocking.calls] == ["revoke"]
    with db.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None and grant.state == "expired"


def test_a_hung_connector_call_is_abandoned_and_retried_after_its_backoff(db: Database) -> None:
    c, clock, noop = make_container(db)
    hung = BlockingRevoke(noop, hang=2.0)
    c.connectors["db"] = hung
    c.revoking.calls = CallRunner(timeout=0.2)
    (grant_id,) = seed_expiring_grants(db, 1, first=clock.now() - timedelta(seconds=1), spread=timedelta(0))
    started = time.monotonic()
    c.worker.run_due()
    assert time.monotonic() - started < 1.5  # not held by the hung call
    with db.read() as session:
        events = audit_log.audit_events(request_id=None, session=session)
        failure = [e for e in events if e.event == "revoke_attempt_failed" and e.grant_id == grant_id]
    assert failure and "did not answer within 0.2s" in failure[0].details["error"]
    row = expire_row(db, grant_id)
    assert row is not None and row.lease_until is None  # released at once, not left to its lease
    assert timedelta(0) < row.due_at - clock.now() <= timedelta(seconds=1)  # the first retry: ≤ 1 s
    hung.release.set()
    clock.advance(seconds=1)
    c.worker.run_due()
    with db.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None and grant.state == "expired"


def test_a_failed_revoke_in_an_expiry_batch_waits_for_its_backoff_not_a_lease(db: Database) -> None:
    c, clock, noop = make_container(db)

    class FailOnce(NoopConnector):
        failed = False

        def revoke(self, grant: GrantSpec) -> None:
            if not self.failed:
                self.failed = True
                raise ConnectorError("HTTP 500")
            super().revoke(grant)

    flaky = FailOnce(noop.name, noop.catalog())
    c.connectors["db"] = flaky
    worker = Worker(db, c.worker.handlers, clock, lease=timedelta(minutes=2))  # even under a long lease
    (grant_id,) = seed_expiring_grants(db, 1, first=clock.now() - timedelta(seconds=1), spread=timedelta(0))
    worker.run_due()
    row = expire_row(db, grant_id)
    assert row is not None and row.lease_until is None and row.due_at - clock.now() <= timedelta(seconds=1)
    clock.advance(seconds=1)
    worker.run_due()
    with db.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None and grant.state == "expired"
    assert [op for op, _ in flaky.calls] == ["revoke"]
