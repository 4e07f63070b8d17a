"""LeaseTracker: what this process holds is handed back on shutdown, and nothing it no longer holds (due work is
claimed by token; the tracker hands back every row a claim of this process still holds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store import due_work
from store.db import Database
from store.due_work import JobKey, JobKind, RemindPayload, claim_token
from store.leases import LeaseTracker
from store.models import DueWork

LEASE = timedelta(minutes=2)


def rows(db: Database) -> dict[str, DueWork]:
    with db.begin() as session:
        return {w.dedupe_key: w for w in session.scalars(select(DueWork))}


def test_release_hands_back_the_leases_this_process_still_holds(db: Database) -> None:
    tracker = LeaseTracker(db)
    now = datetime.now(UTC)
    with db.begin() as session:
        for key in ("expire:1", "expire:2", "expire:3", "remind:4"):
            job = JobKey.parse(key)
            payload = RemindPayload(expires_at=now + LEASE) if job.kind is JobKind.REMIND else None
            due_work.schedule(key=job, due_at=now - timedelta(seconds=1), payload=payload, session=session)
        # an ordinary future timer is not held by anyone
        due_work.schedule(key=JobKey.parse("remind:6"), due_at=now + LEASE,
                          payload=RemindPayload(expires_at=now + 2 * LEASE), session=session)
    owner = claim_token()
    with db.begin() as session:
        claimed_rows = due_work.claim_due_work(now=now, lease=LEASE, is_postgres=db.is_postgres, owner=owner,
                                               session=session)
        claimed = {str(JobKey(JobKind(r.kind), r.grant_id)): r.id for r in claimed_rows}
    assert set(claimed) == {"expire:1", "expire:2", "expire:3", "remind:4"}
    with db.begin() as session:
        due_work.finish_work(work_ids=[claimed["expire:1"]], now=now, owner=owner, session=session)
        due_work.retry_work(work_id=claimed["expire:2"], due_at=now + timedelta(minutes=5), error="later",
                            owner=owner, session=session)
    # another replica (its own engine and sessions) took expire:3 over after our lease ran out
    other = Database(db.url)
    with other.begin() as session:
        row = session.get(DueWork, claimed["expire:3"])
        assert row is not None
        row.lease_until, row.lease_owner = now + 2 * LEASE, "another-process-token"
    other.dispose()

    assert tracker.release(now=now) == 1  # remind:4, still ours
    after = rows(db)
    assert after["remind:4"].lease_until is None and after["remind:4"].done_at is None
    assert after["expire:3"].lease_owner == "another-process-token"  # the other replica's
    assert after["expire:1"].done_at is not None
    assert after["expire:2"].due_at > now + timedelta(minutes=4)
    assert after["remind:6"].due_at > now + timedelta(minutes=1) and after["remind:6"].lease_until is None
    assert tracker.release() == 0  # handed back once
