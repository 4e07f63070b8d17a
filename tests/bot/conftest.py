"""Fixtures of the real-process tests (crash, on-time): a migrated database URL on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.db import Database
from tests.bot.worker_process import postgres_schema

POSTGRES_URL = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database for worker processes to share: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        sqlite_url = f"sqlite:///{tmp_path}/bot.db"
        db = Database(sqlite_url)
        db.upgrade()
        db.dispose()
        yield sqlite_url
        return
    if not POSTGRES_URL:
        pytest.skip("ACCESSBOT_TEST_POSTGRES_URL is not set")
    with postgres_schema(POSTGRES_URL) as pg_url:
        yield pg_url
