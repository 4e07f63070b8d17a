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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

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
        exception, or ``ConnectorError`` for an abandoned call, in place of a result)."""
        results: list[T | BaseException | None] = [None] * len(calls)
        started: dict[int, float] = {}
        submitted: dict[int, float] = {}
        in_flight: dict[Future[T], int] = {}
        pool = self._executor()
        queue = iter(range(len(calls)))
        remaining = True

        def timed(i: int) -> T:
            started[i] = time.monotonic()
            return calls[i][1]()

        while remaining or in_flight:
            while remaining and len(in_flight) < self.parallel:
                i = next(queue, None)
                if i is None:
                    remaining = False
                    break
                submitted[i] = time.monotonic()
                in_flight[pool.submit(timed, i)] = i
            if not in_flight:
                break
            now = time.monotonic()
            deadlines = [started.get(i, submitted[i]) + self.timeout for i in in_flight.values()]
            done, _ = wait(list(in_flight), timeout=max(0.0, min(deadlines) - now), return_when=FIRST_COMPLETED)
            for future in done:
                i = in_flight.pop(future)
                error = future.exception()
                results[i] = error if error is not None else future.result()
            now = time.monotonic()
            for future, i in list(in_flight.items()):
                if now >= started.get(i, submitted[i]) + self.timeout:
                    future.cancel()  # not started yet: it never will; started: it is abandoned
                    del in_flight[future]
                    results[i] = ConnectorError(f"{calls[i][0]} did not answer within {self.timeout:g}s; "
                                                "abandoned, it will be retried")
        return results  # type: ignore[return-value]

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
