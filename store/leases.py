"""The work this process holds, so a clean shutdown can hand it back at once (SPEC §8).

A replica holds work two ways: a claimed due-work or outbox row carries its ``lease_until``; and work it runs
inline (a batch of expiries revoked at the connector) is covered by a safety-net ``revoke`` timer it dated one
lease ahead. A replica that stops in the middle would keep that work from the others until the lease or the
timer runs out (minutes).

:class:`LeaseTracker` watches the sessions of one :class:`~store.db.Database` and remembers each such value this
process wrote. :meth:`LeaseTracker.release` then clears the leases and brings the safety-net timers forward to
now, but only on rows that are not done and still carry the value written here: a row finished or retried
meanwhile, or taken over by another replica after the lease ran out, is left alone.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, inspect, update
from sqlalchemy.orm import InstanceState, Session

from store.db import Database
from store.due_work import release_process_leases
from store.models import DueWork, OutboxMessage

SAFETY_NET_KIND = "revoke"  # the only due work written ahead of time as cover for work done inline
SAFETY_NET_MIN = timedelta(seconds=1)

Held = tuple[type[Any], int, str]  # (model, row id, "lease_until" | "due_at")


class LeaseTracker:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._held: dict[Held, datetime] = {}
        event.listen(db.sessions, "after_flush", self._after_flush)

    def _after_flush(self, session: Session, _context: Any) -> None:
        now = datetime.now(UTC)
        taken: dict[Held, datetime] = {}
        for row in [*session.new, *session.dirty]:
            if not isinstance(row, DueWork | OutboxMessage):
                continue
            lease = _written(row, "lease_until")
            if lease is not None:
                taken[(type(row), row.id, "lease_until")] = lease
            if isinstance(row, DueWork) and row.kind == SAFETY_NET_KIND and row.done_at is None:
                due = _written(row, "due_at")
                if due is not None and due > now + SAFETY_NET_MIN:
                    taken[(DueWork, row.id, "due_at")] = due
        if taken:
            with self._lock:
                self._held.update(taken)
                for key in [k for k, until in self._held.items() if until <= now]:  # ran out: not ours any more
                    del self._held[key]

    def held(self) -> int:
        """How many leases and safety-net timers this process may still hold (some may be done since)."""
        with self._lock:
            return len(self._held)

    def release(self, now: datetime | None = None) -> int:
        """Hand back what this process still holds on unfinished rows; returns how many rows were handed back."""
        with self._lock:
            held, self._held = self._held, {}
        now = now or datetime.now(UTC)
        released = 0
        with self.db.begin() as session:
            for (model, row_id, column), value in held.items():
                unfinished = DueWork.done_at.is_(None) if model is DueWork else OutboxMessage.sent_at.is_(None)
                statement = update(model).where(model.id == row_id, unfinished, getattr(model, column) == value)
                if column == "lease_until":
                    statement = statement.values(lease_until=None)
                else:  # the safety net of work cut short: due now, for whichever replica ticks first
                    statement = statement.where(model.lease_until.is_(None)).values(due_at=now)
                result = session.execute(statement.execution_options(synchronize_session=False))
                released += int(getattr(result, "rowcount", 0) or 0)
            released += release_process_leases(session=session)  # due work claimed by token (store.due_work)
        return released


def _written(row: DueWork | OutboxMessage, attribute: str) -> datetime | None:
    """The value this flush wrote to ``attribute`` (None when it wrote none, or wrote NULL)."""
    state: InstanceState[Any] = inspect(row)
    added = state.attrs[attribute].history.added
    value = added[0] if added else None
    return value if isinstance(value, datetime) else None
