"""Database transactions: writes take the SQLite write lock up front, reads are deferred snapshots that never
wait for it, a write inside a read is refused, connections are pooled (PRAGMAs once per connection)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from store.db import Database, ReadOnlyTransaction, background_work, foreground, is_background
from store.models import AuditEvent


def audit_row(event_name: str) -> AuditEvent:
    return AuditEvent(at=datetime.now(UTC), event=event_name, actor="test", details={})


def count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_a_write_inside_a_read_is_refused_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(ReadOnlyTransaction), db.read() as session:
        session.add(audit_row("sneaky"))
    assert count(db) == 0
    with db.begin() as session:
        session.add(audit_row("written"))
    assert count(db) == 1


def test_postgres_reads_are_read_only_transactions(db: Database) -> None:
    if not db.is_postgres:
        pytest.skip("PostgreSQL only")
    with pytest.raises(DBAPIError, match="read-only"), db.read() as session:
        session.execute(text("INSERT INTO audit_events (at, event, actor, details) VALUES (now(), 'x', 'y', '{}')"))


def test_sqlite_reads_do_not_wait_for_a_writer_and_writers_queue(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/locks.db")
    db.upgrade()
    holding, release = threading.Event(), threading.Event()
    second_done = threading.Event()

    def first_writer() -> None:
        with db.begin() as session:
            session.add(audit_row("first"))
            session.flush()  # BEGIN IMMEDIATE was issued: this transaction holds the write lock
            holding.set()
            release.wait(10)

    def second_writer() -> None:
        with db.begin() as session:
            session.add(audit_row("second"))
        second_done.set()

    writer = threading.Thread(target=first_writer)
    writer.start()
    assert holding.wait(10)
    queued = threading.Thread(target=second_writer)
    queued.start()
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(count(db)))
    reader.start()
    reader.join(5)  # the busy timeout is 30 s: a read that waited for the lock would not be back
    assert seen == [0]  # a snapshot from before the uncommitted write
    assert not second_done.is_set()  # the second writer waits for the lock
    release.set()
    writer.join(10)
    assert second_done.wait(10)
    assert count(db) == 2
    db.dispose()


def test_sqlite_connections_are_pooled_and_set_up_once(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/pool.db")
    db.upgrade()
    db.dispose()
    opened: list[object] = []
    event.listen(db.engine, "connect", lambda connection, _record: opened.append(connection))
    for i in range(50):
        with db.begin() as session:
            session.add(audit_row(f"e{i}"))
        count(db)
    assert len(opened) == 1  # one thread, one pooled connection: the PRAGMAs ran once, not 100 times
    with db.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()



DEADLINE = 10.0


def _hold(db: Database, background: bool, inside: threading.Event, release: threading.Event,
          nested: bool = False) -> None:
    """A thread's read transaction, marked as background work or not, held until ``release``."""
    background_work(background)
    try:
        with db.read() as session:
            session.scalar(select(func.count()).select_from(AuditEvent))
            if nested:
                with db.read() as inner:  # a transaction inside a turn needs no turn of its own
                    inner.scalar(select(func.count()).select_from(AuditEvent))
            inside.set()
            release.wait(DEADLINE)
    finally:
        background_work(False)


def test_background_transactions_take_turns_and_others_never_wait_for_one(db: Database) -> None:
    """Two turns: a third background transaction waits until one ends; a foreground write (what Slack waits
    for) and a background transaction nested in its thread's own turn go ahead meanwhile."""
    turns = Database(db.url, background_turns=2)
    release, later = threading.Event(), threading.Event()
    inside = [threading.Event() for _ in range(3)]
    threads = [threading.Thread(target=_hold, args=(turns, True, inside[n], release, n == 1)) for n in range(2)]
    for thread in threads:
        thread.start()
    assert inside[0].wait(DEADLINE) and inside[1].wait(DEADLINE)  # both turns taken, one with a nested read
    threads.append(threading.Thread(target=_hold, args=(turns, True, inside[2], later)))
    threads[-1].start()
    assert not inside[2].wait(0.3)  # no third turn
    writer = threading.Thread(target=lambda: _write(turns))  # not marked: a modal's submission
    writer.start()
    writer.join(DEADLINE)
    assert not writer.is_alive() and count(db) == 1  # written while both turns are held
    release.set()
    assert inside[2].wait(DEADLINE)  # a turn came free
    later.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads)
    turns.dispose()


def _write(db: Database) -> None:
    with db.begin() as session:
        session.add(audit_row("submitted"))


def test_a_background_thread_reads_at_once_in_the_foreground_while_every_turn_is_held(db: Database) -> None:
    """A listener after its ack that must open a modal before its trigger expires (``foreground``)."""
    turns = Database(db.url, background_turns=1)
    release, inside = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(turns, True, inside, release))
    holder.start()
    assert inside.wait(DEADLINE)
    seen: list[tuple[int, bool]] = []

    def listener_after_its_ack() -> None:
        background_work(True)
        try:
            with foreground():
                seen.append((count(turns), is_background()))
            seen.append((-1, is_background()))
        finally:
            background_work(False)

    reader = threading.Thread(target=listener_after_its_ack)
    reader.start()
    reader.join(DEADLINE)
    assert seen == [(0, False), (-1, True)]  # read while the only turn was held; background again after
    release.set()
    holder.join(DEADLINE)
    turns.dispose()


def test_the_migrations_build_the_schema_the_models_describe(db: Database) -> None:
    """Alembic's own comparison of the migrated database with the models: nothing to add, drop or alter."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.models import Base

    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
