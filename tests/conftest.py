"""Shared fixtures: a migrated database on SQLite, and on PostgreSQL when ACCESSBOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from store.db import Database

POSTGRES_URL = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")


def _postgres_database() -> Iterator[Database]:
    assert POSTGRES_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    db = Database(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()
        admin = Database(POSTGRES_URL)
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Database]:
    """A freshly migrated database; every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/accessbot.db")  # type: ignore[str-bytes-safe]
        database.upgrade()
        yield database
        database.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("ACCESSBOT_TEST_POSTGRES_URL is not set")
    yield from _postgres_database()
