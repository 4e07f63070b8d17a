"""Two worker processes on one PostgreSQL database: 1,000 expiries, each revoked exactly once and on time."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.db import Database
from store.models import AuditEvent, Grant
from tests.bot.worker_process import (
    counts,
    postgres_schema,
    read_log,
    seed_expiring_grants,
    spawn,
    stop_all,
    wait_started,
)

POSTGRES_URL = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="ACCESSBOT_TEST_POSTGRES_URL is not set"),
]
TICK = 0.2
SPREAD = timedelta(seconds=3)


@pytest.fixture
def pg_url() -> Iterator[str]:
    assert POSTGRES_URL
    with postgres_schema(POSTGRES_URL) as url:
        yield url


def live_grants(db: Database) -> int:
    with db.begin() as session:
        return session.scalar(select(func.count()).select_from(Grant).where(Grant.state != "expired")) or 0


def wait_until_ended(db: Database, *, timeout: float) -> float:
    started = time.monotonic()
    while live_grants(db) and time.monotonic() - started < timeout:
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("grants", "max_late"),
    [
        (100, 10 * TICK),  # within the replicas' throughput: every revoke within a few ticks of its expiry
        (1000, 3.0),  # a burst: expiries are revoked in batches (bot.lifecycle.expiry); 0.8 s was measured
    ],
)
def test_two_replicas_revoke_each_grant_exactly_once(pg_url: str, tmp_path: Path, grants: int,
                                                      max_late: float) -> None:
    db = Database(pg_url)
    log = tmp_path / "revoke.log"
    processes = []
    try:
        processes = [spawn(pg_url, log, "--tick", str(TICK)) for _ in range(2)]
        wait_started(log, 2)
        seeded = time.monotonic()
        first = datetime.now(UTC) + timedelta(seconds=3)  # after the seeding commits: lateness is the bot's own
        expiries = seed_expiring_grants(db, grants, first=first, spread=SPREAD)
        seeding = time.monotonic() - seeded
        waited = wait_until_ended(db, timeout=60)
        assert live_grants(db) == 0, f"grants still live after {waited:.1f}s"
        time.sleep(3 * TICK)  # let any duplicate (which must not happen) reach the log
    finally:
        stop_all(processes)
    lines = [line for line in read_log(log) if line.op == "revoke"]
    revokes = counts(lines, "revoke")
    assert set(revokes) == set(expiries)
    assert max(revokes.values()) == 1, [g for g, n in revokes.items() if n > 1][:10]
    with db.begin() as session:
        expired = session.execute(
            select(AuditEvent.grant_id, func.count())
            .where(AuditEvent.event == "expired")
            .group_by(AuditEvent.grant_id)
        ).all()
    db.dispose()
    assert len(expired) == grants and all(n == 1 for _, n in expired)
    lateness = sorted((line.at - expiries[line.grant_id]).total_seconds() for line in lines)
    per_replica = sorted(Counter(line.pid for line in lines).values())
    print(f"\n{grants} expiries over {SPREAD.total_seconds():.0f}s, 2 replicas, tick {TICK}s: seeded in "
          f"{seeding:.2f}s, all ended {waited:.2f}s after seeding; lateness min {lateness[0]:.3f}s "
          f"median {lateness[len(lateness) // 2]:.3f}s p99 {lateness[int(len(lateness) * 0.99)]:.3f}s "
          f"max {lateness[-1]:.3f}s; revokes per replica {per_replica}")
    assert lateness[0] >= -0.05  # never early (same host clock; 50 ms for the log's timestamp resolution)
    assert lateness[-1] < max_late
    assert len(per_replica) == 2  # both replicas took a share
