"""LeaseTracker: what this process holds is handed back on shutdown, and nothing it no longer holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store import repository as repo
from store.db import Database
from store.leases import LeaseTracker
from store.models import DueWork

LEASE = timedelta(minutes=2)


def rows(db: Database) -> dict[str, DueWork]:
    with db.begin() as session:
        return {w.dedupe_key: w for w in session.scalars(select(DueWork))}


def test_release_hands_back_leases_and_safety_nets_it_still_holds(db: Database) -> None:
    tracker = LeaseTracker(db)
    now = datetime.now(UTC)
    with db.begin() as session:
        for key in ("expire:1", "expire:2", "expire:3", "remind:4"):
            repo.schedule(session, kind=key.split(":")[0], key=key, due_at=now - timedelta(seconds=1))
        # written one lease ahead as cover for a revoke run inline (bot.expiry)
        repo.schedule_many(session, kind="revoke", timers=[("revoke:5", now + LEASE, None, None)])
        # an ordinary future timer of another kind is not held by anyone
        repo.schedule(session, kind="remind", key="remind:6", due_at=now + LEASE)
    with db.begin() as session:
        claimed = {w.dedupe_key: w.id for w in repo.claim_due_work(session, now=now, lease=LEASE,
                                                                       is_postgres=db.is_postgres)}
    assert set(claimed) == {"expire:1", "expire:2", "expire:3", "remind:4"}
    with db.begin() as session:
        repo.finish_work(session, work_id=claimed["expire:1"], now=now)  # finished: nothing to hand back
        repo.retry_work(session, work_id=claimed["expire:2"], due_at=now + timedelta(minutes=5), error="later")
    # another replica (its own engine and sessions) took expire:3 over after our lease ran out
    other = Database(db.url)
    with other.begin() as session:
        row = session.get(DueWork, claimed["expire:3"])
        assert row is not None
        row.lease_until = now + 2 * LEASE
    other.dispose()

    assert tracker.release(now=now) == 2  # remind:4's lease, revoke:5's safety net
    after = rows(db)
    assert after["remind:4"].lease_until is None and after["remind:4"].done_at is None
    assert after["revoke:5"].due_at == now and after["revoke:5"].lease_until is None
    assert after["expire:3"].lease_until is not None  # the other replica's
    assert after["expire:1"].done_at is not None
    assert after["expire:2"].due_at > now + timedelta(minutes=4)
    assert after["remind:6"].due_at > now + timedelta(minutes=1)
    assert tracker.release() == 0  # handed back once
