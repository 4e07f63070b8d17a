"""``accessbot db current|history|downgrade``: Alembic's command API on the bot's own database.

Each runs on the connection of a :class:`~store.db.Database` (as ``Database.upgrade`` does) and writes what Alembic
prints to ``stdout``. A revision Alembic does not know raises :class:`UnknownRevision` with Alembic's words.
"""

from __future__ import annotations

import sys
from typing import TextIO

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError

from store.db import Database, alembic_config


class UnknownRevision(ValueError):
    pass


def _config(stdout: TextIO | None) -> AlembicConfig:
    config = alembic_config()
    config.stdout = stdout or sys.stdout
    return config


def current(db: Database, *, stdout: TextIO | None = None) -> None:
    """Print the revision the database is at (nothing for an empty database); ``(head)`` when it is the latest."""
    with db.engine.begin() as connection:
        config = _config(stdout)
        config.attributes["connection"] = connection
        command.current(config)


def history(*, stdout: TextIO | None = None) -> None:
    """Print every migration, newest first."""
    command.history(_config(stdout))


def downgrade(db: Database, revision: str, *, stdout: TextIO | None = None) -> None:
    """Undo migrations down to ``revision`` (``base`` undoes them all, ``-1`` the latest)."""
    with db.engine.begin() as connection:
        config = _config(stdout)
        config.attributes["connection"] = connection
        try:
            command.downgrade(config, revision)
        except CommandError as exc:
            raise UnknownRevision(f"cannot downgrade to {revision!r}: {exc}") from None
