"""Stopping ``accessbot serve`` cleanly on SIGTERM (systemd, ``docker stop``) exactly as on Ctrl-C.

The sequence, within :data:`STOP_SECONDS` of the signal (``docker stop`` kills after 10 s):

1. stop taking work: the HTTP server stops accepting and lets requests in progress finish; in Socket Mode the
   connection is closed;
2. stop ticking and drain: the due-work tick and the outbox tick in progress, and the connector calls clicks
   started (:class:`DrainingExecutor`), get until the deadline to finish;
3. hand back the leases this process still holds (:class:`store.leases.LeaseTracker`), so another replica takes
   that work at its next tick instead of after the lease (minutes).

Work that did not finish in time is not lost: its due-work row is unfinished and, its lease released, is run
again by another replica (every kind of due work is idempotent).
"""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from store.leases import LeaseTracker

log = logging.getLogger(__name__)

STOP_SECONDS = 8.0  # from the signal to the last lease handed back; below docker stop's 10 s
T = TypeVar("T")


class Drainable(Protocol):
    def shutdown(self, *, wait: bool = True) -> None: ...

    def drain(self, timeout: float) -> bool: ...


class DrainingExecutor(ThreadPoolExecutor):
    """A thread pool that can be drained with a deadline; tasks run in the submitter's log context."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "",
                 initializer: Callable[[], object] | None = None) -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix, initializer=initializer)
        self._lock = threading.Lock()
        self._futures: set[Future[Any]] = set()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        context = contextvars.copy_context()
        future = super().submit(context.run, fn, *args, **kwargs)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    def drain(self, timeout: float) -> bool:
        """Take no more tasks; wait up to ``timeout`` for those submitted; True when all finished."""
        with self._lock:
            pending = set(self._futures)
        self.shutdown(wait=False)
        _, not_done = wait(pending, timeout=max(timeout, 0.0))
        return not not_done


class Stopping:
    """Turns SIGTERM into the Ctrl-C path (``KeyboardInterrupt`` in the main thread) and remembers when it came."""

    def __init__(self) -> None:
        self.since: float | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.info("%s received: stopping", signal.Signals(signum).name)
            raise KeyboardInterrupt
        log.info("%s received again: still stopping (at most %.0f s)", signal.Signals(signum).name, STOP_SECONDS)

    def deadline(self) -> float:
        return (self.since if self.since is not None else time.monotonic()) + STOP_SECONDS


def drain_and_release(drainables: Sequence[Drainable], leases: LeaseTracker, deadline: float) -> bool:
    """Steps 2 and 3 above; True when all work in progress finished before ``deadline``."""
    for drainable in drainables:  # stop them all first, then wait for each with what time is left
        drainable.shutdown(wait=False)
    finished = True
    for drainable in drainables:
        finished = drainable.drain(deadline - time.monotonic()) and finished
    try:
        released = leases.release()
    except Exception:  # noqa: BLE001 — the database may be why we stop; the leases then run out by themselves
        log.warning("could not hand back the leases; other replicas take the work when they run out", exc_info=True)
        released = 0
    log.info("stopped: %s; %d lease(s) handed back to the other replicas",
             "all work in progress finished" if finished else "work in progress cut short, to be retried", released)
    return finished
