"""What one Approve costs the database (issue 14: "each click reads what it needs once"), on SQLite and PostgreSQL.

A click's listener reads the request (to show the reason modal when one is needed) and hands that record to the
service, which reads the parties from it and locks the row once: the request is selected twice, each time with its
grants and votes in the same statement (on PostgreSQL the lock is a statement of its own, before the read). When
the grant work is handed to a background thread, the answer is not read a third time (it would only race that
thread); when the work ran inline, it is (the CLI says "active").
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text

from bot.lifecycle.requests import RequestInput
from store import requests as request_store
from store.db import Database
from store.due_work import JobKey
from store.models import ApprovalVote
from tests.bot.fixtures import make_container


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(re.sub(r"\s+", " ", statement))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def reads_of(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.startswith("SELECT") and re.search(rf"\bFROM {table}\b", s)]


def test_a_click_selects_its_request_twice_with_grants_and_votes_joined(db: Database) -> None:
    c, clock, _ = make_container(db)
    alice, dana = (c.directory.identity(u, clock.now()) for u in ("UALICE", "UDANA"))
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="2",
                                        justification="INC-1"))
    handed: list[JobKey] = []

    def background(key: JobKey) -> bool:  # the serving bot's worker: the grant runs on another thread
        handed.append(key)
        return False

    c.service.run_now = background
    with statements(db) as seen:
        record = c.service.get(out.request.id)  # what the click's listener reads first
        approved = c.service.approve(out.request.id, dana, read=record)
    assert approved.request.state == "granting"  # as written: the grant is the background thread's
    assert [str(k) for k in handed] == [f"grant:{out.request.id}"]
    requests = reads_of(seen, "access_requests")
    joined, locks = [s for s in requests if "JOIN" in s], [s for s in requests if "JOIN" not in s]
    assert len(joined) == 2, requests
    assert all("JOIN grants" in s and "JOIN approval_votes" in s for s in joined)
    assert [re.sub(r"%\(\w+\)s(::\w+)?", "?", s) for s in locks] == (
        ["SELECT access_requests.id FROM access_requests WHERE access_requests.id = ? FOR UPDATE"]
        if db.is_postgres else [])  # PostgreSQL: the lock first, then the read (see the last test)
    assert not reads_of(seen, "grants") and not reads_of(seen, "approval_votes")  # no separate loads


def test_inline_grant_work_is_read_back_for_the_answer(db: Database) -> None:
    c, clock, noop = make_container(db)
    alice, dana = (c.directory.identity(u, clock.now()) for u in ("UALICE", "UDANA"))
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="2",
                                        justification="INC-1"))
    approved = c.service.approve(out.request.id, dana, read=c.service.get(out.request.id))
    assert approved.request.state == "active"
    assert approved.message == f"Request #{out.request.id} is active."
    assert noop.calls == [("grant", approved.request.grants[0].id)]


def test_a_locked_read_sees_the_vote_committed_while_it_waited(db: Database) -> None:
    """Two approvals of an ALL OF request at once: the second locks the request while the first holds it. What
    it reads once the first commits must include the first vote, or both count alone and the request stays
    pending for good (PostgreSQL's READ COMMITTED takes a statement's snapshot when the statement starts)."""
    if not db.is_postgres:
        pytest.skip("SQLite: BEGIN IMMEDIATE takes the write lock before any read")
    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_write", duration_hours="1",
                                        justification="INC-2"))
    assert out.request.flow_name == "write-prod" and out.request.state == "pending"
    request_id = out.request.id
    seen: list[list[str]] = []

    def second() -> None:
        with db.begin() as session:
            row = request_store.get_request(request_id, for_update=True, session=session)
            assert row is not None
            seen.append([v.approver_id for v in row.votes])

    with db.begin() as session:
        row = request_store.get_request(request_id, for_update=True, session=session)
        assert row is not None
        row.votes.append(ApprovalVote(request_id=request_id, approver_id="UDANA", approver_email="dana@example.com",
                                      decision="approve", groups=[0], created_at=clock.now()))
        row.updated_at = clock.now()
        session.flush()
        waiter = threading.Thread(target=second)
        waiter.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_a_lock(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _waiting_for_a_lock(db), "the second transaction never waited for the lock"
    waiter.join(timeout=10)
    assert seen == [["UDANA"]]


def _waiting_for_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar())
