"""Timers run by the worker under a FakeClock (no sleeps), on SQLite and PostgreSQL; the Scheduler wrapper."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.container import Container, build
from bot.jobs import scheduler as scheduler_module
from bot.jobs import worker as worker_module
from bot.jobs.scheduler import DatabaseClock, Scheduler, db_now, run_due_by_db_clock
from bot.jobs.worker import Worker
from bot.lifecycle.requests import RequestInput
from bot.lifecycle.revoking import MAX_REVOKE_ATTEMPTS
from integrations.base import ConnectorError, GrantResult, GrantSpec
from integrations.noop import NoopConnector
from policy.errors import NotEligible
from store import audit as audit_log
from store import grants as grant_store
from store import outbox as outbox_store
from store.db import Database
from tests.bot.fixtures import CONFIG, make_container
from tests.bot.worker_process import seed_expiring_grants

TWO_TIERS = CONFIG.replace(
    "tiers: [{conditions: [{attribute: user, op: is, values: [cto@example.com]}]}]",
    "tiers: [{conditions: [{attribute: user, op: is, values: [cto@example.com]}]},\n"
    "             {conditions: [{attribute: user, op: is, values: [secops@example.com]}]}]",
)


class FlakyConnector(NoopConnector):
    """A no-op connector whose grant/revoke raise ``ConnectorError`` the first N times (-1 = always)."""

    def __init__(self, inner: NoopConnector, *, grant_failures: int = 0, revoke_failures: int = 0) -> None:
        super().__init__(inner.name, inner.catalog())
        self.grant_failures = grant_failures
        self.revoke_failures = revoke_failures

    def grant(self, grant: GrantSpec) -> GrantResult:
        if self.grant_failures != 0:
            self.grant_failures -= 1
            raise ConnectorError("grant backend unavailable")
        return super().grant(grant)

    def revoke(self, grant: GrantSpec) -> None:
        if self.revoke_failures != 0:
            self.revoke_failures -= 1
            raise ConnectorError("revoke backend unavailable")
        super().revoke(grant)


def audit(db: Database, request_id: int) -> list[str]:
    with db.begin() as session:
        return [e.event for e in audit_log.audit_events(request_id=request_id, session=session)]


def outbox(db: Database, kind: str) -> list[tuple[str | None, int | None]]:
    with db.begin() as session:
        return [(m.recipient, m.request_id) for m in outbox_store.outbox_messages(session=session) if m.kind == kind]


def run_for(c: Container, clock: FakeClock, *, steps: int, every: timedelta) -> None:
    for _ in range(steps):
        clock.advance(every)
        c.worker.run_due()


def auto_grant(c: Container, clock: FakeClock) -> int:
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="tests"))
    assert out.request.state == "active"
    return out.request.id


def with_connector(db: Database, connector: FlakyConnector, c: Container) -> None:
    c.connectors["db"] = connector
    c.granting.connectors = c.connectors


def test_escalation_across_two_tiers(db: Database) -> None:
    c, clock, _ = make_container(db, TWO_TIERS)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                        justification="x"))
    rid = out.request.id
    clock.advance(minutes=29)
    c.worker.run_due()
    assert c.service.get(rid).escalation_tier == 0
    with pytest.raises(NotEligible):
        c.service.approve(rid, c.directory.identity("UCTO", clock.now()))
    clock.advance(minutes=2)
    c.worker.run_due()
    assert c.service.get(rid).escalation_tier == 1
    assert ("UCTO", rid) in outbox(db, "approval_request")
    clock.advance(minutes=30)
    c.worker.run_due()
    assert c.service.get(rid).escalation_tier == 2
    assert ("USECOPS", rid) in outbox(db, "approval_request")
    clock.advance(minutes=30)
    c.worker.run_due()
    assert c.service.get(rid).escalation_tier == 2  # at most the configured tiers
    assert audit(db, rid).count("escalated") == 2
    assert c.service.approve(rid, c.directory.identity("USECOPS", clock.now())).request.state == "active"


def test_timeout_tells_everybody(db: Database) -> None:
    c, clock, noop = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                        justification="x"))
    clock.advance(hours=1, minutes=59)
    c.worker.run_due()
    assert c.service.get(out.request.id).state == "pending"
    clock.advance(minutes=2)
    c.worker.run_due()
    assert c.service.get(out.request.id).state == "timed_out"
    assert ("UALICE", out.request.id) in outbox(db, "request_closed")
    assert len(outbox(db, "approval_update")) == 1
    assert "timed_out" in audit(db, out.request.id)
    assert noop.calls == []


def test_reminder_ten_minutes_before_expiry_not_before(db: Database) -> None:
    c, clock, _ = make_container(db)
    rid = auto_grant(c, clock)
    expires_at = c.service.get(rid).expires_at
    assert expires_at is not None
    clock.set(expires_at - timedelta(minutes=10, seconds=1))
    c.worker.run_due()
    assert outbox(db, "expiry_reminder") == []
    clock.advance(seconds=2)
    c.worker.run_due()
    assert outbox(db, "expiry_reminder") == [("UALICE", rid)]
    c.worker.run_due()
    assert outbox(db, "expiry_reminder") == [("UALICE", rid)]


def test_expire_then_revoke_once(db: Database) -> None:
    c, clock, noop = make_container(db)
    rid = auto_grant(c, clock)
    run_for(c, clock, steps=3, every=timedelta(minutes=25))  # 75 minutes: past the 1h grant
    assert c.service.get(rid).state == "expired"
    assert [op for op, _ in noop.calls] == ["grant", "revoke"]
    assert audit(db, rid)[-2:] == ["revoke_started", "expired"]
    assert [r for r, _ in outbox(db, "access_ended")] == ["UALICE"]


class FailingFor(NoopConnector):
    """Revoke fails for the grants named, succeeds for the others."""

    def __init__(self, inner: NoopConnector, failing: set[int]) -> None:
        super().__init__(inner.name, inner.catalog())
        self.failing = failing

    def revoke(self, grant: GrantSpec) -> None:
        if grant.grant_id in self.failing:
            raise ConnectorError("revoke backend unavailable")
        super().revoke(grant)


def test_a_burst_of_expiries_is_revoked_in_batches_and_one_failure_stays_alone(db: Database) -> None:
    c, clock, noop = make_container(db)
    rids = [auto_grant(c, clock) for _ in range(30)]  # 30 grants expiring at the same instant
    grant_ids = [c.service.get(r).grants[0].id for r in rids]
    failing = FailingFor(noop, {grant_ids[7]})
    with_connector(db, failing, c)
    clock.advance(hours=1, seconds=1)
    c.worker.run_due()
    states = {r: c.service.get(r).state for r in rids}
    assert [r for r, state in states.items() if state != "expired"] == [rids[7]]
    assert sorted(g for op, g in failing.calls if op == "revoke") == sorted(set(grant_ids) - {grant_ids[7]})
    assert audit(db, rids[7])[-2:] == ["revoke_started", "revoke_attempt_failed"]
    assert all(audit(db, r)[-2:] == ["revoke_started", "expired"] for r in rids if r != rids[7])
    assert len(outbox(db, "access_ended")) == 29 and len(outbox(db, "revoke_failing")) == 1

    failing.failing.clear()  # the backend is back: the safety-net revoke timer finishes the last one
    run_for(c, clock, steps=3, every=timedelta(minutes=1))
    assert c.service.get(rids[7]).state == "expired"
    assert [g for op, g in failing.calls if op == "revoke"].count(grant_ids[7]) == 1
    assert len(outbox(db, "access_ended")) == 30
    c.worker.run_due(now=clock.now() + timedelta(hours=1))
    assert len([op for op, _ in failing.calls if op == "revoke"]) == 30  # nothing revoked twice


def test_revoke_failing_three_times_then_succeeding(db: Database) -> None:
    c, clock, noop = make_container(db)
    flaky = FlakyConnector(noop, revoke_failures=3)
    with_connector(db, flaky, c)
    rid = auto_grant(c, clock)
    clock.advance(hours=1, seconds=1)
    run_for(c, clock, steps=10, every=timedelta(minutes=1))
    assert c.service.get(rid).state == "expired"
    events = audit(db, rid)
    assert events.count("revoke_attempt_failed") == 3
    assert events.count("expired") == 1 and "revoke_failed" not in events
    assert len(outbox(db, "revoke_failing")) == 1
    assert [op for op, _ in flaky.calls] == ["grant", "revoke"]


def test_revoke_always_failing_reaches_revoke_failed_and_is_force_closed(db: Database) -> None:
    c, clock, noop = make_container(db)
    flaky = FlakyConnector(noop, revoke_failures=-1)
    with_connector(db, flaky, c)
    rid = auto_grant(c, clock)
    clock.advance(hours=1, seconds=1)
    run_for(c, clock, steps=20, every=timedelta(minutes=10))
    grant_id = c.service.get(rid).grants[0].id
    with db.begin() as session:
        grant = grant_store.get_grant(grant_id, session=session)
        assert grant is not None and grant.state == "revoke_failed"
        attempts = grant.attempts
    assert attempts >= MAX_REVOKE_ATTEMPTS
    assert audit(db, rid).count("revoke_failed") == 1
    assert len(outbox(db, "revoke_failing")) == 1
    run_for(c, clock, steps=2, every=timedelta(hours=1, minutes=1))  # the slow sweep keeps trying
    with db.begin() as session:
        grant = grant_store.get_grant(grant_id, session=session)
        assert grant is not None and grant.attempts >= attempts + 2
    with pytest.raises(NotEligible):
        c.revoking.force_close(grant_id, c.directory.identity("UALICE", clock.now()))
    c.revoking.force_close(grant_id, c.directory.identity("USECOPS", clock.now()))
    with db.begin() as session:
        grant = grant_store.get_grant(grant_id, session=session)
        assert grant is not None and grant.state == "revoked"
        closed = [e for e in audit_log.audit_events(request_id=rid, session=session) if e.event == "force_closed"]
    assert [e.actor for e in closed] == ["USECOPS"]
    calls = len(flaky.calls)
    run_for(c, clock, steps=2, every=timedelta(hours=2))
    assert len(flaky.calls) == calls  # nothing left to retry


def test_a_replica_ticking_during_a_revoke_does_not_revoke_again(db: Database) -> None:
    c, clock, noop = make_container(db)
    replica = Worker(db, c.worker.handlers, clock)  # a second worker sharing the database and the connector
    ticked: list[int] = []

    class ReplicaTicksDuringRevoke(FlakyConnector):
        def revoke(self, grant: GrantSpec) -> None:
            if not ticked:
                ticked.append(replica.run_due())
            super().revoke(grant)

    connector = ReplicaTicksDuringRevoke(noop)
    with_connector(db, connector, c)
    rid = auto_grant(c, clock)
    clock.advance(hours=1, seconds=1)
    c.worker.run_due()
    assert c.service.get(rid).state == "expired"
    run_for(c, clock, steps=3, every=timedelta(minutes=5))  # the crash safety net finds nothing left to do
    replica.run_due()
    assert ticked and [op for op, _ in connector.calls] == ["grant", "revoke"]


def test_grant_failing_then_succeeding(db: Database) -> None:
    c, clock, noop = make_container(db)
    flaky = FlakyConnector(noop, grant_failures=2)
    with_connector(db, flaky, c)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="tests"))
    assert out.request.state == "granting"
    run_for(c, clock, steps=5, every=timedelta(seconds=30))
    record = c.service.get(out.request.id)
    assert record.state == "active"
    events = audit(db, out.request.id)
    assert events.count("grant_attempt_failed") == 2 and events.count("granted") == 1
    assert ("UALICE", out.request.id) in outbox(db, "access_granted")
    assert [op for op, _ in flaky.calls] == ["grant"]


def test_overdue_work_at_start_is_done_once(db: Database) -> None:
    c, clock, noop = make_container(db)
    rid = auto_grant(c, clock)
    clock.advance(hours=5)  # the bot was down across the expiry
    tick = run_due_by_db_clock(c.worker, db, clock)
    assert tick() >= 1
    assert c.service.get(rid).state == "expired"
    tick()
    clock.advance(hours=1)
    tick()
    assert [op for op, _ in noop.calls] == ["grant", "revoke"]
    assert outbox(db, "expiry_reminder") == []  # too late for a reminder: none is sent


@pytest.mark.parametrize("threads", [1, 4])
def test_a_backlog_is_claimed_claim_after_claim_within_the_claims_given(db: Database, threads: int,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "MAX_CLAIM", 3)
    monkeypatch.setattr(scheduler_module, "MAX_CLAIM", 3)
    c, clock, noop = make_container(db)
    worker = Worker(db, c.worker.handlers, clock, threads=threads)
    expiries = seed_expiring_grants(db, 10, first=clock.now() - timedelta(minutes=1), spread=timedelta(0))
    assert worker.run_due() == 3  # one claim unless told otherwise
    assert worker.run_due(claims=2) == 6  # the second claimed while the first ran
    assert worker.run_due(claims=5) == 1  # a claim that is not full: nothing more is due
    assert sorted(g for op, g in noop.calls if op == "revoke") == sorted(expiries)
    more = seed_expiring_grants(db, 10, first=clock.now() - timedelta(minutes=1), spread=timedelta(0))
    assert run_due_by_db_clock(worker, db, clock, max_batches=3)() == 9  # a tick: three claims at most
    assert run_due_by_db_clock(worker, db, clock, max_batches=3)() == 1
    assert sorted(g for op, g in noop.calls if op == "revoke") == sorted([*expiries, *more])
    with db.read() as session:
        assert {g.state for g in grant_store.get_grants([*expiries, *more], session=session)} == {"expired"}


def test_db_now_is_aware_utc(db: Database) -> None:
    clock = FakeClock()
    now = db_now(db, clock)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    if db.is_postgres:
        assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
    else:
        assert now == clock.now()


def test_a_slow_host_clock_cannot_keep_access_open(db: Database) -> None:
    """Deadlines follow the database clock: a host an hour slow still revokes on time (PostgreSQL)."""
    slow = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    clock = DatabaseClock(db, slow)
    offset = clock.sync()
    if not db.is_postgres:
        assert offset == timedelta(0)  # one process on one host: its clock is the only one
        return
    assert abs(offset - timedelta(hours=1)) < timedelta(seconds=5)
    expiries = seed_expiring_grants(db, 3, first=datetime.now(UTC) - timedelta(minutes=1), spread=timedelta(0))
    c, _, noop = make_container(db)

    by_host = build(db=db, policy=c.policy, secrets=c.secrets, clock=slow, connectors=c.connectors)
    run_due_by_db_clock(by_host.worker, db, slow)()
    assert noop.calls == []  # judged by the slow host's clock, the expired grants would stay open

    by_database = build(db=db, policy=c.policy, secrets=c.secrets, clock=clock, connectors=c.connectors)
    run_due_by_db_clock(by_database.worker, db, clock)()
    assert sorted(gid for op, gid in noop.calls if op == "revoke") == sorted(expiries)


def test_work_claimed_before_its_time_keeps_its_deadline(db: Database) -> None:
    """A replica whose clock is ahead may claim a timer early: the timer is re-armed, never dropped."""
    c, clock, noop = make_container(db)
    rid = auto_grant(c, clock)
    alice = c.directory.identity("UALICE", clock.now())
    pending = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                            justification="tests"))
    ahead = clock.now() + timedelta(hours=3)  # past the 1h expiry and the 2h pending timeout
    c.worker.run_due(now=ahead)  # claims them by that clock; the lifecycle re-checks by its own
    assert c.service.get(rid).state == "active" and c.service.get(pending.request.id).state == "pending"
    assert [op for op, _ in noop.calls] == ["grant"]
    clock.advance(hours=2, seconds=1)
    c.worker.run_due()
    assert c.service.get(rid).state == "expired"
    assert c.service.get(pending.request.id).state == "timed_out"


def test_scheduler_runs_at_start_survives_failures_and_stops() -> None:
    calls: list[str] = []
    first = threading.Event()

    def counting() -> None:
        calls.append("ok")
        first.set()

    def failing() -> None:
        raise RuntimeError("boom")

    slow = Scheduler([failing, counting], tick_seconds=30)
    slow.start()
    try:
        assert first.wait(2), "the first tick must run at start, not after tick_seconds"
    finally:
        slow.shutdown()
    assert calls == ["ok"] and not slow.running

    calls.clear()
    fast = Scheduler([failing, counting], tick_seconds=0.05)
    fast.start()
    deadline = time.monotonic() + 2
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    fast.shutdown()
    assert len(calls) >= 5  # kept ticking although a task raises every time
    settled = len(calls)
    time.sleep(0.15)
    assert len(calls) == settled


def test_scheduler_rejects_a_nonpositive_tick() -> None:
    with pytest.raises(ValueError):
        Scheduler([], tick_seconds=0)
