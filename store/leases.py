"""The leases this process holds, so a clean shutdown can hand them back at once (SPEC §8).

Due work and outbox rows are claimed by setting ``lease_until``; a replica that stops without finishing a row
would otherwise keep it from the others until the lease runs out (minutes). :class:`LeaseTracker` watches the
sessions of one :class:`~store.db.Database` and remembers each lease it sees this process take, with the exact
``lease_until`` written. :meth:`LeaseTracker.release` clears only rows that still carry that value and are not
done: a row finished or retried meanwhile (``lease_until`` cleared) or re-claimed by another replica after the
lease ran out (a different value) is left alone.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, update
from sqlalchemy.orm import InstanceState, Session

from store.db import Database
from store.models import DueWork, OutboxMessage

_LEASED = (DueWork, OutboxMessage)


class LeaseTracker:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._held: dict[tuple[type[Any], int], datetime] = {}
        event.listen(db.sessions, "before_flush", self._before_flush)

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        taken = []
        for row in session.dirty:
            if isinstance(row, _LEASED):
                state: InstanceState[Any] = inspect(row)
                added = state.attrs.lease_until.history.added
                if added and added[0] is not None:
                    taken.append(((type(row), row.id), added[0]))
        if taken:
            now = datetime.now(UTC)
            with self._lock:
                self._held.update(taken)
                for key in [k for k, until in self._held.items() if until <= now]:  # ran out: not ours any more
                    del self._held[key]

    def held(self) -> int:
        """How many leases this process may still hold (some may have been finished since)."""
        with self._lock:
            return len(self._held)

    def release(self) -> int:
        """Hand back every lease this process still holds on unfinished rows; returns how many were released."""
        with self._lock:
            held, self._held = self._held, {}
        released = 0
        with self.db.begin() as session:
            for (model, row_id), until in held.items():
                unfinished = DueWork.done_at.is_(None) if model is DueWork else OutboxMessage.sent_at.is_(None)
                result = session.execute(
                    update(model)
                    .where(model.id == row_id, model.lease_until == until, unfinished)
                    .values(lease_until=None)
                    .execution_options(synchronize_session=False)
                )
                released += int(getattr(result, "rowcount", 0) or 0)
        return released
