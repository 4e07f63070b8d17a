"""ListenerPool: a listener's ack never waits for other listeners' work; the work after acks is bounded."""

from __future__ import annotations

import threading
import time

from bot.slack.listeners import ListenerPool, SlottedAck
from store.db import is_background

DEADLINE = 10.0


def test_an_ack_is_not_held_up_by_listeners_busy_after_theirs() -> None:
    pool = ListenerPool(threads=32, slots=2)
    release = threading.Event()
    working = threading.Semaphore(0)
    acked: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()

    def listener(n: int, ack: SlottedAck) -> None:
        ack()  # Slack has its answer here
        with lock:
            acked.append(n)
        working.release()
        release.wait(DEADLINE)  # the work after the ack (a slow Slack call)
        with lock:
            finished.append(n)

    acks = [SlottedAck(pool) for _ in range(20)]
    futures = [pool.submit(listener, n, ack) for n, ack in enumerate(acks)]
    for _ in range(2):  # two listeners hold the two work slots...
        assert working.acquire(timeout=DEADLINE)
    deadline = time.monotonic() + DEADLINE
    for ack in acks:  # ...and every other listener still acked: their answers did not wait for a thread or a slot
        while ack.response is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert all(ack.response is not None and ack.response.status == 200 for ack in acks)
    assert not working.acquire(timeout=0.2)  # but no third listener is working: at most `slots` at a time
    release.set()
    for future in futures:
        future.result(timeout=DEADLINE)
    assert sorted(finished) == list(range(20))  # every listener's work ran, once the slots freed
    pool.shutdown()


def test_an_ack_outside_a_listener_thread_takes_no_slot() -> None:
    """Bolt acks events itself, on the HTTP thread: that must neither block nor take a slot."""
    pool = ListenerPool(threads=2, slots=1)
    SlottedAck(pool)()  # on the test's thread
    done = threading.Event()
    pool.submit(lambda: (SlottedAck(pool)(), done.set()))
    assert done.wait(DEADLINE)  # the slot was free for the listener
    pool.shutdown()


def test_a_listener_works_as_background_after_its_ack_and_not_before() -> None:
    """Before its ack a listener is what Slack waits for; after it, its transactions take turns (store.db)."""
    pool = ListenerPool(threads=1, slots=1)
    seen: list[tuple[bool, bool]] = []

    def listener(ack: SlottedAck) -> None:
        before = is_background()
        ack()
        seen.append((before, is_background()))

    for _ in range(2):  # the same thread twice: the second listener starts in the foreground again
        pool.submit(listener, SlottedAck(pool)).result(timeout=DEADLINE)
    assert seen == [(False, True), (False, True)]
    pool.shutdown()
