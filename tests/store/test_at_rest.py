"""Data at rest on both databases: an append-only audit table, one installation id, SQLite files 0600."""

from __future__ import annotations

import os
import sqlite3
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from bot.security.installation import installation_id
from store import audit as audit_log
from store import mfa as mfa_store
from store.db import Database
from store.installation import set_key_check
from store.mfa import delete_enrolment
from store.models import AuditEvent, MfaEnrolment

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _audit_row(db: Database) -> int:
    with db.begin() as session:
        row = audit_log.add_audit(session=session, at=NOW, event="granted", actor="U1", request_id=7,
                                  details={"k": "v"})
        session.flush()
        return row.id


def _audit_rows(db: Database) -> list[tuple[int, str, str]]:
    with db.begin() as session:
        return [(e.id, e.event, e.actor) for e in audit_log.audit_events(session=session)]


@pytest.mark.parametrize(
    ("description", "statement"),
    [
        ("ORM update", lambda row_id: update(AuditEvent).where(AuditEvent.id == row_id).values(actor="forged")),
        ("ORM delete", lambda row_id: delete(AuditEvent).where(AuditEvent.id == row_id)),
        ("update of every row", lambda _: text("UPDATE audit_events SET event = 'nothing happened'")),
        ("delete of every row", lambda _: text("DELETE FROM audit_events")),
    ],
)
def test_the_audit_table_refuses_update_and_delete(db: Database, description: str, statement: object) -> None:
    row_id = _audit_row(db)
    before = _audit_rows(db)

    with pytest.raises(DBAPIError, match="audit_events is append-only"), db.begin() as session:
        session.execute(statement(row_id))  # type: ignore[operator]

    assert _audit_rows(db) == before == [(row_id, "granted", "U1")], description
    _audit_row(db)  # inserting still works
    assert len(_audit_rows(db)) == 2


def test_postgres_refuses_truncating_the_audit_table(db: Database) -> None:
    if not db.is_postgres:
        pytest.skip("TRUNCATE is PostgreSQL's")
    _audit_row(db)
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as session:
        session.execute(text("TRUNCATE audit_events"))
    assert len(_audit_rows(db)) == 1


def test_one_installation_id_however_many_replicas_ask_at_once(db: Database) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: installation_id(db, now=NOW), range(16)))
    assert len(ids) == 1
    (only,) = ids
    assert len(only) == 8 and only.isalnum() and only == only.lower()
    assert installation_id(db) == only, "generated once, then read"


def test_the_key_check_value_is_stored_once(db: Database) -> None:
    installation_id(db, now=NOW)
    with db.begin() as session:
        assert set_key_check(session=session, check="first")
        assert not set_key_check(session=session, check="second")
        assert session.execute(text("SELECT key_check FROM installation")).scalar_one() == "first"


def test_an_mfa_enrolment_is_deleted_once(db: Database) -> None:
    with db.begin() as session:
        session.add(MfaEnrolment(user_id="UALICE", secret_encrypted="x", created_at=NOW, failed_attempts=0))
        session.add(MfaEnrolment(user_id="UBOB", secret_encrypted="y", created_at=NOW, failed_attempts=0))
    with db.begin() as session:
        assert delete_enrolment(session=session, user_id="UALICE")
        assert not delete_enrolment(session=session, user_id="UALICE")
        assert mfa_store.get_mfa("UBOB", session=session) is not None
        assert mfa_store.get_mfa("UALICE", session=session) is None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_and_its_wal_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask: files would be 0644
    try:
        path = tmp_path / "data" / "accessbot.db"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        _audit_row(db)
        with db.engine.connect() as held:  # an open connection keeps the WAL and SHM files in place
            held.exec_driver_sql("SELECT count(*) FROM audit_events").all()
            files = [path, tmp_path / "data" / "accessbot.db-wal", tmp_path / "data" / "accessbot.db-shm"]
            assert all(f.exists() for f in files)
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        db.dispose()
    finally:
        os.umask(old_umask)


def test_an_existing_world_readable_sqlite_database_is_tightened_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # as an older accessbot (or a copy) left it: 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x int)")
    for file in tmp_path.iterdir():
        file.chmod(0o644)

    db = Database(f"sqlite:///{path}")
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1").all()
        assert {f.name: _mode(f) for f in tmp_path.iterdir()} == {f.name: 0o600 for f in tmp_path.iterdir()}
    db.dispose()
