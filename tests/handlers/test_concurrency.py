"""Concurrent clicks over the real endpoint resolve to exactly one outcome (SPEC §8; SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from store import audit as audit_log
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import submit_request


def at_once(*clicks: Callable[[], Any]) -> list[Any]:
    """Run the clicks in threads released together; returns their results."""
    start = threading.Barrier(len(clicks))
    results: list[Any] = [None] * len(clicks)

    def run(i: int) -> None:
        start.wait()
        results[i] = clicks[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clicks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def audit(bot: Bot, request_id: int) -> list[str]:
    with bot.container.db.begin() as session:
        return [e.event for e in audit_log.audit_events(request_id=request_id, session=session)]


def test_a_double_click_and_a_slack_retry_grant_once(bot: Bot) -> None:
    request_id = submit_request(bot)

    def click() -> int:
        return bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA").status

    assert at_once(click, click, click) == [200, 200, 200]
    record = bot.container.service.get(request_id)
    assert record.state == "active"
    assert [op for op, _ in bot.noop.calls] == ["grant"]
    assert len(record.votes) == 1
    assert audit(bot, request_id).count("approved") == 1 and audit(bot, request_id).count("granted") == 1


@pytest.mark.parametrize("attempt", range(3))
def test_approve_and_deny_at_the_same_moment_have_one_outcome(bot: Bot, attempt: int) -> None:
    request_id = submit_request(bot)
    at_once(
        lambda: bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA"),
        lambda: bot.sender.block_actions("UERIN", "deny", value=str(request_id), channel_id="DUERIN"),
    )
    record = bot.container.service.get(request_id)
    events = audit(bot, request_id)
    grants = [op for op, _ in bot.noop.calls if op == "grant"]
    if record.state == "denied":
        assert "approved" not in events and events.count("denied") == 1 and not grants
    else:
        assert record.state == "active" and "denied" not in events
        assert events.count("approved") == 1 and grants == ["grant"]


def test_an_escalation_timer_and_an_approval_at_once(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.clock.advance(minutes=31)  # the escalation is due
    at_once(
        lambda: bot.container.worker.run_due(),
        lambda: bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA"),
    )
    record = bot.container.service.get(request_id)
    assert record.state == "active"
    assert [op for op, _ in bot.noop.calls] == ["grant"]
    assert audit(bot, request_id).count("approved") == 1
    bot.container.worker.run_due(now=bot.clock.advance(hours=3))  # later timers find it decided
    assert bot.container.service.get(request_id).state in ("active", "expired")
    assert audit(bot, request_id).count("timed_out") == 0
