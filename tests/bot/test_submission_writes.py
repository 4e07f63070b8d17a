"""What one submission writes (issue 14: fewer round trips under load), on SQLite and PostgreSQL: the request's
row once, with its approval deadline in the INSERT, and never an UPDATE of it in the same transaction."""

from __future__ import annotations

from datetime import timedelta

from bot.lifecycle.requests import RequestInput
from store import due_work
from store import requests as request_store
from store.db import Database
from store.due_work import JobKind
from tests.bot.fixtures import make_container
from tests.bot.test_click_reads import statements


def test_a_submission_inserts_its_request_with_its_deadline_and_does_not_update_it(db: Database) -> None:
    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    with statements(db) as seen:
        out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="2",
                                            justification="INC-1", view_id="V1"))
    writes = [s for s in seen if "access_requests" in s.split(" (")[0] and not s.startswith("SELECT")]
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO access_requests") and "pending_until" in writes[0]
    with db.read() as session:
        row = request_store.get_request(out.request.id, session=session)
        assert row is not None and row.state == "pending"
        assert row.pending_until == clock.now() + timedelta(hours=2)  # read-any's pending_timeout
        timers = {(w.kind, w.due_at) for w in due_work.pending_work(request_id=row.id, session=session)}
    assert timers == {(JobKind.TIMEOUT, clock.now() + timedelta(hours=2)),
                      (JobKind.ESCALATE, clock.now() + timedelta(minutes=30))}  # armed for the same deadline
    assert c.service.get(out.request.id).pending_until == clock.now() + timedelta(hours=2)


def test_an_automatic_request_has_no_deadline(db: Database) -> None:
    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="t"))
    assert c.service.get(out.request.id).pending_until is None
