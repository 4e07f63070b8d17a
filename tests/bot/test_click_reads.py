"""What one Approve costs the database (issue 14: "each click reads what it needs once"), on SQLite and PostgreSQL.

A click's listener reads the request (to show the reason modal when one is needed) and hands that record to the
service, which reads the parties from it and locks the row once: the request is selected twice, each time with its
grants and votes in the same statement. When the grant work is handed to a background thread, the answer is not
read a third time (it would only race that thread); when the work ran inline, it is (the CLI says "active").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from bot.lifecycle.requests import RequestInput
from store.db import Database
from store.due_work import JobKey
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
    assert len(requests) == 2, requests
    assert all("JOIN grants" in s and "JOIN approval_votes" in s for s in requests)
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

