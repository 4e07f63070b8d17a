"""The heartbeat that keeps a claim's leases alive while its work runs (SPEC §8: short leases, renewed).

Due work is claimed under a short lease (:data:`bot.jobs.worker.LEASE`, a few seconds) by a claim token; while
the work runs, this thread renews every unfinished row that token holds (one ``UPDATE`` a beat, whatever the
number of rows) every third of the lease. A worker that dies stops beating, so its rows are free for another
replica within one lease; a worker that lives keeps them however long its connector calls take (each call
has its own deadline: :mod:`bot.lifecycle.calls`).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from types import TracebackType

from bot.clock import Clock
from store import due_work
from store.db import Database

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, db: Database, clock: Clock, *, lease: timedelta, owner: str) -> None:
        self.db = db
        self.clock = clock
        self.lease = lease
        self.owner = owner
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.owner[-8:]}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            self.beat()

    def beat(self) -> int:
        """Renew now; returns how many rows were renewed (0 on a database error: the next beat tries again)."""
        try:
            with self.db.begin() as session:
                renewed = due_work.renew_leases(owner=self.owner, lease_until=self.clock.now() + self.lease,
                                                session=session)
        except Exception:  # noqa: BLE001 — a missed beat is survivable while the lease lasts; log and go on
            log.exception("renewing the leases of claim %s failed", self.owner)
            return 0
        self.beats += 1
        return renewed
