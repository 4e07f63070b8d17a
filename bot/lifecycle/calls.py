"""Connector calls under a deadline, in parallel (bounded): what grant, extend, revoke and expiry share.

A call that does not answer within ``timeout`` seconds of starting is abandoned: its caller gets a retryable
:class:`ConnectorError` (the due work retries it with backoff) while the thread finishes on its own. Python
cannot stop a thread; a call that answers after being abandoned is harmless because every call carries its
idempotency key (:func:`integrations.base.idempotency_key`). A call that could not even start within
``timeout`` (every thread busy with hung calls) is abandoned too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from integrations.base import ConnectorError

T = TypeVar("T")

CALL_TIMEOUT = 30.0  # seconds a connector call may take before it is abandoned and retried
PARALLEL = 32  # connector calls in flight at once per process


class CallRunner:
    def __init__(self, *, timeout: float = CALL_TIMEOUT, parallel: int = PARALLEL) -> None:
        self.timeout = timeout
        self.parallel = parallel
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spare threads: a hung (abandoned) call keeps its thread until it returns
                self._pool = ThreadPoolExecutor(2 * self.parallel, thread_name_prefix="connector-call")
            return self._pool

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one call under the deadline; raises what it raised, or ``ConnectorError`` when abandoned."""
        result = self.run_all([(what, fn)])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def run_all(self, calls: Sequence[tuple[str, Callable[[], T]]]) -> list[T | BaseException]:
        """Run the calls, at most ``parallel`` at once, each under the deadline; results in order (a raised
        exception, or ``ConnectorError`` for an abandoned call, in place of a result).

        ``parallel`` loops on the pool take the calls in turn (no task, future or wake-up per call: a burst of
        fast calls costs little more than the calls); this thread only watches the deadlines, and puts a new
        loop in the place of one stuck in an abandoned call.
        """
        if not calls:
            return []
        pool = self._executor()
        run = _Run(calls, self.timeout, lambda: pool.submit(run.loop))
        for _ in range(min(self.parallel, len(calls))):
            run.start_loop()
        return run.wait()

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


class _Run(Generic[T]):
    """One :meth:`CallRunner.run_all`: the calls, the loops that make them, and their deadlines."""

    def __init__(self, calls: Sequence[tuple[str, Callable[[], T]]], timeout: float,
                 submit: Callable[[], object]) -> None:
        self.calls = calls
        self.timeout = timeout
        self.submit = submit
        self.results: list[T | BaseException | None] = [None] * len(calls)
        self.changed = threading.Condition()
        self.next = 0  # the next call to start
        self.left = len(calls)  # calls without a result yet
        self.running: dict[int, float] = {}  # call -> when it started (time.monotonic)
        self.abandoned: set[int] = set()
        self.queued_loops: list[float] = []  # when each loop not started yet was submitted
        self.live = 0  # loops started and not stuck in an abandoned call

    def start_loop(self) -> None:
        self.queued_loops.append(time.monotonic())
        self.submit()

    def loop(self) -> None:
        with self.changed:
            if self.queued_loops:
                self.queued_loops.pop(0)
            self.live += 1
        while True:
            with self.changed:
                if self.next >= len(self.calls):
                    self.live -= 1
                    return
                i = self.next
                self.next += 1
                self.running[i] = time.monotonic()
            result: T | BaseException
            try:
                result = self.calls[i][1]()
            except BaseException as exc:  # noqa: BLE001 — handed to the caller in place of a result
                result = exc
            with self.changed:
                if i in self.abandoned:  # answered too late: its ConnectorError stands; a new loop took over
                    return
                del self.running[i]
                self.results[i] = result
                self.left -= 1
                if not self.left:
                    self.changed.notify_all()

    def wait(self) -> list[T | BaseException]:
        with self.changed:
            while self.left:
                now = time.monotonic()
                for i, started in list(self.running.items()):
                    if now >= started + self.timeout:  # abandoned: its loop is stuck, another takes its place
                        del self.running[i]
                        self.abandoned.add(i)
                        self.results[i] = ConnectorError(f"{self.calls[i][0]} did not answer within "
                                                         f"{self.timeout:g}s; abandoned, it will be retried")
                        self.left -= 1
                        self.live -= 1
                        if self.next < len(self.calls):
                            self.start_loop()
                stalled = self.next < len(self.calls) and not self.live and self.queued_loops
                if stalled and now >= self.queued_loops[0] + self.timeout:  # every thread busy with hung calls
                    for i in range(self.next, len(self.calls)):
                        self.results[i] = ConnectorError(f"{self.calls[i][0]} could not start within "
                                                         f"{self.timeout:g}s; abandoned, it will be retried")
                    self.left -= len(self.calls) - self.next
                    self.next = len(self.calls)
                if not self.left:
                    break
                deadlines = [started + self.timeout for started in self.running.values()]
                if stalled:
                    deadlines.append(self.queued_loops[0] + self.timeout)
                # a call that starts while this waits has its deadline at least ``timeout`` away
                self.changed.wait(max(0.0, min(deadlines, default=now + self.timeout) - now))
        return self.results  # type: ignore[return-value]
