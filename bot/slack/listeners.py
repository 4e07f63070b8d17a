"""Listener threads that never keep Slack waiting (SPEC §8, ack first).

Bolt runs each listener on its ``listener_executor`` and answers Slack once the listener calls ``ack()``. With a
fixed pool, listeners busy with what they do *after* their ack (a ``users.info``, a database write, a message
update) hold every thread, and the next click waits in the queue for its ack — past Slack's 3 seconds under a
burst. :class:`ListenerPool` separates the two: a listener starts at once on a thread of a large pool (idle ones
are reused), and once it has acked it waits for one of ``slots`` work slots before going on. So an ack waits only
for the listener's own code before ``ack()`` (a modal's validation), never for other listeners' work, and at
most ``slots`` listeners do work at a time (a burst of clicks queues there, after Slack has its answers).

:class:`SlottedAck` is the ``ack`` Bolt hands listeners (installed by :class:`bot.slack.observed.ObservedApp`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from slack_bolt.context.ack import Ack
from slack_bolt.response import BoltResponse

from store.db import background_work

SWITCH_INTERVAL = 0.001  # seconds a busy thread keeps the GIL while another waits (CPython's default: 0.005)
STARTING_THREADS = 256  # listeners that may be running their code before ack(), or waiting for a slot
WORK_SLOTS = 16  # listeners doing their work after ack() at the same time
STEP_ASIDE = 0.02  # seconds bulk background work waits at most, between pieces, for answers in progress

P = ParamSpec("P")
T = TypeVar("T")


def favour_answers() -> None:
    """Let a thread that has an answer to send take the GIL sooner from threads doing background work.

    CPython hands the GIL over every ``switch interval`` when another thread waits for it; with listeners, the
    outbox and due work running, an ack waits for one interval per hand-over it needs. 1 ms instead of 5 ms
    keeps those waits short for a small cost in switches (process-wide: set when the Bolt app is created)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


class Answering:
    """How many of Slack's requests this process is answering right now (from dispatch to the response), so that
    bulk background work — the warm-up after a start or a reload, 10,000 identities on a large org — can step
    aside between its pieces rather than share the interpreter with the acks people wait for."""

    def __init__(self, longest: float = STEP_ASIDE) -> None:
        self.longest = longest
        self._count = 0
        self._quiet = threading.Condition()

    @contextmanager
    def one(self) -> Iterator[None]:
        with self._quiet:
            self._count += 1
        try:
            yield
        finally:
            with self._quiet:
                self._count -= 1
                if not self._count:
                    self._quiet.notify_all()

    @property
    def in_progress(self) -> int:
        return self._count

    def step_aside(self) -> None:
        """Between two pieces of background work: wait until no answer is in progress, at most ``longest``
        seconds (under a steady stream of requests the work still goes on, a piece at a time)."""
        with self._quiet:
            if self._count:
                self._quiet.wait_for(lambda: not self._count, timeout=self.longest)


class ListenerPool(Executor):
    """Bolt's ``listener_executor``: a thread at once for every listener, ``slots`` of them working after acks."""

    def __init__(self, threads: int = STARTING_THREADS, slots: int = WORK_SLOTS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="slack")
        self._slots = threading.BoundedSemaphore(slots)
        self._local = threading.local()  # per listener thread: running a listener, holding a slot

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        def run() -> T:
            self._local.listener, self._local.slot = True, False
            background_work(False)  # before its ack a listener is what Slack waits for
            try:
                return fn(*args, **kwargs)
            finally:
                self._local.listener = False
                background_work(False)
                if self._local.slot:
                    self._local.slot = False
                    self._slots.release()

        return self._pool.submit(run)

    def acked(self) -> None:
        """In a listener's thread, right after its ack: wait for a work slot (held until the listener returns);
        what it does from then on is background work (its transactions take turns, :func:`background_work`).
        Elsewhere (Bolt acks events itself, on the HTTP thread) nothing happens."""
        if getattr(self._local, "listener", False) and not self._local.slot:
            self._slots.acquire()
            self._local.slot = True
            background_work(True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class SlottedAck(Ack):
    """Bolt's ``ack``: answers Slack, then (in a listener thread) waits for a work slot of ``pool``."""

    def __init__(self, pool: ListenerPool) -> None:
        super().__init__()
        self._pool = pool

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = super().__call__(*args, **kwargs)
        self._pool.acked()
        return response
