"""Connector calls under a deadline, in parallel (``bot.lifecycle.calls.CallRunner``): results in order, errors in
place, a hung call abandoned without holding up the others, and calls that cannot start abandoned too."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from bot.lifecycle.calls import CallRunner
from integrations.base import ConnectorError


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let the hung calls' threads finish


def hangs(release: threading.Event) -> Callable[[], str]:
    def call() -> str:
        release.wait(10)
        return "late"
    return call


def fails() -> str:
    raise ValueError("the target said no")


def describe(results: list[object]) -> list[str]:
    return [f"{type(r).__name__}: {r}" if isinstance(r, BaseException) else str(r) for r in results]


def test_results_come_in_order_with_each_error_in_its_place() -> None:
    runner = CallRunner(parallel=4)
    calls = [(f"call {i}", (lambda i=i: i * i) if i != 7 else fails) for i in range(50)]
    results = runner.run_all(calls)
    assert results[:7] == [i * i for i in range(7)] and results[8:] == [i * i for i in range(8, 50)]
    assert describe([results[7]]) == ["ValueError: the target said no"]
    assert runner.run_all([]) == []
    assert runner.call("one", lambda: "answer") == "answer"
    with pytest.raises(ValueError, match="said no"):
        runner.call("one", fails)


def test_at_most_parallel_calls_run_at_once() -> None:
    runner = CallRunner(parallel=3)
    lock = threading.Lock()
    running, most = 0, 0
    barrier = threading.Barrier(3, timeout=5)

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        barrier.wait()  # three at once, or this times out
        with lock:
            running -= 1

    assert not any(isinstance(r, BaseException) for r in runner.run_all([("c", call)] * 12))
    assert most == 3


def test_a_hung_call_is_abandoned_and_the_others_go_on(release: threading.Event) -> None:
    runner = CallRunner(timeout=0.2, parallel=2)
    results = runner.run_all([("hung revoke", hangs(release)), *[(f"call {i}", lambda i=i: i) for i in range(20)]])
    assert describe(results[:1]) == ["ConnectorError: hung revoke did not answer within 0.2s; abandoned, "
                                     "it will be retried"]
    assert results[1:] == list(range(20))  # another loop took the hung one's place


def test_calls_that_cannot_start_are_abandoned(release: threading.Event) -> None:
    runner = CallRunner(timeout=0.2, parallel=1)  # two threads: both end up stuck in hung calls
    results = runner.run_all([("first", hangs(release)), ("second", hangs(release)), ("third", lambda: 3)])
    assert describe(results) == [
        "ConnectorError: first did not answer within 0.2s; abandoned, it will be retried",
        "ConnectorError: second did not answer within 0.2s; abandoned, it will be retried",
        "ConnectorError: third could not start within 0.2s; abandoned, it will be retried",
    ]
    assert all(isinstance(r, ConnectorError) for r in results)
