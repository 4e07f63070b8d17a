"""Access ends on time through crashes and transient errors (issue 11), with real worker processes killed by
SIGKILL, on SQLite and PostgreSQL. Two replicas run (as in production); the one that made the call is killed,
the other takes its work over when the dead one's leases lapse, and the killed one is restarted.

The connector of the worker processes (``tests/bot/worker_process.py``) logs every call when it takes effect at
the "receiver", with its idempotency key and ``until``; a kill is aimed at the moment after the receiver acted
and before the bot heard back, the case where the bot cannot know the call finished. Measured: when each grant
really ended (the receiver's revoke) against its expiry as the database holds it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.lifecycle.connector_work import run_later
from bot.lifecycle.requests import RequestInput
from store.db import Database
from store.models import AuditEvent, DueWork, Grant, OutboxMessage
from tests.bot.fixtures import CONFIG, make_container
from tests.bot.worker_process import (
    LogLine,
    effective_calls,
    kill_caller,
    read_log,
    seed_expiring_grants,
    spawn,
    stop_all,
    wait_started,
)

POSTGRES_URL = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
pytestmark = pytest.mark.slow
WORKER = ("--tick", "0.2", "--lease", "2", "--threads", "8")
ON_TIME = timedelta(seconds=5)  # after a crash, every grant ends within this of its expiry


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def logged(log: Path, op: str, grant_id: int | None = None) -> list[LogLine]:
    return [line for line in read_log(log) if line.op == op and grant_id in (None, line.grant_id)]


def same_time(logged_at: datetime | None, expected: datetime) -> bool:
    return logged_at is not None and abs(logged_at - expected) < timedelta(milliseconds=1)


def grant_row(db: Database, grant_id: int) -> Grant:
    with db.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        return grant


SHORT_EXTENSIONS = CONFIG.replace("extend: {max_times: 2, each: 1h}", "extend: {max_times: 2, each: 8s}")


def approved_short_grant(db: Database, seconds_left: float) -> tuple[int, int]:
    """Alice's one-minute request (the shortest there is), approved by Dana in this process ``60 -
    seconds_left`` seconds ago, so it ends ``seconds_left`` from now; its grant work is left to the workers.
    Returns (request id, grant id)."""
    c, clock, _ = make_container(db, SHORT_EXTENSIONS)
    clock.set(datetime.now(UTC) - timedelta(seconds=60 - seconds_left))
    c.service.run_now = run_later
    alice = c.directory.identity("UALICE", clock.now())
    pending = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only",
                                            duration_hours=str(1 / 60), justification="on time"))
    approved = c.service.approve(pending.request.id, c.directory.identity("UDANA", clock.now()))
    assert approved.request.state == "granting"
    return pending.request.id, approved.request.grants[0].id


def test_sigkill_mid_grant_grants_until_the_original_expiry(url: str, tmp_path: Path) -> None:
    db = Database(url)
    log = tmp_path / "connector.log"
    processes = [spawn(url, log, *WORKER, "--grant-sleep", "3") for _ in range(2)]
    try:
        wait_started(log, 2)
        request_id, grant_id = approved_short_grant(db, 10)
        expiry = grant_row(db, grant_id).expires_at
        assert expiry is not None  # fixed at approval
        wait_for(lambda: bool(logged(log, "grant", grant_id)), timeout=10, what="the first grant call")
        kill_caller(processes, log, "grant", grant_id)  # the receiver granted; the bot never heard back
        processes.append(spawn(url, log, *WORKER))  # the restart
        wait_for(lambda: grant_row(db, grant_id).state == "active", timeout=20, what="granted after the restart")
        assert grant_row(db, grant_id).expires_at == expiry  # the restart did not move it
        wait_for(lambda: grant_row(db, grant_id).state == "expired", timeout=30, what="expired")
    finally:
        stop_all(processes)
    grants = logged(log, "grant", grant_id)
    revokes = logged(log, "revoke", grant_id)
    assert len(grants) == 2 and len({g.key for g in grants}) == 1  # repeated once, with the same key
    assert all(same_time(g.until, expiry) for g in grants)  # the connector was told the original expiry
    assert effective_calls(read_log(log), "revoke")[grant_id] == 1
    late = revokes[0].at - expiry
    assert timedelta(seconds=-0.05) <= late <= ON_TIME, late
    with db.read() as session:
        events = [e.event for e in session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id))]
    assert events.count("granted") == 1 and events.count("expired") == 1
    print(f"\nmid-grant kill: ended {late.total_seconds():.2f}s after the original expiry")
    db.dispose()


def test_sigkill_mid_extend_tells_the_connector_the_database_expiry(url: str, tmp_path: Path) -> None:
    db = Database(url)
    log = tmp_path / "connector.log"
    processes = [spawn(url, log, *WORKER, "--extend-sleep", "3") for _ in range(2)]
    try:
        wait_started(log, 2)
        request_id, grant_id = approved_short_grant(db, 5)
        wait_for(lambda: grant_row(db, grant_id).state == "active", timeout=4, what="granted")
        c, clock, _ = make_container(db, SHORT_EXTENSIONS)
        c.extending.run_now = run_later  # the workers tell the connector
        clock.set(datetime.now(UTC))
        c.extending.extend(request_id, c.directory.identity("UALICE", clock.now()))  # by the flow's 8 s
        expiry = grant_row(db, grant_id).expires_at
        assert expiry is not None
        wait_for(lambda: bool(logged(log, "extend", grant_id)), timeout=10, what="the first extend call")
        kill_caller(processes, log, "extend", grant_id)
        processes.append(spawn(url, log, *WORKER))  # the restart
        wait_for(lambda: grant_row(db, grant_id).state == "expired", timeout=30, what="expired")
    finally:
        stop_all(processes)
    extends = logged(log, "extend", grant_id)
    assert same_time(extends[-1].until, expiry)  # the connector's last `until` is the database's
    assert len({e.key for e in extends}) == 1  # one extension: repeated only with its own key
    revokes = logged(log, "revoke", grant_id)
    assert effective_calls(read_log(log), "revoke")[grant_id] == 1
    late = revokes[0].at - expiry
    assert timedelta(seconds=-0.05) <= late <= ON_TIME, late
    print(f"\nmid-extend kill: extend calls {len(extends)}; ended {late.total_seconds():.2f}s after the expiry")
    db.dispose()


def live(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Grant).where(Grant.state != "expired")) or 0


def test_a_revoke_target_failing_three_times(url: str, tmp_path: Path) -> None:
    db = Database(url)
    log = tmp_path / "connector.log"
    processes = [spawn(url, log, *WORKER, "--revoke-failures", "3")]
    try:
        wait_started(log, 1)
        expiries = seed_expiring_grants(db, 5, first=datetime.now(UTC) + timedelta(seconds=1),
                                        spread=timedelta(0))
        wait_for(lambda: live(db) == 0, timeout=30, what="every grant ended")
    finally:
        stop_all(processes)
    lines = read_log(log)
    assert effective_calls(lines, "revoke_failed") == {g: 1 for g in expiries}  # one key, failing 3 times
    assert all(len(logged(log, "revoke_failed", g)) == 3 for g in expiries)
    lateness = [(logged(log, "revoke", g)[0].at - expiries[g]).total_seconds() for g in expiries]
    assert max(lateness) <= 10, lateness
    with db.read() as session:
        failures = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.event == "revoke_attempt_failed"))
        alerts = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "revoke_failing")).all()
    assert failures == 3 * len(expiries)  # every failure audited
    assert sorted(a.grant_id for a in alerts if a.grant_id) == sorted(expiries)  # one alert per grant
    print(f"\nrevoke failing 3 times: ended {min(lateness):.2f}–{max(lateness):.2f}s after expiry")
    db.dispose()


def test_a_replica_killed_holding_200_due_expiries(url: str, tmp_path: Path) -> None:
    db = Database(url)
    log = tmp_path / "connector.log"
    hold = tmp_path / "hold"  # while it exists, revoke calls hang: the replica that claimed them holds them
    hold.touch()
    processes = [spawn(url, log, *WORKER, "--hold-revokes-while", str(hold)) for _ in range(2)]
    try:
        wait_started(log, 2)
        expiries = seed_expiring_grants(db, 200, first=datetime.now(UTC) + timedelta(seconds=1),
                                        spread=timedelta(0))

        def holder() -> int | None:
            with db.read() as session:
                owners = session.execute(select(DueWork.lease_owner, func.count()).where(
                    DueWork.kind == "expire", DueWork.done_at.is_(None), DueWork.lease_until.is_not(None))
                    .group_by(DueWork.lease_owner)).all()
                revoking = session.scalar(select(func.count()).select_from(Grant).where(Grant.state == "revoking"))
            held = [owner for owner, n in owners if n == 200 and owner]
            return int(held[0].split("-")[0]) if held and revoking == 200 else None

        wait_for(lambda: holder() is not None, timeout=20, what="one replica holds the 200 expiries (revoking)")
        victim = next(p for p in processes if p.pid == holder())
        victim.kill()
        victim.wait(timeout=10)
        hold.unlink()  # the target answers again (the killed replica's calls died with it)
        survivor = next(p for p in processes if p is not victim)
        wait_for(lambda: live(db) == 0, timeout=30, what="every grant ended")
    finally:
        stop_all(processes)
    lines = read_log(log)
    assert set(effective_calls(lines, "revoke")) == set(expiries)
    assert {line.pid for line in lines if line.op == "revoke"} == {survivor.pid}  # the other replica took over
    lateness = sorted((logged(log, "revoke", g)[0].at - expiries[g]).total_seconds() for g in expiries)
    assert lateness[-1] <= 10, lateness[-5:]
    print(f"\n200 expiries of a killed replica: taken over, lateness p50 {lateness[100]:.2f}s "
          f"max {lateness[-1]:.2f}s")
    db.dispose()
