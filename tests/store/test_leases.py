"""LeaseTracker: what this process holds is handed back on shutdown, and nothing it no longer holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store import due_work
from store.db import Database
from store.due_work import JobKey, JobKind, RemindPayload
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
            job = JobKey.parse(key)
            payload = RemindPayload(expires_at=now + LEASE) if job.kind is JobKind.REMIND else None
            due_work.schedule(key=job, due_at=now - timedelta(seconds=1), payload=payload, session=session)
        # written one lease ahead as cover for a revoke run inline (bot.expiry)
        due_work.schedule_many(timers=[(JobKey.parse("revoke:5"), now + LEASE)], session=session)
        # an ordinary future timer of another kind is not held by anyone
        due_work.schedule(key=JobKey.parse("remind:6"), due_at=now + LEASE,
                          payload=RemindPayload(expires_at=now + 2 * LEASE), session=session)
    with db.begin() as session:
        claimed = {w.dedupe_key: w.id for w in due_work.claim_due_work(now=now, lease=LEASE,
                                                                           is_postgres=db.is_postgres,
                                                                           session=session)}
    assert set(claimed) == {"expire:1", "expire:2", "expire:3", "remind:4"}
    with db.begin() as session:
        due_work.finish_work(work_ids=[claimed["expire:1"]], now=now, session=session)  # finished: nothing to hand back
        due_work.retry_work(work_id=claimed["expire:2"], due_at=now + timedelta(minutes=5), error="later",
                            session=session)
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
