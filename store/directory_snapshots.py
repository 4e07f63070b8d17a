"""The last full copy of a directory source (:class:`store.models.DirectorySnapshot`), one row per source.

Store functions take a keyword-only ``session`` and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.models import DirectorySnapshot


def save_snapshot(*, session: Session, source: str, taken_at: datetime, users: list[Any],
                  groups: list[Any] | None) -> None:
    """Replace ``source``'s snapshot (the first one is inserted)."""
    row = session.get(DirectorySnapshot, source, with_for_update=True)
    if row is None:
        session.add(DirectorySnapshot(source=source, taken_at=taken_at, users=users, groups=groups))
    else:
        row.taken_at, row.users, row.groups = taken_at, users, groups


def load_snapshot(*, session: Session, source: str) -> DirectorySnapshot | None:
    return session.get(DirectorySnapshot, source)
